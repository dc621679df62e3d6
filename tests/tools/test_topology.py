"""The topology diagrams (docs/topology.md, the README's block) are the plan's, not a drawing."""

from planning.harness import plan_stack
from tests.program_fixtures import plan_prod
from tools import topology


def test_the_committed_diagrams_match_the_plan(capsys):
    assert topology.main(["--check"]) == 0, capsys.readouterr().err


def test_the_diagram_says_what_the_plan_says():
    text = topology.mermaid(plan_prod())
    assert '  web["web ×3"]' in text
    assert '  net_backend{{"backend network (internal)"}}' in text and '  net_frontend{{"frontend network"}}' in text
    assert '  vol_postgres_data[("postgres-data volume (protected)")]' in text
    assert '  host(("host")) -- "0.0.0.0:80 → 80/tcp" --> nginx' in text
    assert '  nginx -. "/var/www/static (ro)" .-> vol_static' in text
    assert '  backup(["backup (job, each release)"])' in text and "  migrate --- net_backend" in text
    # Only nginx is on the frontend with web; nothing else is published.
    assert text.count("host((") == 1


def test_a_change_to_the_plan_changes_the_diagram():
    more = topology.mermaid(plan_stack("dev", overrides={"webReplicas": 5, "httpPort": 8081}))
    assert '  web["web ×5"]' in more and '"127.0.0.1:8081 → 80/tcp"' in more
