"""`make check STACK=...` (planning/check.py) and the stack file read as the CLI reads it
(planning/stackfile.py): YAML as yaml.v3 types it, keys, defaults, declared types, secrets."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from planning.check import check
from planning.stackfile import GoYamlLoader, encrypt, go_json_number, passphrase_key, read_stack

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse battery staple"
SALT = base64.b64encode(b"8bytes!!").decode()


@pytest.fixture(scope="module")
def key() -> bytes:
    """The AES key of PASSPHRASE and SALT (PBKDF2, a million rounds: once per module)."""
    import hashlib

    return hashlib.pbkdf2_hmac("sha256", PASSPHRASE.encode(), base64.b64decode(SALT), 1_000_000, 32)


def project(tmp_path: Path, stack_text: str, stack: str = "dev") -> Path:
    """A copy of the project's program and Pulumi.yaml, with this stack file."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(stack_text)
    return tmp_path


def salt_line(key: bytes) -> str:
    return f"encryptionsalt: v1:{SALT}:{encrypt(key, 'pulumi')}\n"


# --- the committed stacks, and a typo -------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_committed_stacks_pass(stack):
    code, lines = check(stack)
    assert code == 0, lines
    assert len(lines) == 1 and lines[0].startswith(f"Pulumi.{stack}.yaml: ok, ")
    assert int(lines[0].split("ok, ")[1].split(" ")[0]) > 20


def test_prod_says_which_output_it_could_not_read():
    assert check("prod")[1][0].endswith(
        "(organization/django-docker/dev's imageRef not read (no backend): a stand-in digest)"
    )


def test_a_typo_fails_naming_it_and_the_key_it_meant(tmp_path):
    root = project(tmp_path, (ROOT / "Pulumi.dev.yaml").read_text() + "  django-docker:webReplica: 5\n")
    assert check("dev", root) == (
        1,
        [
            "Pulumi.dev.yaml: django-docker:webReplica: unknown key; did you mean django-docker:webReplicas? "
            "(docs/configuration.md lists every key)"
        ],
    )


def test_every_problem_one_line_each(tmp_path):
    text = (
        "config:\n"
        "  webReplicas: 3\n"  # no namespace: the CLI refuses the file
        "  django-docker:celeryBeat: yes\n"  # yaml.v3: the string 'yes', not a boolean
        "  django-docker:httpPort: .nan\n"
        "  django_docker:webMemory: 1G\n"
        "  django-docker:serverName: bad host\n"
    )
    code, lines = check("dev", project(tmp_path, text))
    assert code == 1
    assert lines == [
        "Pulumi.dev.yaml: webReplicas: not a configuration key; keys are written <namespace>:<name>, "
        "e.g. django-docker:webReplicas",
        "Pulumi.dev.yaml: django-docker:httpPort: nan is not a value Pulumi can store (NaN and infinities are not JSON)",
        "Pulumi.dev.yaml: django-docker:celeryBeat: 'yes' is not of type boolean; the Pulumi CLI refuses Pulumi.dev.yaml",
        "Pulumi.dev.yaml: django_docker:webMemory: unknown namespace 'django_docker'; did you mean django-docker:webMemory?",
        "Pulumi.dev.yaml: serverName: 'bad host' is not valid; expected a host name, e.g. example.com",
    ]


def test_an_unknown_stack_names_the_stacks():
    assert check("staging") == (2, ["Pulumi.staging.yaml: no such stack file; stacks: dev, prod"])


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_are_decrypted_with_the_passphrase_and_checked(tmp_path, key):
    text = (
        salt_line(key) + f"config:\n  django-docker:postgresPassword:\n    secure: {encrypt(key, 'pw with space ')}\n"
    )
    code, lines = check("dev", project(tmp_path, text), passphrase=PASSPHRASE)
    assert (code, lines) == (
        1,
        ["Pulumi.dev.yaml: postgresPassword: starts or ends with whitespace (a newline?); set it again without it"],
    )
    assert "pw with space" not in "".join(lines)


def test_a_good_secret_passes_and_is_counted(tmp_path, key):
    text = salt_line(key) + f"config:\n  django-docker:djangoSecretKey:\n    secure: {encrypt(key, 'k' * 64)}\n"
    code, lines = check("dev", project(tmp_path, text), passphrase=PASSPHRASE)
    assert code == 0 and lines[0].endswith("(1 secret decrypted and checked)")


def test_without_the_passphrase_a_secret_is_present_but_encrypted(tmp_path, key):
    text = salt_line(key) + f"config:\n  django-docker:postgresPassword:\n    secure: {encrypt(key, ' bad ')}\n"
    code, lines = check("dev", project(tmp_path, text), passphrase=None)
    assert code == 0
    assert lines[0].endswith(
        "(1 secret encrypted, present but not checked (no PULUMI_CONFIG_PASSPHRASE: django-docker:postgresPassword))"
    )


def test_a_wrong_passphrase_is_one_line(tmp_path, key):
    text = salt_line(key) + f"config:\n  django-docker:postgresPassword:\n    secure: {encrypt(key, 'x')}\n"
    code, lines = check("dev", project(tmp_path, text), passphrase="not it")
    assert code == 1
    assert lines == ["Pulumi.dev.yaml: PULUMI_CONFIG_PASSPHRASE: incorrect passphrase for Pulumi.dev.yaml's secrets"]


def test_a_plain_text_secret_is_refused(tmp_path):
    text = "config:\n  django-docker:postgresPassword: hunter2\n"
    assert check("dev", project(tmp_path, text)) == (
        1,
        [
            "Pulumi.dev.yaml: postgresPassword: stored in plain text; set it with "
            "`pulumi config set --secret postgresPassword`"
        ],
    )


def test_another_secrets_provider_is_not_decrypted(tmp_path, key):
    text = (
        "secretsprovider: awskms://alias/pulumi\nencryptedkey: AQIC\n"
        f"config:\n  django-docker:djangoSecretKey:\n    secure: {encrypt(key, 'k' * 64)}\n"
    )
    code, lines = check("dev", project(tmp_path, text), passphrase=PASSPHRASE)
    assert code == 0 and "(secrets provider awskms: django-docker:djangoSecretKey)" in lines[0]


def test_a_secret_path_inside_registry_auth_marks_the_key_secret(tmp_path, key):
    """`pulumi config set --secret --path 'docker:registryAuth[0].password'`: a secure leaf."""
    text = (
        salt_line(key) + "config:\n  django-docker:imageSource: stack\n"
        "  django-docker:imageSourceStack: organization/django-docker/dev\n"
        "  docker:registryAuth:\n    - address: ghcr.io\n      username: bot\n"
        f"      password:\n        secure: {encrypt(key, 'token-1')}\n"
    )
    code, lines = check("dev", project(tmp_path, text), passphrase=PASSPHRASE)
    assert code == 0, lines


def test_the_passphrase_check_value_matches_the_clis_format(key):
    assert passphrase_key(PASSPHRASE, f"v1:{SALT}:{encrypt(key, 'pulumi')}") == key


# --- values as the CLI hands them to the program -----------------------------------------------


def test_yaml_is_typed_as_yaml_v3_types_it():
    loaded = yaml.load(
        "a: yes\nb: 010\nc: 1_000\nd: 0x1F\ne: 3.0\nf: 1e400\ng: on\nh: True\ni: 09\nj: ~\n", Loader=GoYamlLoader
    )
    assert loaded == {
        "a": "yes",
        "b": 8,
        "c": 1000,
        "d": 31,
        "e": 3.0,
        "f": "1e400",
        "g": "on",
        "h": True,
        "i": 9.0,
        "j": None,
    }


@pytest.mark.parametrize(
    "number, text", [(3.0, "3"), (2.5, "2.5"), (1e20, "100000000000000000000"), (1e21, "1e+21"), (1e-7, "1e-7")]
)
def test_floats_are_spelled_as_go_json_spells_them(number, text):
    assert go_json_number(number) == text


def test_values_reach_the_program_as_the_cli_marshals_them(tmp_path):
    text = "config:\n  django-docker:webReplicas: 3.0\n  django-docker:celeryBeat: TRUE\n  pulumi:tags: {b: 1, a: x}\n"
    loaded = read_stack("dev", project(tmp_path, text))
    assert loaded.problems == []
    assert loaded.config["django-docker:webReplicas"] == "3"
    assert loaded.config["django-docker:celeryBeat"] == "true"
    assert loaded.config["pulumi:tags"] == '{"a":"x","b":1}'
    assert loaded.config["django-docker:httpPort"] == "8080"  # Pulumi.yaml's default


def test_the_command_prints_and_exits_as_documented(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "planning.check", "dev"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_SHA": "0" * 40},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Pulumi.dev.yaml: ok, ") and result.stdout.count("\n") == 1
