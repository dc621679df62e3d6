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
# Distributions the program needs through a module it imports, not by their own name.
IMPORTED_THROUGH = {"paramiko": "docker.transport.sshconn"}


def pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", path.read_text(), re.M))


def program_modules() -> set[str]:
    found = set()
    for path in [ROOT / "__main__.py", *sorted((ROOT / "components").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
    return found


def program_imports() -> set[str]:
    tops = {module.split(".")[0] for module in program_modules()}
    return tops - set(sys.stdlib_module_names) - {"__future__", "components"}


def test_the_program_imports_exactly_what_requirements_txt_pins():
    imported = {DISTRIBUTION.get(name, name) for name in program_imports()}
    modules = program_modules()
    through = {dist for dist, module in IMPORTED_THROUGH.items() if module in modules}
    assert through == set(IMPORTED_THROUGH)  # each still needed
    assert imported | through == set(pins(ROOT / "requirements.txt"))


def test_ssh_hosts_get_the_transport_that_needs_paramiko():
    # docker-py drops its ssh module when paramiko is missing; every ssh:// host then fails.
    import docker.transport

    assert hasattr(docker.transport, "SSHHTTPAdapter")


def test_requirements_dev_adds_to_the_programs_and_pins_nothing_twice():
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert re.search(r"^-r requirements\.txt$", dev, re.M)
    assert not set(pins(ROOT / "requirements.txt")) & set(pins(ROOT / "requirements-dev.txt"))
