"""requirements.txt is exactly what the program imports; the rest is requirements-dev.txt's."""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Import name -> distribution, where they differ.
DISTRIBUTION = {
    "pulumi_docker": "pulumi-docker",
    "pulumi_random": "pulumi-random",
    "dotenv": "python-dotenv",
    "yaml": "pyyaml",
}


def pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", path.read_text(), re.M))


def program_imports() -> set[str]:
    found = set()
    for path in [ROOT / "__main__.py", *sorted((ROOT / "components").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"__future__", "components"}


def test_the_program_imports_exactly_what_requirements_txt_pins():
    imported = {DISTRIBUTION.get(name, name) for name in program_imports()}
    assert imported == set(pins(ROOT / "requirements.txt"))


def test_requirements_dev_adds_to_the_programs_and_pins_nothing_twice():
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert re.search(r"^-r requirements\.txt$", dev, re.M)
    assert not set(pins(ROOT / "requirements.txt")) & set(pins(ROOT / "requirements-dev.txt"))
