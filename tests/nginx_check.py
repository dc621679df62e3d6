"""Test helper: `nginx -t` on a config inside the pinned nginx image, on the local engine.

No tests here. Tests that use it need a Docker engine: mark them `@pytest.mark.docker` and
take the `nginx_image` fixture (import it into the test module), which skips without an
engine and otherwise makes sure the pinned image is there -- pulled, or where no registry
answers the rehearsal's stand-in (rehearsal.images.standins.ensure_images; Debian forky's nginx
1.30, which knows `server ... resolve` like the pinned 1.28).

    from tests.nginx_check import nginx_image, nginx_test  # noqa: F401 (nginx_image: fixture)

    @pytest.mark.docker
    def test_conf_passes(nginx_image):
        result = nginx_test(render.nginx_conf(...), {render.NGINX_TLS_CERT: cert, ...})
        assert result.returncode == 0, result.output

The config goes to /etc/nginx/nginx.conf of a created-not-started container, and every extra
file to its absolute path, with put_archive (as the program's `uploads` do); then the image's
own entrypoint runs `nginx -t`. The container has no network (`network_mode=none`): `nginx -t`
never asks a resolver, and an upstream server with `resolve` is resolved only at run time,
so `resolver 127.0.0.11` needs no user-defined network to pass (checked: the rendered config
passes on `none`, the default bridge and a user-defined bridge alike). A plain upstream
hostname, which nginx resolves at load, needs a network that knows it: pass `network=`.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import Mapping, NamedTuple, Optional, Union

import pytest

REPO = Path(__file__).resolve().parents[1]
LABEL = "tests.nginx-check"


# The app paths the example stack renders nginx with (Pulumi.yaml's defaults), for tests.
APP_PATHS = dict(app_port=8000, static_url="/static/", media_url="/media/", health_path="/health/")


def pinned_image(key: str = "nginxImage") -> str:
    """The image Pulumi.yaml pins by default for a config key (nginxImage, ...)."""
    import yaml

    config = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]
    return config[key]["default"]


NGINX_IMAGE = pinned_image("nginxImage")


class NginxTest(NamedTuple):
    returncode: int
    output: str  # nginx's stdout and stderr


FileContent = Union[bytes, str, tuple[Union[bytes, str], int]]  # content, or (content, mode)


def docker_client(timeout: int = 600):
    """A client for the local engine, or skip the test when no engine answers."""
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as error:  # no engine here: nothing to prove
        pytest.skip(f"no Docker engine ({error}); scripts/start-docker.sh starts one")
    return client


_ensured: set[tuple[str, str]] = set()


def ensure_image(client, ref: str) -> str:
    """Make `ref` present (real, pulled or stand-in) once per process; return it.

    Skips when only a stand-in could provide it and this process cannot build one (building
    the stand-ins' Debian base needs root and debootstrap); any other failure fails."""
    from rehearsal.errors import RehearsalError
    from rehearsal.images.standins import ensure_images

    key = (client.api.base_url, ref)
    if key not in _ensured:
        try:
            ensure_images(client, [ref], say=lambda line: print(line, flush=True))
        except RehearsalError as error:
            if os.geteuid() != 0 or shutil.which("debootstrap") is None:
                pytest.skip(f"{ref} is not on the engine and cannot be built here: {error}")
            raise
        _ensured.add(key)
    return ref


@pytest.fixture(scope="session")
def nginx_image() -> str:
    """The pinned nginx image, on the local engine (skips without an engine)."""
    client = docker_client()
    try:
        return ensure_image(client, NGINX_IMAGE)
    finally:
        client.close()


def archive(files: Mapping[str, FileContent]) -> bytes:
    """A tar of files at absolute paths, for put_archive(container, "/", ...)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, content in files.items():
            if not path.startswith("/"):
                raise ValueError(f"file paths must be absolute, got {path!r}")
            mode = 0o644
            if isinstance(content, tuple):
                content, mode = content
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def nginx_test(
    conf: str,
    files: Optional[Mapping[str, FileContent]] = None,
    *,
    image: str = NGINX_IMAGE,
    network: Optional[str] = None,
    timeout: float = 60,
    client=None,
) -> NginxTest:
    """Run `nginx -t` for `conf` (the whole nginx.conf) in `image`; files: path -> content."""
    own_client = client is None
    if own_client:
        client = docker_client()
    try:
        ensure_image(client, image)
        networking = {"network": network} if network else {"network_mode": "none"}
        container = client.containers.create(
            image,
            ["nginx", "-t"],
            environment={"NGINX_ENTRYPOINT_QUIET_LOGS": "1"},  # the official entrypoint's chatter
            labels={LABEL: "true"},
            **networking,
        )
        try:
            container.put_archive("/", archive({"/etc/nginx/nginx.conf": conf, **(files or {})}))
            container.start()
            try:
                status = container.wait(timeout=timeout)
            except Exception as error:  # requests' ReadTimeout, or the engine went away
                raise AssertionError(f"nginx -t did not finish within {timeout:.0f}s: {error}") from error
            output = container.logs(stdout=True, stderr=True).decode(errors="replace")
            return NginxTest(int(status["StatusCode"]), output)
        finally:
            container.remove(force=True)
    finally:
        if own_client:
            client.close()
