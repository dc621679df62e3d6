"""`python -m django_docker_runtime.run -- COMMAND ...`: run a command with its secret files read.

Every NAME whose value is a file (VALUES_FROM_FILES lists them; NAME_FILE names the file: the
swarm target mounts secrets so) becomes a plain NAME, so settings that read os.environ
(django-environ, decouple, plain os.environ) see a Docker secret like any variable. NAME and
NAME_FILE both set is an error. Then it execs the command: it replaces this process (PID and
signals are the command's own).
"""

from __future__ import annotations

import os
import sys

from django_docker_runtime import env


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m django_docker_runtime.run -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    environ = dict(os.environ)
    env.expand_files(environ)
    try:
        os.execvpe(argv[0], argv, environ)
    except OSError as error:
        print(f"django_docker_runtime.run: cannot run {argv[0]}: {error.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
