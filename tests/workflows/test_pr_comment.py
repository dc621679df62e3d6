"""scripts/pr-comment.sh against a stand-in `gh` that keeps the pull request's comments in a
file: the forecast's comment is created once, then edited in place; other comments are left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A `gh api` that serves GET/POST .../issues/N/comments and PATCH .../issues/comments/ID from a JSON file.
FAKE_GH = """#!PYTHON
import json, sys
args = sys.argv[1:]
assert args[0] == "api", args
db = json.load(open("DB"))
method = args[args.index("--method") + 1] if "--method" in args else "GET"
path = next(a for a in args[1:] if a.startswith("repos/"))
body = next((a.split("=", 1)[1] for i, a in enumerate(args) if i and args[i - 1] == "-f"), None)
if method == "GET":
    jq = args[args.index("--jq") + 1]
    marker = jq.split('startswith("', 1)[1].split('")', 1)[0]
    for c in db["comments"]:
        if c["body"].startswith(marker):
            print(c["id"])
elif method == "POST":
    db["comments"].append({"id": 100 + len(db["comments"]), "body": body})
elif method == "PATCH":
    wanted = int(path.rsplit("/", 1)[1])
    next(c for c in db["comments"] if c["id"] == wanted)["body"] = body
db["calls"].append([method, path])
json.dump(db, open("DB", "w"))
"""


def run(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    (tmp_path / "forecast.md").write_text(body)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}", GITHUB_REPOSITORY="acme/shop", PR="7")
    env["GH_TOKEN"] = "t"
    return subprocess.run(
        ["bash", str(ROOT / "scripts/pr-comment.sh"), "<!-- release-forecast:prod -->", str(tmp_path / "forecast.md")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_the_forecast_comment_is_made_once_then_edited(tmp_path):
    db = tmp_path / "db.json"
    db.write_text(json.dumps({"comments": [{"id": 1, "body": "#### Pulumi preview"}], "calls": []}))
    (tmp_path / "bin").mkdir()
    gh = tmp_path / "bin" / "gh"
    gh.write_text(FAKE_GH.replace("PYTHON", sys.executable).replace("DB", str(db)))
    gh.chmod(0o755)

    first = run(tmp_path, "- disruption: none\n")
    assert first.returncode == 0, first.stderr
    second = run(tmp_path, "- disruption: maintenance window\n")
    assert second.returncode == 0, second.stderr

    state = json.loads(db.read_text())
    assert [c["body"] for c in state["comments"]] == [
        "#### Pulumi preview",  # the preview's comment, untouched
        "<!-- release-forecast:prod -->\n- disruption: maintenance window",
    ]
    assert [m for m, _ in state["calls"]] == ["GET", "POST", "GET", "PATCH"]
    assert "updated comment 101 on #7" in second.stdout


def test_without_the_pull_request_number_it_says_so(tmp_path):
    (tmp_path / "forecast.md").write_text("x")
    env = {k: v for k, v in os.environ.items() if k != "PR"}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/pr-comment.sh"), "<!-- m -->", str(tmp_path / "forecast.md")],
        capture_output=True,
        text=True,
        env=dict(env, GITHUB_REPOSITORY="acme/shop"),
        check=False,
    )
    assert done.returncode != 0 and "PR (the pull request number) is not set" in done.stderr
