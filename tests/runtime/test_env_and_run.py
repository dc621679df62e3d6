"""The runtime's environment reader, its NAME_FILE expansion, the `run` wrapper and APP_MODULE."""

import re
import subprocess
import sys

import pytest

from django_docker_runtime import app, env
from tests.django_support import app_env


def test_expand_files_turns_each_name_file_into_name(tmp_path):
    secret = tmp_path / "django-secret-key"
    secret.write_text("s3cret\n")  # the trailing newline is not part of it
    environ = {
        "DJANGO_SECRET_KEY_FILE": str(secret),
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",  # a path, not a secret: left alone
        "VALUES_FROM_FILES": "DJANGO_SECRET_KEY",
        "OTHER": "x",
    }

    assert env.expand_files(environ) == ["DJANGO_SECRET_KEY"]
    assert environ == {
        "DJANGO_SECRET_KEY": "s3cret",
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        "OTHER": "x",
    }
    assert env.expand_files({"A_FILE": str(secret)}) == []  # nothing listed, nothing read


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"A": "x", "A_FILE": "{file}"}, "configuration error: A and A_FILE are both set; set one"),
        ({"A_FILE": "{missing}"}, "configuration error: A_FILE cannot be read: No such file or directory"),
        ({"A_FILE": "{empty}"}, "configuration error: A_FILE names an empty file"),
        ({}, "configuration error: A_FILE is not set, and VALUES_FROM_FILES says A is a file"),
    ],
)
def test_expand_files_refuses_in_one_line_naming_the_variable_never_the_value(tmp_path, environ, message):
    (tmp_path / "file").write_text("the-value")
    (tmp_path / "empty").write_text("\n")
    paths = {"file": tmp_path / "file", "missing": tmp_path / "missing", "empty": tmp_path / "empty"}
    environ = {k: v.format(**paths) for k, v in environ.items()} | {"VALUES_FROM_FILES": "A"}

    with pytest.raises(env.EnvError) as error:
        env.expand_files(environ)
    assert str(error.value).startswith(message)
    assert "the-value" not in str(error.value)


def _run(*argv: str, **environ: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "django_docker_runtime.run", *argv],
        env=app_env(**environ),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_run_execs_the_command_with_secret_files_as_variables(tmp_path):
    (tmp_path / "url").write_text("postgres://u:p@db/x\n")
    code = "import os; print(os.environ['DATABASE_URL'], 'DATABASE_URL_FILE' in os.environ)"

    result = _run(
        "--", sys.executable, "-c", code, DATABASE_URL_FILE=str(tmp_path / "url"), VALUES_FROM_FILES="DATABASE_URL"
    )

    assert (result.returncode, result.stdout.strip()) == (0, "postgres://u:p@db/x False")


def test_run_passes_the_commands_exit_status_through_and_names_a_missing_command():
    assert _run("--", sys.executable, "-c", "raise SystemExit(7)").returncode == 7
    missing = _run("--", "no-such-command-here")
    assert missing.returncode == 127
    assert (
        missing.stderr.strip()
        == "django_docker_runtime.run: cannot run no-such-command-here: No such file or directory"
    )
    assert _run().returncode == 2


def test_app_module_names_the_application_and_a_wrong_one_is_one_line(monkeypatch):
    monkeypatch.setenv("APP_MODULE", "json:loads")
    import json

    assert app.load() is json.loads
    for value, message in [
        ("json:", "APP_MODULE must be module.path[:attribute], got 'json:'"),
        ("json:no_such", "APP_MODULE json has no attribute 'no_such'"),
        ("json", "APP_MODULE json has no attribute 'application'"),
    ]:
        monkeypatch.setenv("APP_MODULE", value)
        with pytest.raises(env.EnvError, match=f"^{re.escape('configuration error: ' + message)}$"):
            app.load()
    monkeypatch.delenv("APP_MODULE")
    with pytest.raises(env.EnvError, match="APP_MODULE is required and not set"):
        app.load()
