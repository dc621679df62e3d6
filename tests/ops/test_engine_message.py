"""When no Docker engine answers: one line that says why in words (no Python exception repr)
and what to do; `python -m ops engine STACK` (what `make up` checks first)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from components import dockerhost
from ops.stack import OpsError, engine_client

ROOT = Path(__file__).resolve().parents[2]


def _message(docker_host: str) -> str:
    with pytest.raises(OpsError) as error:
        engine_client("dev", dockerhost.resolve({"host": docker_host}, {}), timeout=5)
    return str(error.value)


def test_no_socket_says_to_start_an_engine(tmp_path):
    where = f"unix://{tmp_path}/docker.sock"
    assert _message(where) == (
        f"no Docker engine answers for stack dev: docker:host: {where}: no socket there; start one here "
        "(`make docker`, as root), or point the stack at its host with docker:host in Pulumi.dev.yaml or DOCKER_HOST"
    )


def test_a_refused_port_says_to_check_the_host():
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    where = f"tcp://127.0.0.1:{port}"
    assert _message(where) == (
        f"no Docker engine answers for stack dev: docker:host: {where}: connection refused; "
        f"check that the host is up and that `docker -H {where} info` works from here"
    )


def test_no_exception_repr_reaches_the_user(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ops", "status", "dev"],
        cwd=ROOT,
        env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/docker.sock"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    for repr_part in ("FileNotFoundError", "Connection aborted", "(2,", "Error while fetching"):
        assert repr_part not in result.stderr


def test_ops_engine_refuses_an_unknown_stack_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "ops", "engine", "staging"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr == "ops engine: unknown stack 'staging'; stacks: dev, prod (from Pulumi.<stack>.yaml)\n"
