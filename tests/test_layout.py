"""The house's shape: no package imports one above it, and no module imports itself round a cycle.

Layers, bottom up (a package imports only packages below it):
  components           the program (settings and render at its bottom: they import no component)
  planning, ops        the plan harness; the day-2 commands (neither knows the other)
  rehearsal            the proof on a real engine (plans with planning, reads stacks with ops); inside
                       it, bottom up: images and hosts, the emulation, the drivers of the real
                       Pulumi CLI and the checks, then the runners, scenarios and faults, which use
                       them all
  tools                generators and the end-to-end runner
tests import anything; nothing imports tests.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"components": 0, "planning": 1, "ops": 1, "rehearsal": 2, "tools": 3}
FIRST_PARTY = (*LAYERS, "tests")
# Inside components: these are below every component (the program's pure parts and its reader).
COMPONENTS_FOUNDATION = ("components.render", "components.settings", "components.dockerhost")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """First-party modules a file imports, anywhere in it (a lazy import is still an edge;
    an import for the type checker only is not: it never runs)."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in FIRST_PARTY}


def _graph() -> dict[str, set[str]]:
    files = [f for package in LAYERS for f in (ROOT / package).rglob("*.py")]
    modules = {_module_name(f): f for f in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        # `from a.b import c` names module a.b.c when there is one, else a.b's attribute c
        graph[name] = {target for target in _imports(path) if target in modules and target != name}
    return graph


def test_no_package_imports_a_package_above_it():
    upward = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in targets
        if target.split(".")[0] != "tests"
        and LAYERS[target.split(".")[0]] > LAYERS[module.split(".")[0]]
        or target.split(".")[0] == "tests"
    ]
    assert upward == []


def test_planning_and_ops_do_not_know_each_other():
    graph = _graph()
    across = [
        f"{m} imports {t}"
        for m, ts in graph.items()
        for t in ts
        if {m.split(".")[0], t.split(".")[0]} == {"planning", "ops"}
    ]
    assert across == []


def test_settings_and_render_import_no_component():
    graph = _graph()
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith(COMPONENTS_FOUNDATION)
        for target in targets
        if target.startswith("components.") and not target.startswith(COMPONENTS_FOUNDATION)
    ]
    assert wrong == []


# Inside rehearsal: what each part may not import (so the tree says where the emulation of the
# engine ends and the checks begin).
REHEARSAL_BELOW = {
    "rehearsal.images": ("emulation", "checks", "runners", "scenarios", "faults"),
    "rehearsal.hosts": ("emulation", "checks", "runners", "scenarios", "faults"),
    "rehearsal.emulation": ("checks", "runners", "scenarios", "faults", "hosts"),
    "rehearsal.checks": ("runners", "scenarios", "faults"),
    # The real Pulumi CLI, run (drivers/): above the emulation (it reads events into the model's
    # steps), below the runners that take a stack through its updates with it.
    "rehearsal.drivers": ("checks", "runners", "scenarios", "faults", "hosts"),
}


def test_rehearsal_parts_import_only_the_parts_below_them():
    wrong = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for part, forbidden in REHEARSAL_BELOW.items()
        if module.startswith(part + ".")
        for target in targets
        if target.startswith(tuple(f"rehearsal.{name}" for name in forbidden))
    ]
    assert wrong == []


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(target) :] + [target]))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_checks_see_the_whole_house():
    graph = _graph()
    # a layout check that found nothing to check would pass for the wrong reason
    assert {
        "components.web",
        "components.settings.stack",
        "planning.harness",
        "ops.stack",
        "rehearsal.emulation.engine",
        "rehearsal.checks.smoke",
        "rehearsal.runners.release",
    } <= set(graph)
    assert "rehearsal.emulation.engine" in graph["rehearsal.checks.smoke"]
    assert "components.common" in graph["components.web"]
