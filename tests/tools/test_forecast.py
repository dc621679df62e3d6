"""`make forecast` (tools/forecast.py): a preview's event log read into the release forecast.
The real previews are in tests/ops/previews/ (recorded with the real CLI, reduced to the fields
the forecast reads); the others are made here for what a preview of ours rarely shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planning.forecast import PreviewError, read_preview, tell
from rehearsal.checks.forecast import gate_agrees
from tools.forecast import forecast_command, markdown

CONTAINER = "docker:index/container:Container"
JOB = "pulumi-python:dynamic/django-docker:Job"
IMAGE_TYPES = ("docker:index/image:Image", "docker:index/remoteImage:RemoteImage")


def urn(name: str, type_: str = CONTAINER) -> str:
    return f"urn:pulumi:prod::shop::django-docker:components:Web${type_}::{name}"


def step(op: str, name: str, type_: str = CONTAINER, service: str = "", keys=()) -> dict:
    """One resourcePreEvent as the engine writes it to the event log (apitype.StepEventMetadata)."""
    inputs = {"labels": [{"label": "django-docker.service", "value": service}]} if service else {}
    state = {"type": type_, "custom": True, "inputs": inputs}
    side = "old" if op in ("delete", "delete-replaced") else "new"
    return {
        "resourcePreEvent": {
            "metadata": {"op": op, "urn": urn(name, type_), "type": type_, side: state, "keys": list(keys)}
        }
    }


def events(*steps: dict) -> list[dict]:
    return [{"sequence": n, **s} for n, s in enumerate(steps, start=1)]


def container(op: str, name: str, service: str, **extra) -> dict:
    return step(op, name, CONTAINER, service, **extra)


def job(name: str) -> dict:
    return step("create-replacement", name, JOB)


def test_a_release_in_maintenance_mode_stops_web_first_and_opens_a_window():
    preview = events(
        job("shop-release-migration-gate"),
        job("shop-release-migrate"),
        # delete-before-replace: the old one's delete comes before its replacement's create.
        container("delete-replaced", "shop-web-1", "web"),
        container("replace", "shop-web-1", "web"),
        container("create-replacement", "shop-web-1", "web", keys=["image"]),
        step("create", "shop-release-maintenance", "pulumi-python:dynamic/django-docker:NginxSite"),
        container("same", "shop-nginx", "nginx"),
    )
    told = tell(read_preview(preview))
    assert told.replaced == {"web": 1}
    assert told.jobs == ("migration-gate", "migrate")
    assert "replaced: web x1 (delete first)" in told.lines
    assert (told.disruption, told.maintenance) == ("maintenance window", True)


def test_a_scale_up_creates_and_a_preview_without_changes_says_so():
    told = tell(read_preview(events(container("same", "shop-web-1", "web"), container("create", "shop-web-3", "web"))))
    assert told.created == {"web": 1} and told.lines == ("created: web x1", "jobs: none", "disruption: none")
    nothing = tell(read_preview(events(container("same", "shop-web-1", "web"))))
    assert nothing.lines == ("nothing changes", "disruption: none")


def test_a_failed_preview_is_one_line_and_no_forecast():
    with pytest.raises(PreviewError, match="the preview failed: docker:host: cannot reach"):
        read_preview(
            [
                {
                    "sequence": 1,
                    "diagnosticEvent": {"severity": "error", "message": "docker:host: cannot reach\n  the host"},
                }
            ]
        )


def test_a_saved_preview_is_printed_and_written_as_markdown(tmp_path):
    saved = tmp_path / "preview.events.jsonl"
    saved.write_text(
        "\n".join(
            json.dumps(e)
            for e in events(container("create-replacement", "shop-web-1", "web"), job("shop-release-migrate"))
        )
    )
    said: list[str] = []
    code = forecast_command("prod", preview_file=saved, markdown_file=tmp_path / "f.md", gate=False, say=said.append)
    assert code == 0
    assert said == [
        "forecast prod: replaced: web x1 (create-before-delete)",
        "jobs: migrate",
        "disruption: none",
    ]
    assert (tmp_path / "f.md").read_text() == markdown("prod", said)
    assert (tmp_path / "f.md").read_text().startswith("### Release forecast: `prod`\n\n- forecast prod: replaced")


def test_a_file_that_is_no_preview_is_refused_in_one_line(tmp_path):
    saved = tmp_path / "preview.json"
    saved.write_text("Previewing update (prod):\n")
    with pytest.raises(PreviewError, match=r"preview.json: not a `pulumi preview --event-log` file: event log line 1"):
        forecast_command("prod", preview_file=saved, markdown_file=None, gate=False, say=print)
    saved.write_text(json.dumps({"forecast": [], "events": []}))
    with pytest.raises(PreviewError, match=r"preview.json: not a `pulumi preview --event-log` file: no engine event"):
        forecast_command("prod", preview_file=saved, markdown_file=None, gate=False, say=print)
    with pytest.raises(PreviewError, match=r"missing.json: cannot be read \(No such file or directory\)"):
        forecast_command("prod", preview_file=tmp_path / "missing.json", markdown_file=None, gate=False, say=print)


def test_the_gates_verdict_is_held_against_the_gate_job():
    refused_error = "django-docker-release-migration-gate: migration-gate: refused: 1 operation(s) ..."
    assert gate_agrees("gate: refuses this release (its exit 1, run on x)", refused_error) is None
    assert gate_agrees("gate: passes (its exit 0, run on x)", None) is None
    assert gate_agrees("gate: passes (its exit 0, run on x)", "django-docker-web-1: not healthy") is None
    assert "did not" in gate_agrees("gate: refuses this release (its exit 1, run on x)", None)
    assert "refused" in gate_agrees("gate: passes (its exit 0, run on x)", refused_error)
    assert "no verdict" in gate_agrees("gate: not run: x is not on the host", None)


PREVIEWS = sorted((Path(__file__).parent / "previews").glob("*.json"))
KEPT_INPUTS = ("labels", "command", "image")


def reduced(events: list[dict]) -> list[dict]:
    """A preview's event log with only what the forecast reads (no resource values, no
    environment): how tests/tools/previews/ were made from the release rehearsal's
    `--engine pulumi` run, with the lines it printed for each (`record` below)."""
    kept = []
    for event in events:
        if "diagnosticEvent" in event and event["diagnosticEvent"].get("severity") == "error":
            kept.append({"sequence": event["sequence"], "diagnosticEvent": {"severity": "error", "message": "..."}})
        for kind in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"):
            if kind not in event:
                continue
            metadata = event[kind]["metadata"]
            small = {k: metadata[k] for k in ("op", "urn", "type", "keys", "diffs") if k in metadata}
            for side in ("old", "new"):
                state = metadata.get(side) or {}
                if state:
                    inputs = {k: v for k, v in (state.get("inputs") or {}).items() if k in KEPT_INPUTS}
                    if state.get("type") in IMAGE_TYPES:
                        inputs = {k: v for k, v in (state.get("inputs") or {}).items() if k in ("name", "imageName")}
                    elif state.get("type") != JOB:  # a container's command and image say nothing here
                        inputs = {k: v for k, v in inputs.items() if k == "labels"}
                    small[side] = {"custom": state.get("custom", False), "type": state.get("type"), "inputs": inputs}
            kept.append({"sequence": event["sequence"], kind: {"metadata": small}})
    return kept


def record(log: Path, lines: list[str], out: Path) -> None:
    from planning.events import read_events

    events = read_events(log.read_text().splitlines())
    preview = read_preview(events)
    gate = {"image": preview.gate_image, "command": list(preview.gate_command)}
    out.write_text(json.dumps({"forecast": lines, "gate": gate, "events": reduced(events)}, separators=(",", ":")))


@pytest.mark.parametrize("path", PREVIEWS, ids=[p.stem for p in PREVIEWS])
def test_the_real_cli_s_previews_read_as_recorded(path):
    """Each recorded preview (the real CLI's, before an up of the release rehearsal) reads into
    the forecast the rehearsal printed for it, which that up then matched on the engine."""
    recorded = json.loads(path.read_text())
    preview = read_preview(recorded["events"])
    assert list(tell(preview).lines) == recorded["forecast"]
    assert {"image": preview.gate_image, "command": list(preview.gate_command)} == recorded["gate"]
    # The gate job of every release, with the stack's mode; the image prod promotes (a digest).
    if "migration-gate" in tell(preview).jobs:
        assert recorded["gate"]["command"][:3] == ["python", "-m", "django_docker_runtime.migration_gate"]
        assert recorded["gate"]["command"][3:] in (["--mode", "gate"], ["--mode", "maintenance"])
        assert "@sha256:" in recorded["gate"]["image"]


def test_a_swarm_stack_is_refused_in_one_line(tmp_path):
    saved = tmp_path / "preview.events.jsonl"
    saved.write_text(json.dumps(events(step("update", "shop-web", "docker:index/service:Service"))[0]))
    with pytest.raises(PreviewError, match="target swarm: its services roll in place"):
        forecast_command("prod", preview_file=saved, markdown_file=None, gate=False, say=print)


def test_the_gate_runs_the_jobs_command_on_the_image_the_release_will_run():
    gate = step("create-replacement", "shop-release-migration-gate", JOB)
    command = ["python", "-m", "django_docker_runtime.migration_gate", "--mode", "maintenance"]
    # The job's image is unknown in a preview whenever the image changes (an output of the pull).
    gate["resourcePreEvent"]["metadata"]["new"]["inputs"] = {
        "command": command,
        "image": "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
    }
    pull = step("create-replacement", "shop-image-pull", "docker:index/remoteImage:RemoteImage")
    pull["resourcePreEvent"]["metadata"]["urn"] = urn("shop-image-pull", "x").replace(
        "django-docker:components:Web$x", "django-docker:components:AppImage$docker:index/remoteImage:RemoteImage"
    )
    pull["resourcePreEvent"]["metadata"]["new"]["inputs"] = {"name": "ghcr.io/acme/web@sha256:" + "a" * 64}
    preview = read_preview(events(pull, gate))
    assert preview.gate_command == tuple(command)
    assert preview.gate_image == "ghcr.io/acme/web@sha256:" + "a" * 64
    # A stack that builds names its tag; the runtime's image, built before it, never counts.
    build, runtime = (step("update", f"shop-image-{kind}", "docker:index/image:Image") for kind in ("build", "runtime"))
    for s, tag in ((runtime, "django-docker-runtime:1.0.0-abc"), (build, "shop/web:1dbb26d7c80c")):
        s["resourcePreEvent"]["metadata"]["urn"] = pull["resourcePreEvent"]["metadata"]["urn"].replace(
            "remoteImage:RemoteImage::shop-image-pull",
            f"image:Image::{s['resourcePreEvent']['metadata']['urn'].split('::')[-1]}",
        )
        s["resourcePreEvent"]["metadata"]["new"]["inputs"] = {"imageName": tag}
    assert read_preview(events(build, runtime, gate)).gate_image == "shop/web:1dbb26d7c80c"
    assert read_preview(events(gate)).gate_image == ""


def test_a_host_that_does_not_answer_leaves_the_forecast_and_says_why_in_one_line(tmp_path):
    import docker

    from ops.stack import StackOnHost

    saved = tmp_path / "preview.events.jsonl"
    gate = job("shop-release-migration-gate")
    gate["resourcePreEvent"]["metadata"]["new"]["inputs"] = {
        "command": ["python", "-m", "django_docker_runtime.migration_gate", "--mode", "gate"],
        "image": "shop/web:1dbb26d7c80c",
    }
    saved.write_text(
        "\n".join(json.dumps(e) for e in events(container("create-replacement", "shop-web-1", "web"), gate))
    )
    # A real client to a loopback port nothing listens on; the version is given, so the first
    # call is where the host fails to answer (requests' ConnectionError).
    client = docker.DockerClient(base_url="tcp://127.0.0.1:9", version="1.41", timeout=5)
    said: list[str] = []
    code = forecast_command(
        "prod",
        preview_file=saved,
        markdown_file=None,
        gate=True,
        stack_factory=lambda name: StackOnHost(name, client=client),
        say=said.append,
    )
    assert code == 0  # no verdict is no refusal; the forecast above it stands
    assert said[:-1] == [
        "forecast prod: replaced: web x1 (create-before-delete)",
        "jobs: migration-gate",
        "disruption: none",
    ]
    assert said[-1].startswith("gate: not run: ") and "127.0.0.1" in said[-1] and "\n" not in said[-1]
