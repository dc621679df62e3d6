"""`python -m django_docker_runtime.run [--build] -- COMMAND ...`: run a command the way the stack does.

- Every NAME_FILE in the environment becomes NAME (the file's content), so settings that read
  os.environ (django-environ, decouple, plain os.environ) see a Docker secret like any variable
  (the swarm target mounts secrets as files). NAME and NAME_FILE both set is an error.
- `--build`: for a command run while the image is built (collectstatic): the variables the program
  provides at run time get values that are obviously not secrets, for this process only, so
  settings import without a secret and none ends up in a layer or in `docker history`
  (BUILD_PLACEHOLDERS; a variable already set keeps its value).
Then it execs the command: it replaces this process (PID and signals are the command's own).
"""

from __future__ import annotations

import os
import sys

from django_docker_runtime import env

# The run-time environment the program provides (docs/adopt.md), as placeholders for a build.
BUILD_PLACEHOLDERS = {
    "DJANGO_SECRET_KEY": "build-time-placeholder-not-a-secret-" + "x" * 32,
    "DJANGO_ALLOWED_HOSTS": "build.invalid",
    "DATABASE_URL": "postgres://build:build@build.invalid:5432/build",
    "REDIS_URL": "redis://build.invalid:6379/0",
}


def main(argv: list[str]) -> int:
    build = False
    if argv[:1] == ["--build"]:
        build, argv = True, argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m django_docker_runtime.run [--build] -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    environ = dict(os.environ)
    env.expand_files(environ)
    if build:
        for name, value in BUILD_PLACEHOLDERS.items():
            environ.setdefault(name, value)
    try:
        os.execvpe(argv[0], argv, environ)
    except OSError as error:
        print(f"django_docker_runtime.run: cannot run {argv[0]}: {error.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
