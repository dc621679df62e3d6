"""python -m ops COMMAND STACK …: the day-2 commands for a running stack (see the make targets).

  status STACK                      the running release, every container's health, the URL; exit 1 when unhealthy
  ps STACK                          the stack's containers, like `docker compose ps`
  logs STACK [--service S] [-f] [--since 10m] [--tail N] [-t]
  manage STACK [-T] -- ARGS…        `python manage.py ARGS` in a one-off container of the running release
  shell STACK [-T]                  `manage shell`
  exec STACK --service S [--replica N] [-T] -- ARGS…
  backup STACK                      pg_dump the database into the stack's backups volume now
  backups STACK                     the backups there, oldest first
  restore STACK NAME [--stop-app | --force]   replace the database with a backup (a pre-restore backup first)
  restore STACK [NAME] --from offsite [...]   the same with an off-host copy (default: the newest), checked
  restore STACK --at TIME|latest              the database as it was then (the WAL archive, backupPitr)
  restore-drill STACK [NAME]        the newest off-host backup into a throwaway PostgreSQL, checked, removed
  renew-certificate STACK           tlsMode acme: renew the certificate now (whatever its days left), reload nginx
  maintenance STACK on|off|status   nginx's maintenance page (503, Retry-After; static files served) on or off, by reload
  engine STACK                      whether the stack's Docker engine answers (what `make up` checks first)
Every command finds the stack by its labels on the stack's own Docker host, and changes none of
its resources. Refusals are one line; the exit code of manage and exec is the command's.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

import docker.errors

from ops.stack import OpsError, StackOnHost


def _status(stack: StackOnHost, args) -> int:
    from ops.offsite import Agent
    from ops.view import status_lines

    now = datetime.now(timezone.utc)
    lines, healthy = status_lines(stack.stack, stack.where, stack.boxes, now)
    # The certificate, then the backups, before the last line (the containers' verdict). The
    # backups: what the accessory recorded, and a WARNING for anything older than the schedule
    # allows or failing (exit 1 then).
    backup_lines, fine = [], True
    try:
        agent = Agent.of(stack)
        if agent is not None:
            backups = agent.status()
            backup_lines, fine = list(backups.get("lines") or []), not backups.get("warnings")
    except OpsError as error:  # the accessory exists but is down, or its agent failed: say so
        backup_lines, fine = [f"backups: WARNING: {error}"], False
    print("\n".join([*lines[:-1], *_certificate(stack, now), *backup_lines, lines[-1]]))
    return 0 if healthy and fine else 1


def _certificate(stack: StackOnHost, now: datetime) -> list[str]:
    """With HTTPS on: the certificate nginx serves (names, days left; a warning below 14)."""
    from urllib.parse import urlsplit

    from ops.certificate import certificate_lines, parse_served, served_chain

    urls = sorted({b.url for b in stack.boxes if b.url and b.url.startswith("https://")})
    nginx = [b for b in stack.boxes if b.service == "nginx" and b.state == "running"]
    if not urls or not nginx:
        return []
    name = urlsplit(urls[0]).hostname or ""
    try:
        return certificate_lines(parse_served(served_chain(stack.client.api, nginx[0].id, name)), now)
    except (docker.errors.APIError, ValueError) as error:
        return certificate_lines(None, now, error=str(error).splitlines()[0])


def _ps(stack: StackOnHost, args) -> int:
    from ops.view import ps_lines

    print("\n".join(ps_lines(stack.boxes, datetime.now(timezone.utc))))
    return 0


def _logs(stack: StackOnHost, args) -> int:
    from ops.logs import show

    return show(stack, args.service, since=args.since, tail=args.tail, timestamps=args.timestamps, follow=args.follow)


def _manage(stack: StackOnHost, args) -> int:
    from ops.run import manage

    return manage(stack, args.args, no_tty=args.no_tty)


def _shell(stack: StackOnHost, args) -> int:
    from ops.run import manage

    return manage(stack, ["shell", *args.args], no_tty=args.no_tty)


def _exec(stack: StackOnHost, args) -> int:
    from ops.run import exec_in

    return exec_in(stack, args.service, args.args, replica=args.replica, no_tty=args.no_tty)


def _backup(stack: StackOnHost, args) -> int:
    from ops.backup import backup, release_label
    from ops.offsite import Agent

    agent = Agent.of(stack)
    return agent.backup(f"{release_label(stack)}-manual") if agent else backup(stack)


def _backups(stack: StackOnHost, args) -> int:
    from ops.backup import list_backups
    from ops.offsite import Agent

    agent = Agent.of(stack)
    return agent.list_backups() if agent else list_backups(stack)


def _restore(stack: StackOnHost, args) -> int:
    from ops.backup import restore
    from ops.offsite import Agent, restore_at

    if args.at:
        if args.name or args.source:
            raise OpsError("AT= restores to a moment from the WAL archive: give it without BACKUP= or FROM=")
        return restore_at(stack, args.at)
    if args.source not in ("", "local", "offsite"):
        raise OpsError(f"FROM={args.source}: expected local or offsite")
    agent = Agent.of(stack)
    name = args.name
    if args.source == "offsite":
        if agent is None:
            raise OpsError(f"FROM=offsite: stack {stack.stack} has no off-host storage (backupS3Endpoint)")
        name = agent.fetch(name, args.identity_file)
    elif not name:
        raise OpsError(f"set BACKUP=<name> (make backups STACK={stack.stack} lists them), FROM=offsite or AT=<time>")
    return restore(stack, name, stop_app=args.stop_app, force=args.force, take=agent.take_line if agent else None)


def _restore_drill(stack: StackOnHost, args) -> int:
    from ops.offsite import drill

    return drill(stack, args.name, args.identity_file)


def _renew_certificate(stack: StackOnHost, args) -> int:
    """tlsMode acme: renew the certificate now in the running ACME client (whatever the days
    left), install it and reload nginx; its one line, and its exit code."""
    from ops.certificate import renew_now

    acme = [b for b in stack.boxes if b.service == "acme" and b.state == "running"]
    if not acme:
        raise OpsError(f"stack {stack.stack} runs no ACME client (tlsMode acme): nothing to renew")
    code, output = renew_now(stack.client.api, acme[0].id)
    print(output.strip() or f"exit {code}")
    return code


def _maintenance(stack: StackOnHost, args) -> int:
    """nginx's maintenance page on or off: the other configuration of the generation it serves,
    through the site's own path (written, `nginx -t`, switched, reloaded: never a new nginx)."""
    from components import nginx_site, render

    running = [b for b in stack.boxes if b.service == "nginx" and b.state == "running"]
    if not running:
        raise OpsError(f"stack {stack.stack} runs no nginx: nothing to switch")
    attrs = stack.client.api.inspect_container(running[0].id)
    volume = next(
        (m.get("Name") for m in attrs.get("Mounts") or [] if m.get("Destination") == render.NGINX_SITE_DIR), None
    )
    if not volume:
        raise OpsError(f"stack {stack.stack}'s nginx has no site volume (swarm: no maintenance mode)")
    try:
        if args.state == "status":
            _generation, files, _modes = nginx_site.served_files(stack.client.api, running[0].id)
            print(f"maintenance: {'on' if nginx_site.is_maintenance(files) else 'off'} (generation {_generation})")
            return 0
        host = stack.host
        props = {
            "volume": volume,
            "image": attrs["Config"]["Image"],
            "stack": stack.stack,
            "labels": [
                {"label": f"{render.LABEL_PREFIX}.stack", "value": stack.stack},
                {"label": f"{render.LABEL_PREFIX}.role", "value": "config"},
            ],
            "dockerHost": host.host,
            "sshOpts": list(host.ssh_opts),
            "certPath": host.cert_path,
            "caMaterial": host.ca_material,
            "certMaterial": host.cert_material,
            "keyMaterial": host.key_material,
        }
        generation, changed = nginx_site.switch_maintenance(props, args.state == "on")
    except nginx_site.SiteError as error:
        raise OpsError(str(error)) from None
    what = "the maintenance page (503)" if args.state == "on" else "the site"
    print(
        f"maintenance {args.state}: nginx {'now serves' if changed else 'already served'} {what} (generation {generation})"
    )
    return 0


def _engine(stack: str) -> int:
    from ops.stack import describe_host, engine_client, known_stacks, stack_docker_host

    if stack not in known_stacks():
        raise OpsError(
            f"unknown stack '{stack}'; stacks: {', '.join(known_stacks()) or 'none'} (from Pulumi.<stack>.yaml)"
        )
    host = stack_docker_host(stack)
    client = engine_client(stack, host)
    version = client.version().get("Version", "?")
    print(f"Docker engine {version} answers at {describe_host(host)} for stack {stack}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m ops", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)

    def command(name: str, run, help_text: str, *, tty: bool = False, rest: bool = False):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("stack")
        p.set_defaults(run=run)
        if tty:
            p.add_argument("-T", "--no-tty", action="store_true", help="no TTY even on a terminal (as compose's -T)")
        if rest:
            p.add_argument("args", nargs="*", help="the command's arguments (after --)")
        return p

    command("status", _status, "the running release and every container's health (exit 1 when unhealthy)")
    command("ps", _ps, "the stack's containers")
    logs = command("logs", _logs, "logs of a service's containers (or all), interleaved, prefixed by replica")
    logs.add_argument("--service", help="only this service (web, celery-worker, nginx, postgres, redis, …)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep following (Ctrl-C ends)")
    logs.add_argument("--since", help="a duration ago (10m, 1h30m), a unix time or an RFC 3339 time")
    logs.add_argument("--tail", type=int, help="the last N lines of each container")
    logs.add_argument("-t", "--timestamps", action="store_true", help="show Docker's timestamps")
    command(
        "manage", _manage, "python manage.py ARGS in a one-off container of the running release", tty=True, rest=True
    )
    command("shell", _shell, "python manage.py shell in a one-off container", tty=True, rest=True)
    ex = command("exec", _exec, "run ARGS in one running container of a service", tty=True, rest=True)
    ex.add_argument("--service", required=True, help="the service (web, celery-worker, …)")
    ex.add_argument("--replica", help="which replica (default: the first healthy one)")
    command("backup", _backup, "pg_dump the database into the stack's backups volume now")
    command("backups", _backups, "list the stack's backups")
    re_ = command("restore", _restore, "replace the database with a backup, all or nothing")
    re_.add_argument("name", nargs="?", default="", help="the backup's file name (make backups lists them)")
    re_.add_argument(
        "--from", dest="source", default="", help="offsite: fetch it (default: the newest) from the bucket first"
    )
    re_.add_argument(
        "--at", default="", help="a moment (ISO time, UTC; or latest): the WAL archive's point-in-time restore"
    )
    re_.add_argument("--identity-file", help="the age identity (backupEncryptionKey) for an encrypted off-host copy")
    how = re_.add_mutually_exclusive_group()
    how.add_argument(
        "--stop-app", action="store_true", help="stop web, worker and beat for the restore, then start them"
    )
    how.add_argument("--force", action="store_true", help="restore under the running app")
    drill = command(
        "restore-drill", _restore_drill, "restore the newest off-host backup into a throwaway database and check it"
    )
    drill.add_argument("name", nargs="?", default="", help="an off-host backup (default: the newest)")
    drill.add_argument("--identity-file", help="the age identity (backupEncryptionKey), when the copies are encrypted")
    command("renew-certificate", _renew_certificate, "tlsMode acme: renew the certificate now and reload nginx")
    maintenance = command(
        "maintenance", _maintenance, "nginx's maintenance page on or off (a reload, never a new nginx), or its status"
    )
    maintenance.add_argument("state", choices=("on", "off", "status"))
    command("engine", None, "whether the stack's Docker engine answers (make up checks it first)")
    return top


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in argv:  # everything after it is the command's, options included
        argv, rest = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    top = parser()
    args, unknown = top.parse_known_args(argv)
    if hasattr(args, "args"):
        args.args = [*args.args, *unknown, *rest]
    elif unknown or rest:
        top.error(f"unrecognized arguments: {' '.join(unknown + rest)}")
    try:
        if args.command == "engine":
            return _engine(args.stack)
        stack = StackOnHost(args.stack)
        return args.run(stack, args)
    except OpsError as error:
        print(f"ops {args.command}: {error}", file=sys.stderr)
        return 2
    except docker.errors.DockerException as error:  # e.g. a container removed under us
        text = (str(error).splitlines() or [error.__class__.__name__])[0]
        print(f"ops {args.command}: the Docker engine refused: {text[:240]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
