"""The topology of each stack as a Mermaid diagram (GitHub renders it), generated from the plan.

    python -m tools.topology            print the diagrams
    python -m tools.topology --write    rewrite docs/topology.md and the README's block
    python -m tools.topology --check    exit 1 when a committed diagram differs from the plan

What is drawn is what the program asks for under the SDK's mocks (`plan_for_rehearsal`, the
same plan the tests and the rehearsal use): every container and release job by service (web
replicas as one node, `×N`), the networks each joins (internal ones say so), the volumes each
mounts (read-only ones dotted), and the ports published on the host. Nothing is written by hand,
so a change to the program that changes the topology changes the diagram, and the test
(tests/tools/test_topology.py) fails until it is regenerated.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable

from planning.harness import CONTAINER, JOB, NETWORK, VOLUME, Plan
from tools.generated import replace_block, write_or_check

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "topology.md"
README = ROOT / "README.md"
STACKS = ("dev", "prod")
README_STACK = "prod"
BEGIN, END = "<!-- topology:begin (make docs) -->", "<!-- topology:end -->"
SERVICE = "django-docker.service"


def _id(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def mermaid(plan: Plan) -> str:
    """The flowchart of one stack's plan."""
    networks = {r.outputs.get("name") or r.inputs.get("name"): r for r in plan.of_type(NETWORK)}
    volumes = {r.outputs.get("name") or r.inputs.get("name"): r for r in plan.of_type(VOLUME)}
    runs = [r for r in plan.resources if r.type in (CONTAINER, JOB)]
    count = Counter(r.label(SERVICE) for r in runs)
    lines = ["flowchart LR"]
    seen: set[str] = set()
    edges: list[str] = []
    for r in runs:
        service = r.label(SERVICE) or r.name
        node = _id(service)
        if node in seen:
            continue
        seen.add(node)
        replicas = f" ×{count[service]}" if count[service] > 1 else ""
        if r.type == JOB:
            lines.append(f'  {node}(["{service} (job, each release)"])')
        else:
            lines.append(f'  {node}["{service}{replicas}"]')
        for attachment in r.inputs.get("networksAdvanced") or []:
            network = networks.get(attachment.get("name"))
            if network is not None:
                edges.append(f"  {node} --- net_{_id(network.label('django-docker.network') or network.name)}")
        for mount in r.inputs.get("volumes") or []:
            volume = volumes.get(mount.get("volumeName"))
            if volume is None:
                continue
            target = f"vol_{_id(volume.label('django-docker.volume') or volume.name)}"
            path = mount.get("containerPath", "")
            edges.append(
                f'  {node} -. "{path} (ro)" .-> {target}'
                if mount.get("readOnly")
                else f'  {node} -- "{path}" --> {target}'
            )
        for port in r.inputs.get("ports") or []:
            edges.append(
                f'  host(("host")) -- "{port.get("ip", "0.0.0.0")}:{int(port["external"])} → '
                f'{int(port["internal"])}/{port.get("protocol", "tcp")}" --> {node}'
            )
    for r in plan.of_type(NETWORK):
        kind = r.label("django-docker.network") or r.name
        lines.append(f'  net_{_id(kind)}{{{{"{kind} network{" (internal)" if r.inputs.get("internal") else ""}"}}}}')
    for r in plan.of_type(VOLUME):
        kind = r.label("django-docker.volume") or r.name
        protected = " (protected)" if r.options.get("protect") else ""
        lines.append(f'  vol_{_id(kind)}[("{kind} volume{protected}")]')
    return "\n".join(lines + _unique(edges)) + "\n"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def diagrams() -> dict[str, str]:
    """Each stack's diagram, from its plan (prod planned with the image dev's plan builds)."""
    from rehearsal.runners.stacks import plan_for_rehearsal

    os.environ.setdefault("GIT_SHA", "0" * 40)  # the diagram does not depend on the commit
    return {stack: mermaid(plan_for_rehearsal(stack).plan) for stack in STACKS}


def doc_text(found: dict[str, str]) -> str:
    parts = [
        "# Topology of each stack\n",
        "Generated from the plan by `make docs`; a test fails when it drifts.\n"
        "Containers and release jobs by service, the networks they join, the volumes they mount "
        "(dotted: read-only), and the ports published on the host.\n",
    ]
    for stack, text in found.items():
        parts.append(f"## {stack}\n\n```mermaid\n{text}```\n")
    return "\n".join(parts)


def readme_text(readme: str, found: dict[str, str]) -> str:
    inner = f"```mermaid\n{found[README_STACK]}```\n"
    return replace_block(readme, BEGIN, END, inner, tool="topology", name=README.name, what="diagram")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.topology", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite docs/topology.md and the README's block")
    mode.add_argument("--check", action="store_true", help="exit 1 when a committed diagram differs from the plan")
    args = parser.parse_args(argv)
    found = diagrams()
    if not (args.write or args.check):
        for stack, text in found.items():
            print(f"{stack}:\n{text}")
        return 0
    wanted = {DOC: doc_text(found), README: readme_text(README.read_text(), found)}
    return write_or_check(wanted, root=ROOT, tool="topology", source="the plan", write=args.write)


if __name__ == "__main__":
    sys.exit(main())
