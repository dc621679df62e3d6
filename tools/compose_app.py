"""What a compose file says about the app itself: its commands and its Dockerfile (for tools/compose_import.py).

Pure functions, no compose and no stack keys' bookkeeping: each reader takes words and returns
Findings (a stack key to set, a note, a refusal, a variable, a release command), which the
importer applies to the compose key they came from.

Commands. A service's `command` (or, without one, its Dockerfile's CMD) is split the way a shell
would run it: `sh -c "..."` / `bash -c` are unwrapped, `&&`, `||`, `;` and `|` separate commands,
`exec` is dropped, redirections are noted. Each command is one program: gunicorn, uvicorn, daphne
(also as `python -m X`), celery, `manage.py` / `django-admin`; what stands before the program
(`wait-for-it.sh db:5432 --`, `ddtrace-run`, `VAR=1`) is a prefix, noted as not mapped.

Options are read as each program reads them, from tables of every option its pinned release has
(tests/tools/test_compose_import.py checks them against gunicorn's and Celery's own): gunicorn and
daphne parse with argparse (`--workers=4`, `--workers 4`, `-w4`, `-w 4`, and unique prefixes such
as `--thr 4` for `--threads`), Celery and uvicorn with click (no prefixes). An option the table does not have is
refused: its value could not be told from the application argument.

Every option is mapped to a stack key, or named in one line `not mapped: <option as written>
(<reason>)`, or refused in one line when the program cannot run what it asks (a gevent pool, a
daemonized server, a UNIX socket). A value that may hold a secret (a broker URL, a password) is
never shown.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Iterable, Optional
from urllib.parse import urlsplit

# --- findings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One thing a command or Dockerfile says, for the importer to apply.

    kind: set (key = value), soft (key = value unless the compose file sets it otherwise),
    note, refuse, env (a variable name = value for the app), release (migrateCommand /
    collectstaticCommand = value), missing-concurrency (a worker without -c; value: beside
    --autoscale). `where` names the option (`--workers`) the source comment shows after the
    compose key."""

    kind: str
    key: str = ""
    value: Any = None
    where: str = ""
    text: str = ""


def _set(key: str, value: Any, where: str) -> Finding:
    return Finding("set", key=key, value=value, where=where)


def _note(text: str) -> Finding:
    return Finding("note", text=text)


def _refuse(where: str, text: str) -> Finding:
    return Finding("refuse", where=where, text=text)


# --- splitting a command ------------------------------------------------------------------

SHELLS = {"sh", "bash", "ash", "dash", "zsh"}
SEPARATORS = {"&&", "||", ";", "|", "&", ";;", "|&"}
REDIRECTIONS = {">", ">>", "<", ">&", "<&", "&>", "&>>", ">|", "<>", "<<", "<<<"}
_SHELL_OPTIONS = re.compile(r"^-[a-z]*c[a-z]*$")  # -c, -ec, -lc, -exc


def _basename(word: str) -> str:
    return PurePosixPath(word).name


_FD = re.compile(r"(^|\s)([0-9]+)(?=[<>])")  # `2>&1`: a file descriptor right before a redirection
_FD_WORD = re.compile(r"^__fd([0-9]+)__$")


def _shell_words(script: str) -> list[str]:
    """A shell script's words, its operators (&&, ;, >, ...) as words of their own; the file
    descriptor of a redirection (`2>`) marked, so that it is never taken for an argument (`-w 2 >`)."""
    lexer = shlex.shlex(_FD.sub(r"\1__fd\2__ ", script), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def script_words(value: Any) -> list[str]:
    """A compose command (string or list) as words; `sh -c "..."` becomes the words of its script."""
    if value is None:
        return []
    words = [str(w) for w in value] if isinstance(value, list) else shlex.split(str(value))
    if len(words) >= 3 and _basename(words[0]) in SHELLS and _SHELL_OPTIONS.match(words[1]):
        return _shell_words(words[2])
    return words


def segments(words: list[str]) -> tuple[list[list[str]], list[str]]:
    """The commands of a script (split at && || ; |), and the redirections taken out of them."""
    result: list[list[str]] = [[]]
    redirected: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in SEPARATORS:
            result.append([])
        elif word in REDIRECTIONS:
            current = result[-1]
            fd = _FD_WORD.match(current[-1]) if current else None
            prefix = fd.group(1) if fd else ""
            if fd:
                current.pop()
            target = words[index + 1] if index + 1 < len(words) else ""
            redirected.append(f"{prefix}{word}{target}")
            index += 1
        else:
            result[-1].append(word)
        index += 1
    commands = []
    for command in result:
        while command and command[0] == "exec":
            command = command[1:]
        if command:
            commands.append(command)
    return commands, redirected


_PYTHON = re.compile(r"^python(?:[0-9](?:\.[0-9]+)?)?$")
SERVERS = ("gunicorn", "uvicorn", "daphne")
PROGRAMS = (*SERVERS, "celery", "manage.py", "django-admin")


@dataclass(frozen=True)
class Program:
    """One command of a script: the program, the words before it (a prefix), its own words
    (`python -m gunicorn` or `./manage.py`, as written) and its arguments."""

    name: str
    prefix: list[str]
    head: list[str]
    args: list[str]


def program_of(command: list[str]) -> Optional[Program]:
    """The program a command runs, found anywhere in it (after a wrapper such as `wait-for-it.sh
    db:5432 --`); None when it runs none the importer reads."""
    for index, word in enumerate(command):
        base = _basename(word)
        if base in PROGRAMS:
            return Program(base, command[:index], command[index : index + 1], command[index + 1 :])
        if _PYTHON.match(base) and index + 1 < len(command):
            following = command[index + 1]
            if following == "-m" and index + 2 < len(command) and command[index + 2] in (*SERVERS, "celery"):
                return Program(command[index + 2], command[:index], command[index : index + 3], command[index + 3 :])
            if _basename(following) == "manage.py":
                return Program("manage.py", command[:index], command[index : index + 2], command[index + 2 :])
    return None


def shown(words: Iterable[str]) -> str:
    return shlex.join(list(words))


# --- options ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """One option of a program, as its parser declares it."""

    names: tuple[str, ...]
    arity: str = "value"
    """value, flag, or optional (argparse nargs='?': a value only when the next word is not an option)."""
    to: str = ""
    """What it maps to: a stack key, or one of the readers' own handlers (app, bind, ...)."""
    why: str = ""
    """Not mapped: the reason (a note), or with `refused` the refusal."""
    refused: bool = False
    secret: bool = False
    """Its value may be a secret: never shown."""

    @property
    def name(self) -> str:
        longs = [n for n in self.names if n.startswith("--")]
        return longs[0] if longs else self.names[0]


@dataclass(frozen=True)
class Given:
    flag: Flag
    value: Optional[str]
    text: str
    """As written (`-w 4`, `--workers=4`), for the notes."""


class ArgvError(Exception):
    """The words cannot be read as the program reads them: one line."""


def _table(flags: Iterable[Flag]) -> dict[str, Flag]:
    table: dict[str, Flag] = {}
    for flag in flags:
        for name in flag.names:
            table[name] = flag
    return table


def parse(
    words: list[str], flags: Iterable[Flag], *, program: str, abbreviations: bool, stop_at_positional: bool = False
) -> tuple[list[Given], list[str], int]:
    """Options and positionals, as argparse (abbreviations) or click reads them; with
    stop_at_positional, stops at the first positional (a subcommand) and says where."""
    table = _table(flags)
    longs = sorted(name for name in table if name.startswith("--"))
    given: list[Given] = []
    positionals: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            positionals.extend(words[index + 1 :])
            index = len(words)
            break
        if word.startswith("--") and len(word) > 2:
            name, eq, inline = word.partition("=")
            flag = table.get(name)
            if flag is None and abbreviations:
                matches = [n for n in longs if n.startswith(name)]
                if len(matches) > 1:
                    raise ArgvError(f"{name} is ambiguous for {program} ({', '.join(matches)})")
                flag = table[matches[0]] if matches else None
            if flag is None:
                raise ArgvError(f"{name} is not an option of {program}")
            if flag.arity == "flag":
                if eq:
                    raise ArgvError(f"{name} of {program} takes no value")
                given.append(Given(flag, None, word))
            elif eq:
                given.append(Given(flag, inline, word))
            elif flag.arity == "optional":
                following = words[index + 1] if index + 1 < len(words) else None
                if following is not None and not following.startswith("-"):
                    given.append(Given(flag, following, f"{word} {following}"))
                    index += 1
                else:
                    given.append(Given(flag, None, word))
            else:
                if index + 1 >= len(words):
                    raise ArgvError(f"{name} of {program} needs a value")
                given.append(Given(flag, words[index + 1], f"{word} {words[index + 1]}"))
                index += 1
        elif word.startswith("-") and len(word) > 1 and not re.match(r"^-[0-9.]+$", word):
            flag = table.get(word)
            if flag is not None:  # -w 4, -Q a,b
                if flag.arity == "flag":
                    given.append(Given(flag, None, word))
                elif index + 1 >= len(words):
                    raise ArgvError(f"{word} of {program} needs a value")
                else:
                    given.append(Given(flag, words[index + 1], f"{word} {words[index + 1]}"))
                    index += 1
            else:  # -w4, -w=4 (argparse), -DE (flags together)
                position = 1
                while position < len(word):
                    short = "-" + word[position]
                    flag = table.get(short)
                    if flag is None:
                        raise ArgvError(f"{short if position > 1 else word} is not an option of {program}")
                    rest = word[position + 1 :]
                    if flag.arity == "flag":
                        given.append(Given(flag, None, short))
                        position += 1
                        continue
                    if abbreviations and rest.startswith("="):
                        rest = rest[1:]
                    given.append(Given(flag, rest, word if position == 1 else f"{short}{rest}"))
                    break
        else:
            if stop_at_positional:
                return given, positionals, index
            positionals.append(word)
        index += 1
    return given, positionals, index


_CREDENTIALS = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^/@\s]*@")


def has_credentials(value: str) -> bool:
    """A URL with a password in it (scheme://user:password@host)."""
    return bool(_CREDENTIALS.match(value.strip()))


def written(given: Given) -> str:
    """An option as written, or only its name when its value may be a secret."""
    if given.flag.secret or (given.value and has_credentials(given.value)):
        name = given.text.split("=", 1)[0].split(" ", 1)[0] if given.text.startswith("--") else given.text[:2]
        return f"{name} <value not shown>"
    return given.text


def not_mapped(given: Given) -> Finding:
    if given.flag.refused:
        return _refuse(given.flag.name, given.flag.why)
    return _note(f"not mapped: {written(given)} ({given.flag.why})")


# --- gunicorn (27.0.1: gunicorn/config.py, every setting with a `cli`) ---------------------

LOGS = "the runtime's config logs access and errors to stdout/stderr, for the engine to collect"
TLS = "nginx terminates TLS (tlsCertificate, tlsKey); the app serves plain HTTP on the frontend network"
RELOAD = "a development setting: the program runs the built image (no live reload)"
APP_USER = "the program runs the app as uid 10001 on a read-only root filesystem"
NO_KEY = "no stack key: the runtime's config keeps gunicorn's default"
PATHS = "the runtime imports APP_MODULE from the image's WORKDIR and PYTHONPATH: set them in the Dockerfile"
PLAIN_HTTP = "nginx speaks plain HTTP to the app (no PROXY protocol, no uwsgi)"
PARSING = "no stack key: the runtime's config keeps gunicorn's default (nginx reads the request first)"
METRICS = "no stack key for metrics: the runtime's config sends none"
FORWARDED = "the program trusts X-Forwarded-* from the frontend network only (frontendSubnet)"
NOT_SERVING = "the command would not serve; remove it"
DAEMON = "a daemonized server leaves the container's main process, which ends the container; remove it"
GRACEFUL = "the program sets the graceful timeout to webTimeout"
KEEPALIVE = "the runtime's config keeps connections alive 5 s: nginx reuses its upstream connections"
ASGI_OPTIONS = "no stack key: the program's asgi server is uvicorn-worker's UvicornWorker, with uvicorn's defaults"
CONTROL = "the runtime's config turns gunicorn's control socket off (no writable home directory)"

GUNICORN = (
    Flag(("-c", "--config"), to="config"),
    Flag(("-b", "--bind"), to="bind"),
    Flag(("--backlog",), why=NO_KEY),
    Flag(("-w", "--workers"), to="webConcurrency"),
    Flag(("-k", "--worker-class"), to="worker-class"),
    Flag(("--threads",), to="webThreads"),
    Flag(("--worker-connections",), why=NO_KEY),
    Flag(("--max-requests",), to="webMaxRequests"),
    Flag(("--max-requests-jitter",), to="webMaxRequestsJitter"),
    Flag(("-t", "--timeout"), to="webTimeout"),
    Flag(("--graceful-timeout",), why=GRACEFUL),
    Flag(("--keep-alive",), why=KEEPALIVE),
    Flag(("--limit-request-line",), why=PARSING),
    Flag(("--limit-request-fields",), why=PARSING),
    Flag(("--limit-request-field_size",), why=PARSING),
    Flag(("--reload",), "flag", why=RELOAD),
    Flag(("--reload-engine",), why=RELOAD),
    Flag(("--reload-extra-file",), why=RELOAD),
    Flag(("--spew",), "flag", why="a debugging setting that traces every line; the program runs none"),
    Flag(("--check-config",), "flag", why=NOT_SERVING, refused=True),
    Flag(("--print-config",), "flag", why=NOT_SERVING, refused=True),
    Flag(
        ("--preload",),
        "flag",
        why="the runtime's config always preloads the app (an app that cannot import never listens)",
    ),
    Flag(("--no-sendfile",), "flag", why=NO_KEY),
    Flag(
        ("--reuse-port",), "flag", why="the runtime's config keeps it off: the master binds only once the app is ready"
    ),
    Flag(("--chdir",), why=PATHS),
    Flag(("-D", "--daemon"), "flag", why=DAEMON, refused=True),
    Flag(("-e", "--env"), to="env"),
    Flag(("-p", "--pid"), why="no stack key: nothing reads a pid file in a container"),
    Flag(("--worker-tmp-dir",), why="the runtime's config keeps worker heartbeats in /dev/shm (tmpfs)"),
    Flag(("-u", "--user"), why=APP_USER),
    Flag(("-g", "--group"), why=APP_USER),
    Flag(("-m", "--umask"), why=APP_USER),
    Flag(("--initgroups",), "flag", why=APP_USER),
    Flag(("--forwarded-allow-ips",), why=FORWARDED),
    Flag(("--access-logfile",), why=LOGS),
    Flag(("--disable-redirect-access-to-syslog",), "flag", why=LOGS),
    Flag(("--access-logformat",), why=LOGS),
    Flag(("--error-logfile", "--log-file"), why=LOGS),
    Flag(("--log-level",), to="log-level"),
    Flag(("--capture-output",), "flag", why=LOGS),
    Flag(("--logger-class",), why=LOGS),
    Flag(("--log-config",), why=LOGS),
    Flag(("--log-config-json",), why=LOGS),
    Flag(("--log-syslog-to",), why=LOGS),
    Flag(("--log-syslog",), "flag", why=LOGS),
    Flag(("--log-syslog-prefix",), why=LOGS),
    Flag(("--log-syslog-facility",), why=LOGS),
    Flag(("-R", "--enable-stdio-inheritance"), "flag", why=LOGS),
    Flag(("--statsd-host",), why=METRICS),
    Flag(("--dogstatsd-tags",), why=METRICS),
    Flag(("--statsd-prefix",), why=METRICS),
    Flag(("--enable-backlog-metric",), "flag", why=METRICS),
    Flag(("-n", "--name"), why="no stack key: the processes keep gunicorn's name"),
    Flag(("--pythonpath",), why=PATHS),
    Flag(
        ("--paste", "--paster"),
        why="the runtime serves APP_MODULE (appModule), not a PasteDeploy file; remove it",
        refused=True,
    ),
    Flag(("--proxy-protocol",), "optional", why=PLAIN_HTTP),
    Flag(("--proxy-allow-from",), why=PLAIN_HTTP),
    Flag(("--protocol",), why=PLAIN_HTTP),
    Flag(("--uwsgi-allow-from",), why=PLAIN_HTTP),
    Flag(("--keyfile",), why=TLS),
    Flag(("--certfile",), why=TLS),
    Flag(("--ssl-version",), why=TLS),
    Flag(("--cert-reqs",), why=TLS),
    Flag(("--ca-certs",), why=TLS),
    Flag(("--suppress-ragged-eofs",), "flag", why=TLS),
    Flag(("--do-handshake-on-connect",), "flag", why=TLS),
    Flag(("--ciphers",), why=TLS),
    Flag(("--http-protocols",), why="nginx speaks HTTP/1.1 to the app"),
    Flag(("--http2-cleartext",), why="nginx speaks HTTP/1.1 to the app"),
    Flag(("--http2-max-concurrent-streams",), why="nginx speaks HTTP/1.1 to the app"),
    Flag(("--http2-initial-window-size",), why="nginx speaks HTTP/1.1 to the app"),
    Flag(("--http2-max-frame-size",), why="nginx speaks HTTP/1.1 to the app"),
    Flag(("--http2-max-header-list-size",), why="nginx speaks HTTP/1.1 to the app"),
    Flag(("--paste-global",), why="the runtime serves APP_MODULE (appModule), not a PasteDeploy file"),
    Flag(("--permit-obsolete-folding",), "flag", why=PARSING),
    Flag(("--strip-header-spaces",), "flag", why=PARSING),
    Flag(("--permit-unconventional-http-method",), "flag", why=PARSING),
    Flag(("--permit-unconventional-http-version",), "flag", why=PARSING),
    Flag(("--casefold-http-method",), "flag", why=PARSING),
    Flag(("--forwarder-headers",), why=PARSING),
    Flag(("--header-map",), why=PARSING),
    Flag(("--asgi-loop",), why=ASGI_OPTIONS),
    Flag(("--asgi-lifespan",), why=ASGI_OPTIONS),
    Flag(("--asgi-disconnect-grace-period",), why=ASGI_OPTIONS),
    Flag(("--websocket-max-message-size",), why=ASGI_OPTIONS),
    Flag(("--http-parser",), why=NO_KEY),
    Flag(("--root-path",), why=NO_KEY),
    Flag(
        ("--dirty-app",),
        why="the runtime's config runs no dirty arbiter, so the app's dirty work would never run; move it to Celery",
        refused=True,
    ),
    Flag(("--dirty-workers",), why="the runtime's config runs no dirty arbiter"),
    Flag(("--dirty-timeout",), why="the runtime's config runs no dirty arbiter"),
    Flag(("--dirty-threads",), why="the runtime's config runs no dirty arbiter"),
    Flag(("--dirty-graceful-timeout",), why="the runtime's config runs no dirty arbiter"),
    Flag(("--control-socket",), why=CONTROL),
    Flag(("--control-socket-mode",), why=CONTROL),
    Flag(("--no-control-socket",), "flag", why=CONTROL),
    Flag(("-v", "--version"), "flag", why=NOT_SERVING, refused=True),
)

# Worker classes (gunicorn/workers/__init__.py SUPPORTED_WORKERS, and uvicorn-worker's).
WSGI_WORKERS = {
    "sync": "sync",
    "egg:gunicorn#sync": "sync",
    "gunicorn.workers.sync.SyncWorker": "sync",
    "gthread": "gthread",
    "egg:gunicorn#gthread": "gthread",
    "gunicorn.workers.gthread.ThreadWorker": "gthread",
}
ASGI_WORKERS = {
    "uvicorn_worker.UvicornWorker": "",
    "uvicorn.workers.UvicornWorker": "uvicorn.workers.UvicornWorker is deprecated in favour of uvicorn-worker's; "
    "the program runs uvicorn_worker.UvicornWorker, which the image must install (uvicorn-worker)",
    "uvicorn_worker.UvicornH11Worker": "the program runs uvicorn_worker.UvicornWorker (uvicorn's default HTTP parser)",
    "uvicorn.workers.UvicornH11Worker": "the program runs uvicorn_worker.UvicornWorker, which the image must install "
    "(uvicorn-worker)",
    "asgi": "gunicorn's own asgi worker; the program runs uvicorn_worker.UvicornWorker, which the image must install "
    "(uvicorn-worker)",
    "gunicorn.workers.gasgi.ASGIWorker": "gunicorn's own asgi worker; the program runs uvicorn_worker.UvicornWorker, "
    "which the image must install (uvicorn-worker)",
}
EVENT_LOOP_WORKERS = ("gevent", "eventlet", "tornado")

APP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::[A-Za-z_][A-Za-z0-9_]*)?$")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
_INTERPOLATION = re.compile(r"\$\{?[A-Za-z_]")


def _application(positionals: list[str], where: str, server: str) -> list[Finding]:
    if not positionals:
        return [
            _note(
                f"{server} names no application here; appModule (module:attribute) keeps Pulumi.yaml's default "
                "unless another key sets it"
            )
        ]
    if len(positionals) > 1:
        return [_refuse(where, f"`{shown(positionals)}`: {server} serves one application (appModule); remove the rest")]
    app = positionals[0]
    if _INTERPOLATION.search(app):
        return [_refuse(where, f"'{app}' needs variable interpolation; the importer reads no environment: write it")]
    if "(" in app:
        return [
            _refuse(
                where,
                f"'{app}' calls an application factory; the runtime serves APP_MODULE as module:attribute: "
                "make the application a module attribute",
            )
        ]
    if not APP_RE.match(app):
        return [_refuse(where, f"'{app}' is not an application as module:attribute")]
    return [_set("appModule", app, where)]


def _port(text: str, where: str, option: str) -> list[Finding]:
    if _INTERPOLATION.search(text):
        return [
            _refuse(where, f"'{text}' needs variable interpolation; the importer reads no environment: write the port")
        ]
    if not text.isdigit() or not 0 < int(text) < 65536:
        return [_refuse(where, f"'{text}' is not a port")]
    return [_set("appPort", int(text), option)]


def _host(host: str, text: str) -> list[Finding]:
    if host in LOOPBACK:
        return [
            _note(
                f"'{text}': the program binds 0.0.0.0, so nginx reaches each replica over the frontend network "
                "(loopback would refuse it)"
            )
        ]
    return []


def _binds(values: list[str]) -> list[Finding]:
    """gunicorn --bind (every one given): the port is appPort; a UNIX socket or fd is refused."""
    findings: list[Finding] = []
    ports: dict[str, str] = {}
    for text in values:
        if text.startswith(("unix:", "fd://")):
            findings.append(
                _refuse("--bind", f"'{text}': nginx reaches the app over TCP on appPort; bind host:port instead")
            )
            continue
        if text.startswith("["):  # [::]:8000
            host, _, rest = text[1:].partition("]")
            port = rest.removeprefix(":") or "8000"
        elif ":" in text:
            host, port = text.rsplit(":", 1)
        else:
            host, port = text, "8000"  # gunicorn's default port (gunicorn/util.py parse_address)
        findings += _host(host, text)
        ports.setdefault(port, text)
    if len(ports) > 1:
        findings.append(
            _refuse("--bind", f"'{', '.join(ports.values())}' listens on several ports; the app has one, appPort")
        )
    elif ports:
        findings += _port(next(iter(ports)), "--bind", "--bind")
    return findings


def read_gunicorn(args: list[str], *, application: bool = True) -> list[Finding]:
    """gunicorn's options (`application`: and its application argument; GUNICORN_CMD_ARGS has none)."""
    try:
        given, positionals, _ = parse(args, GUNICORN, program="gunicorn 27", abbreviations=True)
    except ArgvError as error:
        return [_refuse("", str(error))]
    findings: list[Finding] = []
    binds: list[str] = []
    worker = ""
    threads: Optional[Given] = None
    for item in given:
        flag, value = item.flag, item.value or ""
        if flag.to == "bind":
            binds.append(value)
        elif flag.to == "worker-class":
            worker = value
        elif flag.to == "webThreads":
            threads = item
        elif flag.to == "config":
            findings.append(
                _note(
                    f"not mapped: {item.text} (the program runs gunicorn with the runtime's config, "
                    "python:django_docker_runtime.gunicorn_conf; write that file's settings as options of this "
                    "command to have them mapped)"
                )
            )
        elif flag.to == "env":
            name, sep, env_value = value.partition("=")
            if not sep:
                findings.append(_refuse("--env", f"'{value}' is not NAME=value"))
            else:
                findings.append(Finding("env", key=name, value=env_value, where="--env"))
        elif flag.to == "log-level":
            findings.append(Finding("soft", key="djangoLogLevel", value=value.upper(), where=flag.name))
        elif flag.to:
            findings.append(_set(flag.to, value, flag.name))
        else:
            findings.append(not_mapped(item))
    findings += _binds(binds)
    server = "wsgi"
    if worker:
        if worker in WSGI_WORKERS:
            findings.append(_set("appServer", "wsgi", "--worker-class"))
            if WSGI_WORKERS[worker] == "gthread" and (threads is None or threads.value in ("1", "")):
                findings.append(
                    _note(
                        f"--worker-class {worker} with one thread: the program runs gunicorn's sync worker "
                        "(webThreads 1); webThreads above 1 runs gthread"
                    )
                )
        elif worker in ASGI_WORKERS:
            server = "asgi"
            findings.append(_set("appServer", "asgi", "--worker-class"))
            if ASGI_WORKERS[worker]:
                findings.append(_note(f"--worker-class {worker}: {ASGI_WORKERS[worker]}"))
        elif any(name in worker.lower() for name in EVENT_LOOP_WORKERS):
            findings.append(
                _refuse(
                    "--worker-class",
                    f"{worker} needs its own event loop library and a monkey-patched app; the program runs "
                    "gunicorn's sync or gthread worker (appServer wsgi, webThreads) or uvicorn-worker's "
                    "UvicornWorker (appServer asgi)",
                )
            )
        else:
            findings.append(
                _refuse(
                    "--worker-class",
                    f"{worker} is not a worker the program runs: sync or gthread (appServer wsgi, webThreads) "
                    "or uvicorn_worker.UvicornWorker (appServer asgi)",
                )
            )
    if threads is not None:
        if server == "asgi":
            findings.append(
                _note(f"not mapped: {threads.text} (an asgi worker runs one event loop; webThreads is for wsgi)")
            )
        else:
            findings.append(_set("webThreads", threads.value, "--threads"))
    if application or positionals:
        findings += _application(positionals, "", "gunicorn")
    return findings


# --- uvicorn (0.35: uvicorn/main.py) and daphne (4.2: daphne/cli.py) ------------------------

UVICORN_SERVED = (
    "the program runs the app with gunicorn and uvicorn-worker's UvicornWorker (appServer asgi), "
    "which the image must install (uvicorn-worker)"
)
UVICORN = (
    Flag(("--host",), to="host"),
    Flag(("--port",), to="appPort"),
    Flag(("--uds",), why="nginx reaches the app over TCP on appPort; remove it", refused=True),
    Flag(("--fd",), why="nginx reaches the app over TCP on appPort; remove it", refused=True),
    Flag(("--reload",), "flag", why=RELOAD),
    Flag(("--reload-dir",), why=RELOAD),
    Flag(("--reload-include",), why=RELOAD),
    Flag(("--reload-exclude",), why=RELOAD),
    Flag(("--reload-delay",), why=RELOAD),
    Flag(("--workers",), to="webConcurrency"),
    Flag(("--loop",), why=ASGI_OPTIONS),
    Flag(("--http",), why=ASGI_OPTIONS),
    Flag(("--ws",), why=ASGI_OPTIONS),
    Flag(("--ws-max-size",), why=ASGI_OPTIONS),
    Flag(("--ws-max-queue",), why=ASGI_OPTIONS),
    Flag(("--ws-ping-interval",), why=ASGI_OPTIONS),
    Flag(("--ws-ping-timeout",), why=ASGI_OPTIONS),
    Flag(("--ws-per-message-deflate",), why=ASGI_OPTIONS),
    Flag(("--lifespan",), why=ASGI_OPTIONS),
    Flag(("--interface",), why=ASGI_OPTIONS),
    Flag(
        ("--env-file",),
        why="not read: the app gets the variables the program sets, appEnv and appSecretEnv",
    ),
    Flag(("--log-config",), why=LOGS),
    Flag(("--log-level",), to="log-level"),
    Flag(("--access-log", "--no-access-log"), "flag", why=LOGS),
    Flag(("--use-colors", "--no-use-colors"), "flag", why=LOGS),
    Flag(("--proxy-headers", "--no-proxy-headers"), "flag", why=FORWARDED),
    Flag(("--server-header", "--no-server-header"), "flag", why=ASGI_OPTIONS),
    Flag(("--date-header", "--no-date-header"), "flag", why=ASGI_OPTIONS),
    Flag(("--forwarded-allow-ips",), why=FORWARDED),
    Flag(("--root-path",), why=ASGI_OPTIONS),
    Flag(("--limit-concurrency",), why=ASGI_OPTIONS),
    Flag(("--backlog",), why=ASGI_OPTIONS),
    Flag(("--limit-max-requests",), to="webMaxRequests"),
    Flag(("--timeout-keep-alive",), why=KEEPALIVE),
    Flag(("--timeout-graceful-shutdown",), why=GRACEFUL),
    Flag(("--ssl-keyfile",), why=TLS),
    Flag(("--ssl-certfile",), why=TLS),
    Flag(("--ssl-keyfile-password",), why=TLS, secret=True),
    Flag(("--ssl-version",), why=TLS),
    Flag(("--ssl-cert-reqs",), why=TLS),
    Flag(("--ssl-ca-certs",), why=TLS),
    Flag(("--ssl-ciphers",), why=TLS),
    Flag(("--header",), why=ASGI_OPTIONS),
    Flag(("--version",), "flag", why=NOT_SERVING, refused=True),
    Flag(("--app-dir",), why=PATHS),
    Flag(("--h11-max-incomplete-event-size",), why=ASGI_OPTIONS),
    Flag(
        ("--factory",),
        "flag",
        why="the runtime serves APP_MODULE as module:attribute, not a factory: make the application a module attribute",
        refused=True,
    ),
)
DAPHNE_SERVED = (
    "the program runs the app with gunicorn and uvicorn-worker's UvicornWorker (appServer asgi) instead of daphne, "
    "which the image must install (uvicorn-worker; websockets need uvicorn's websockets package)"
)
DAPHNE = (
    Flag(("-p", "--port"), to="appPort"),
    Flag(("-b", "--bind"), to="host"),
    Flag(("--websocket_timeout",), why=ASGI_OPTIONS),
    Flag(("--websocket_connect_timeout",), why=ASGI_OPTIONS),
    Flag(("-u", "--unix-socket"), why="nginx reaches the app over TCP on appPort; remove it", refused=True),
    Flag(("--fd",), why="nginx reaches the app over TCP on appPort; remove it", refused=True),
    Flag(("-e", "--endpoint"), why="nginx reaches the app over TCP on appPort; remove it", refused=True),
    Flag(("-v", "--verbosity"), why="djangoLogLevel sets the server's and Django's log level"),
    Flag(("-t", "--http-timeout"), why="the program's worker timeout is webTimeout (gunicorn's, a different measure)"),
    Flag(("--access-log",), why=LOGS),
    Flag(("--log-fmt",), why=LOGS),
    Flag(("--ping-interval",), why=ASGI_OPTIONS),
    Flag(("--ping-timeout",), why=ASGI_OPTIONS),
    Flag(("--websocket-max-message-size",), why=ASGI_OPTIONS),
    Flag(("--websocket-max-frame-size",), why=ASGI_OPTIONS),
    Flag(("--application-close-timeout",), why=ASGI_OPTIONS),
    Flag(("--root-path",), why=ASGI_OPTIONS),
    Flag(("--proxy-headers",), "flag", why=FORWARDED),
    Flag(("--proxy-headers-host",), why=FORWARDED),
    Flag(("--proxy-headers-port",), why=FORWARDED),
    Flag(("-s", "--server-name"), why=ASGI_OPTIONS),
    Flag(("--no-server-name",), "flag", why=ASGI_OPTIONS),
)


def read_asgi_server(server: str, args: list[str]) -> list[Finding]:
    """uvicorn or daphne: an ASGI app, served by the program with gunicorn + uvicorn-worker."""
    flags, served = (UVICORN, UVICORN_SERVED) if server == "uvicorn" else (DAPHNE, DAPHNE_SERVED)
    try:
        given, positionals, _ = parse(
            args, flags, program=server, abbreviations=server == "daphne"
        )  # daphne parses with argparse, uvicorn with click
    except ArgvError as error:
        return [_refuse("", str(error))]
    findings = [_set("appServer", "asgi", server), _note(f"{server}: {served}")]
    for item in given:
        flag, value = item.flag, item.value or ""
        if flag.to == "host":
            findings += _host(value, item.text)
        elif flag.to == "appPort":
            findings += _port(value, flag.name, flag.name)
        elif flag.to == "log-level":
            findings.append(Finding("soft", key="djangoLogLevel", value=value.upper(), where=flag.name))
        elif flag.to:
            findings.append(_set(flag.to, value, flag.name))
        else:
            findings.append(not_mapped(item))
    findings += _application(positionals, "", server)
    return findings


# --- Celery (5.7.0: celery/bin/celery.py, worker.py, beat.py) --------------------------------

CELERY_CONFIG = "no stack key: set {} in the app's Celery configuration"
CELERY_LOGS = "Celery logs to stderr, for the engine to collect"
SCHEDULE = "the program's beat keeps its schedule in /tmp/celerybeat-schedule: the root filesystem is read-only"
CELERY_USER = "the program runs the worker as uid 10001"

CELERY_GLOBAL = (
    Flag(("-A", "--app"), to="celeryApp"),
    Flag(
        ("-b", "--broker"),
        why="the program's Redis is the broker: the app's Celery configuration reads REDIS_URL",
        secret=True,
    ),
    Flag(("--result-backend",), why="the app's Celery configuration sets result_backend", secret=True),
    Flag(("--loader",), why="the app's Celery configuration decides; the program passes only --app"),
    Flag(("--config",), why="the app's Celery configuration decides; the program passes only --app"),
    Flag(("--workdir",), why="the program runs Celery in the image's WORKDIR"),
    Flag(("-C", "--no-color"), "flag", why=CELERY_LOGS),
    Flag(("-q", "--quiet"), "flag", why=CELERY_LOGS),
    Flag(("--version",), "flag", why=NOT_SERVING, refused=True),
    Flag(("--skip-checks",), "flag", why="no stack key: Django's checks run at start, Celery's default"),
)
CELERY_COMMON = (
    Flag(("-l", "--loglevel"), why="the program runs Celery at INFO; djangoLogLevel is Django's"),
    Flag(("--logfile", "-f"), why=CELERY_LOGS),
    Flag(("--pidfile",), why="no stack key: nothing reads a pid file in a container"),
    Flag(("--uid",), why=CELERY_USER),
    Flag(("--gid",), why=CELERY_USER),
    Flag(("--umask",), why=CELERY_USER),
    Flag(("--executable",), why="no stack key: the pool runs the image's Python"),
)
CELERY_WORKER = (
    Flag(
        ("-n", "--hostname"),
        why="the runtime's healthcheck pings the container's own node by Celery's default name, celery@<hostname>",
    ),
    Flag(("-D", "--detach"), "flag", why=DAEMON, refused=True),
    Flag(("-S", "--statedb"), why="no stack key: the root filesystem is read-only, revoked tasks are not kept"),
    Flag(("-O", "--optimization"), to="optimization"),
    Flag(("--prefetch-multiplier",), why=CELERY_CONFIG.format("worker_prefetch_multiplier")),
    Flag(("--disable-prefetch",), "flag", why=CELERY_CONFIG.format("worker_disable_prefetch")),
    Flag(("-c", "--concurrency"), to="celeryConcurrency"),
    Flag(("-P", "--pool"), to="pool"),
    Flag(("-E", "--task-events", "--events"), "flag", why=CELERY_CONFIG.format("worker_send_task_events")),
    Flag(("--time-limit",), why=CELERY_CONFIG.format("task_time_limit")),
    Flag(("--soft-time-limit",), why=CELERY_CONFIG.format("task_soft_time_limit")),
    Flag(("--max-tasks-per-child",), to="celeryMaxTasksPerChild"),
    Flag(("--pool-start-method",), why="no stack key: the prefork pool forks, Celery's default"),
    Flag(
        ("--max-memory-per-child",),
        why="celeryMemory limits the container; to recycle a child before it, set worker_max_memory_per_child "
        "in the app's Celery configuration",
    ),
    Flag(("--purge", "--discard"), "flag", why="the program's worker never discards waiting tasks at start"),
    Flag(("--queues", "-Q"), to="celeryQueues"),
    Flag(("--exclude-queues", "-X"), why="no stack key: the worker consumes celeryQueues"),
    Flag(("--include", "-I"), why=CELERY_CONFIG.format("include (or imports)")),
    Flag(("--without-gossip",), "flag", why="the program runs one worker container: no other worker to gossip with"),
    Flag(("--without-mingle",), "flag", why="the program runs one worker container: no other worker to mingle with"),
    Flag(("--without-heartbeat",), "flag", why="worker heartbeats are events for monitors; the program runs none"),
    Flag(("--heartbeat-interval",), why="worker heartbeats are events for monitors; the program runs none"),
    Flag(
        ("--autoscale",),
        why="the program runs a fixed celeryConcurrency under celeryMemory's limit, which an autoscaled pool "
        "could outgrow; set celeryConcurrency to the processes you want",
    ),
    Flag(("-B", "--beat"), "flag", to="celeryBeat"),
    Flag(("-s", "--schedule-filename", "--schedule"), why=SCHEDULE),
    Flag(("--scheduler",), to="scheduler"),
    *CELERY_COMMON,
)
CELERY_BEAT = (
    Flag(("--detach",), "flag", why=DAEMON, refused=True),
    Flag(("-s", "--schedule"), why=SCHEDULE),
    Flag(("-S", "--scheduler"), to="scheduler"),
    Flag(("--max-interval",), why=CELERY_CONFIG.format("beat_max_loop_interval")),
    Flag(("--enable-remote-control", "--no-enable-remote-control"), "flag", why="no stack key: Celery's default"),
    Flag(("-n", "--hostname"), why="no stack key: beat keeps Celery's default name"),
    *CELERY_COMMON,
)
# -P: what each pool is in the program (Celery's aliases: celery/concurrency/__init__.py).
POOLS = {"prefork": "prefork", "processes": "prefork", "threads": "threads", "solo": "solo"}


def read_celery(args: list[str]) -> tuple[str, list[Finding]]:
    """`celery [global options] worker|beat [options]`: the subcommand and its findings."""
    try:
        given, _, index = parse(args, CELERY_GLOBAL, program="celery 5.7", abbreviations=False, stop_at_positional=True)
    except ArgvError as error:
        return "", [_refuse("", str(error))]
    if index >= len(args):
        return "", [_refuse("", "celery runs no worker or beat here (no subcommand)")]
    command = args[index]
    if command not in ("worker", "beat"):
        why = (
            "celery multi starts detached workers; the program runs one worker in the foreground"
            if command == "multi"
            else f"'celery {command}' is not a worker or beat; the program runs only those"
        )
        return command, [_refuse("", why)]
    flags = (*(CELERY_WORKER if command == "worker" else CELERY_BEAT), *CELERY_GLOBAL)
    try:
        # Celery 4 took --app after the subcommand too (5 does not): either way it names the app.
        more, extra, _ = parse(args[index + 1 :], flags, program=f"celery {command}", abbreviations=False)
    except ArgvError as error:
        return command, [_refuse("", str(error))]
    if extra:
        return command, [_refuse("", f"`{shown(extra)}`: celery {command} takes no arguments")]
    findings: list[Finding] = []
    for item in [*given, *more]:
        flag, value = item.flag, item.value or ""
        if flag.to == "celeryBeat":
            findings.append(_set("celeryBeat", True, "--beat"))
        elif flag.to == "celeryQueues":
            queues = ",".join(q.strip() for q in value.split(",") if q.strip())
            findings.append(_set("celeryQueues", queues, flag.name))
        elif flag.to == "pool":
            findings += _pool(value)
        elif flag.to == "optimization":
            if value in ("fair", "default"):
                # celery/concurrency/asynpool.py SCHED_STRATEGIES: None, 'default' and 'fair' are all
                # SCHED_STRATEGY_FAIR (fair is the default since Celery 4.0).
                findings.append(
                    _note(f"mapped as nothing: {item.text} (fair scheduling is Celery's default since 4.0)")
                )
            else:
                findings.append(_refuse("-O", f"'{value}' is not a scheduling Celery 5 has (default, fair)"))
        elif flag.to == "scheduler":
            findings.append(
                _note(
                    f"not mapped: {item.text} (the program's beat passes no --scheduler, so Celery takes the app's "
                    f"beat_scheduler setting: set it to '{value}' in the app's Celery configuration, "
                    "CELERY_BEAT_SCHEDULER in Django settings read with namespace='CELERY')"
                )
            )
        elif flag.to:
            findings.append(_set(flag.to, value, flag.name))
        else:
            findings.append(not_mapped(item))
    return command, findings


def _pool(value: str) -> list[Finding]:
    if value in POOLS:
        return [_set("celeryPool", POOLS[value], "--pool")]
    if value in ("gevent", "eventlet"):
        return [
            _refuse(
                "--pool",
                f"{value} needs its own package and a monkey-patched app, which the program's worker does not do; "
                "celeryPool is prefork, threads or solo (threads for I/O-bound tasks)",
            )
        ]
    return [_refuse("--pool", f"'{value}' is not a pool the program runs: prefork, threads or solo")]


# --- manage.py ----------------------------------------------------------------------------

RELEASE_KEYS = {"migrate": "migrateCommand", "collectstatic": "collectstaticCommand"}


def manage_subcommand(args: list[str]) -> str:
    for word in args:
        if not word.startswith("-"):
            return word
    return ""


def read_release(program: Program) -> list[Finding]:
    """`manage.py migrate` / `collectstatic`: the release's jobs, with --noinput."""
    sub = manage_subcommand(program.args)
    words = [*program.head, *program.args]
    findings: list[Finding] = []
    if sub == "collectstatic":
        kept = [w for w in words if w not in ("--clear", "-c")]
        if kept != words:
            findings.append(
                _note("not mapped: --clear (the old release keeps serving its static files while a new one starts)")
            )
        words = kept
    if "--noinput" not in words and "--no-input" not in words:
        words.append("--noinput")
    job = "migrate" if sub == "migrate" else "collectstatic"
    findings.insert(
        0,
        Finding(
            "release",
            key=RELEASE_KEYS[sub],
            value=shown(words),
            where=f"({sub})",
            text=f"`{shown([*program.head, *program.args])}` runs as the release's {job} job ({RELEASE_KEYS[sub]}), "
            "once per release before web and Celery change, not at every start",
        ),
    )
    return findings


# --- an app service's command ------------------------------------------------------------

# Words before a program that only wait for the database, reload on changes, or wrap the process.
_WAITING = re.compile(r"wait|dockerize")
_RELOADING = re.compile(r"watchmedo|nodemon|reflex|entr")


def _prefix_reason(prefix: list[str]) -> str:
    first = _basename(prefix[0])
    if _WAITING.search(first):
        return "the program starts app containers once PostgreSQL and Redis are healthy"
    if _RELOADING.search(first):
        return "live reload is a development tool: the program runs the built image"
    if all(re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w) for w in prefix):
        return "variables for one command: put them in appEnv"
    return "the program starts the process itself"


def read_app_command(role: str, words: list[str]) -> list[Finding]:
    """An app service's command (or Dockerfile CMD): each command of the script read by what it runs."""
    commands, redirected = segments(words)
    findings: list[Finding] = []
    if redirected:
        findings.append(
            Finding("note", text=f"not mapped: {' '.join(redirected)} (the engine collects stdout and stderr)")
        )
    servers = 0
    for command in commands:
        program = program_of(command)
        if program is not None and program.prefix:
            findings.append(
                Finding(
                    "note",
                    text=f"not mapped: `{shown(program.prefix)}` before {program.name} "
                    f"({_prefix_reason(program.prefix)})",
                )
            )
        if program is None:
            if command[0] == "set" or command == ["true"]:
                continue  # shell options, a no-op
            if len(commands) == 1 and role == "web":
                continue  # the one command, and no server: said below
            reason = (
                "the program runs commands in the image's WORKDIR"
                if command[0] == "cd"
                else "the program runs only its own command here"
            )
            findings.append(Finding("note", text=f"not mapped: `{shown(command)}` ({reason})"))
            continue
        if program.name in ("manage.py", "django-admin"):
            sub = manage_subcommand(program.args)
            if sub in RELEASE_KEYS:
                findings += read_release(program)
            elif sub in ("runserver", "runserver_plus") and role == "web":
                servers += 1
                findings.append(
                    Finding(
                        "note",
                        text="manage.py runserver is a development server; the program runs gunicorn "
                        "(webConcurrency workers) serving appModule",
                    )
                )
            else:
                reason = (
                    "the program starts app containers once PostgreSQL and Redis are healthy"
                    if "wait" in sub
                    else "the program runs no other manage.py command at start: run it at build time in the "
                    "Dockerfile, or once with `make manage`"
                )
                findings.append(
                    Finding("note", text=f"not mapped: `{shown([*program.head, *program.args])}` ({reason})")
                )
        elif program.name in SERVERS and role == "web":
            servers += 1
            if servers == 1:  # a second server is refused below, not read
                findings += (
                    read_gunicorn(program.args)
                    if program.name == "gunicorn"
                    else read_asgi_server(program.name, program.args)
                )
        elif program.name == "celery" and role in ("worker", "beat"):
            command_name, read = read_celery(program.args)
            findings += read
            if role == "worker" and command_name == "worker":
                servers += 1
                set_keys = {f.key for f in read if f.kind == "set"}
                autoscale = any(f.kind == "note" and "--autoscale" in f.text for f in read)
                if "celeryConcurrency" not in set_keys and not any(f.kind == "refuse" for f in read):
                    findings.append(Finding("missing-concurrency", value=autoscale))
            elif role == "beat" and command_name == "beat":
                servers += 1
        else:
            findings.append(
                Finding(
                    "refuse",
                    text=f"`{shown(command)}` runs {program.name} in the {role} service; "
                    "the program runs it in its own container",
                )
            )
    if servers > 1:
        findings.append(Finding("refuse", text=f"runs {servers} servers; the program runs one per container"))
    elif servers == 0 and role == "web":
        findings.append(
            Finding(
                "note",
                text=f"`{shown(words)}` runs no server the importer reads (gunicorn, uvicorn, daphne); "
                "the program runs gunicorn serving appModule"
                if words
                else "no command; the program runs gunicorn serving appModule",
            )
        )
    return findings


# --- Dockerfiles --------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    args: dict[str, Optional[str]] = field(default_factory=dict)
    cmd: Optional[list[str]] = None
    entrypoint: Optional[list[str]] = None


@dataclass
class Dockerfile:
    stages: list[Stage]
    global_args: dict[str, Optional[str]]

    def stage(self, target: str = "") -> Optional[Stage]:
        if not self.stages:
            return None
        if not target:
            return self.stages[-1]
        return next((s for s in self.stages if s.name.lower() == target.lower()), None)

    def arg_default(self, name: str, target: str = "") -> Optional[str]:
        stage = self.stage(target)
        if stage is not None and name in stage.args and stage.args[name] is not None:
            return stage.args[name]
        return self.global_args.get(name)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) with line continuations joined and comments dropped."""
    result: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            keyword, _, rest = current.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
        current = ""
    if current.strip():
        keyword, _, rest = current.strip().partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _command_form(rest: str) -> list[str]:
    """CMD / ENTRYPOINT: the exec form's words, or the shell form as /bin/sh -c."""
    if rest.startswith("["):
        try:
            words = json.loads(rest)
            if isinstance(words, list) and all(isinstance(w, str) for w in words):
                return words
        except ValueError:
            pass
    return ["/bin/sh", "-c", rest]


def _pairs(rest: str, legacy: bool) -> dict[str, str]:
    """ENV NAME=value ... (or the legacy ENV NAME value)."""
    try:
        words = shlex.split(rest)
    except ValueError:
        return {}
    if legacy and words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return {k: v for k, _, v in (w.partition("=") for w in words)}


def read_dockerfile(text: str) -> Dockerfile:
    stages: list[Stage] = []
    global_args: dict[str, Optional[str]] = {}
    for keyword, rest in _instructions(text):
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            base = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else ""
            parent = next((s for s in stages if s.name and s.name.lower() == base.lower()), None)
            stage = Stage(name=name)
            if parent is not None:  # FROM an earlier stage: its ENV, CMD and ENTRYPOINT carry over
                stage.env, stage.cmd, stage.entrypoint = dict(parent.env), parent.cmd, parent.entrypoint
            stages.append(stage)
        elif keyword == "ARG":
            for word in rest.split():
                name, sep, default = word.partition("=")
                (stages[-1].args if stages else global_args)[name] = default.strip("\"'") if sep else None
        elif not stages:
            continue
        elif keyword == "ENV":
            stages[-1].env.update(_pairs(rest, legacy=True))
        elif keyword == "CMD":
            stages[-1].cmd = _command_form(rest)
        elif keyword == "ENTRYPOINT":
            stages[-1].entrypoint = _command_form(rest)
    return Dockerfile(stages=stages, global_args=global_args)


def entrypoint_runs_server(entrypoint: list[str]) -> Optional[str]:
    """The server or program an ENTRYPOINT starts itself (then every command the program gives
    becomes that program's arguments), or None for a script that runs its arguments."""
    words = script_words(entrypoint)
    commands, _ = segments(words)
    for command in commands:
        program = program_of(command)
        if program is not None:
            return program.name
        if command and _PYTHON.match(_basename(command[0])):
            return command[0]
    return None


def secret_name(name: str) -> bool:
    """A variable whose name says it holds a secret."""
    parts = set(name.upper().split("_"))
    return bool(
        parts
        & {
            "SECRET",
            "SECRETS",
            "PASSWORD",
            "PASSWD",
            "PASS",
            "PWD",
            "TOKEN",
            "TOKENS",
            "KEY",
            "APIKEY",
            "DSN",
            "CREDENTIAL",
            "CREDENTIALS",
            "PRIVATE",
            "SALT",
            "AUTH",
        }
    )


def url_host(value: str) -> Optional[str]:
    try:
        return urlsplit(value).hostname
    except ValueError:
        return None
