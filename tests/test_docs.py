"""docs/configuration.md's key table is generated from Pulumi.yaml and the stack files, and
checked for drift like the topology diagrams: every key, its type, its default, each stack's value."""

from pathlib import Path

import yaml

from tools import config_reference

ROOT = Path(__file__).resolve().parent.parent


def _doc_rows() -> dict[str, list[str]]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    block = text.split(config_reference.BEGIN, 1)[1].split(config_reference.END, 1)[0]
    rows = {}
    for line in block.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells[1:5]
    return rows


def test_the_committed_config_table_matches_pulumi_yaml(capsys):
    assert config_reference.main(["--check"]) == 0, capsys.readouterr().err


def test_every_config_key_is_documented_with_its_type_default_and_stack_values():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    stacks = {s: yaml.safe_load((ROOT / f"Pulumi.{s}.yaml").read_text())["config"] for s in ("dev", "prod")}
    rows = _doc_rows()
    assert list(rows) == list(declared)

    def shown(value):
        return '""' if value == "" else f"`{str(value).lower() if isinstance(value, bool) else value}`"

    for key, declaration in declared.items():
        per_stack = [
            shown(stacks[s][f"django-docker:{key}"]) if f"django-docker:{key}" in stacks[s] else "" for s in stacks
        ]
        assert rows[key] == [declaration["type"], shown(declaration["default"]), *per_stack], key


def test_a_change_to_pulumi_yaml_changes_the_table(tmp_path):
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    project = yaml.safe_load((tmp_path / "Pulumi.yaml").read_text())
    project["config"]["webReplicas"]["default"] = 4
    project["config"]["newKey"] = {"type": "boolean", "default": True, "description": "A | new key."}
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    table = config_reference.table(tmp_path)
    assert table != config_reference.table()
    assert "| `webReplicas` | integer | `4` | `2` | `3` |" in table
    assert "| `newKey` | boolean | `true` |  |  | A \\| new key. |" in table


def test_the_readme_links_the_configuration_reference():
    assert "docs/configuration.md" in (ROOT / "README.md").read_text()


def test_every_declared_key_has_a_description_and_a_default():
    for key, declaration in yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"].items():
        assert declaration.get("description"), key
        assert "default" in declaration, key
        assert declaration["type"] in ("string", "integer", "boolean", "array"), key
        if declaration["type"] == "array":  # the CLI passes it as JSON; Reader.string_list reads it
            assert declaration["items"] == {"type": "string"}, key


def test_stack_files_only_set_declared_keys():
    declared = set(yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"])
    for stack in ("dev", "prod"):
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        keys = {k.split(":", 1)[1] for k in config if k.startswith("django-docker:")}
        assert keys <= declared, stack


# --- every documented command works as written ----------------------------------------------------

DOCS = [ROOT / "README.md", ROOT / "rehearsal" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _make_targets() -> set[str]:
    import re

    return set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_every_documented_make_target_exists():
    import re

    targets = _make_targets()
    missing = [
        f"{doc.relative_to(ROOT)}: make {target}"
        for doc in DOCS
        for target in re.findall(r"\bmake ([a-z][a-z0-9-]*)", doc.read_text())
        if target not in targets and target not in ("sure", "that", "it", "the", "a")  # prose
    ]
    assert missing == []


def test_no_documented_command_needs_the_virtualenv_activated():
    """`python -m tools.X` fails outside the venv (no pulumi, no yaml): the docs say `make X` or
    `.venv/bin/python -m ...`. What runs inside a container (config.healthcheck) is the image's."""
    import re

    bare = [
        f"{doc.relative_to(ROOT)}: {match.group(0)}"
        for doc in DOCS
        for match in re.finditer(r"(?<![/\w.])python3? -m (tools|ops|rehearsal|planning|pytest)\b", doc.read_text())
    ]
    assert bare == []


def test_readme_and_docs_name_make_check():
    for doc in (ROOT / "README.md", ROOT / "docs" / "operations.md", ROOT / "docs" / "configuration.md"):
        assert "make check STACK=" in doc.read_text(), doc.name
