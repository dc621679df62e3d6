"""`python -m tools.runtime_image` (make runtime-image): build the runtime's image on a Docker engine.

The program builds it itself on `pulumi up` (components/image.py); this is for everything else
that builds an app image: a plain `docker build` of a team's Dockerfile (its ARG default names
`django-docker-runtime:<version>`), the tests, the benchmark, `make adopt`'s probe. It is tagged
both with the program's own tag (version and content hash) and with the bare version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.settings.app import RUNTIME_DIR, RUNTIME_REPOSITORY, runtime_image_tag, runtime_version


def build_runtime_image(client, root: Path = RUNTIME_DIR) -> str:
    """Build runtime/ on the engine `client` talks to; returns the program's tag for it."""
    tag = runtime_image_tag(root)
    image, _ = client.images.build(path=str(root), tag=tag, rm=True, pull=False)
    image.tag(RUNTIME_REPOSITORY, runtime_version(root))
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.runtime_image", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    import docker

    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except Exception as error:
        print(f"runtime-image: no Docker engine answers ({error}); start one (make docker)", file=sys.stderr)
        return 1
    tag = build_runtime_image(client)
    print(f"runtime-image: built {tag} (also {RUNTIME_REPOSITORY}:{runtime_version()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
