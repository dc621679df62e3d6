"""The README's config table is the one in Pulumi.yaml: every key, its type and its default."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _readme_rows() -> dict[str, list[str]]:
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        match = re.match(r"^\| `([A-Za-z]+)` \| (\w+) \| ([^|]*) \|", line)
        if match:
            rows[match[1]] = [match[2], match[3].strip()]
    return rows


def test_every_config_key_is_documented_with_its_type_and_default():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    rows = _readme_rows()
    assert set(rows) == set(declared)
    for key, declaration in declared.items():
        default = declaration["default"]
        shown = '""' if default == "" else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        assert rows[key] == [declaration["type"], shown], key


def test_every_declared_key_has_a_description_and_a_default():
    for key, declaration in yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"].items():
        assert declaration.get("description"), key
        assert "default" in declaration, key
        assert declaration["type"] in ("string", "integer", "boolean"), key


def test_stack_files_only_set_declared_keys():
    declared = set(yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"])
    for stack in ("dev", "prod"):
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        keys = {k.split(":", 1)[1] for k in config if k.startswith("django-docker:")}
        assert keys <= declared, stack
