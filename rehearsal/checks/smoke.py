"""Smoke checks of a rehearsed stack, all through nginx's published port on 127.0.0.1.

Each check returns one line. Most hold for any Django project the stack runs (health and its
checks, every replica answering, static files and uploads served by nginx from their volumes,
the release jobs, non-root, the image, isolation, ports: docs/adopt.md's contract); the app's own
checks come on top, for the apps the rehearsal knows: the example (docs/contracts.md's HTTP
surface: a visit through Celery, an upload) and the sample projects (rehearsal/images/samples.py).
"""

from __future__ import annotations

import io
import ipaddress
import json
import secrets
import socket
import tarfile
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional
from urllib.parse import urlsplit

import docker
import docker.errors
import requests
from requests.adapters import HTTPAdapter

from components.settings import PROJECT, PROJECT_ROOT
from planning.harness import CONTAINER, JOB, NETWORK, Plan, label_in
from planning.harness import SERVICE as SWARM_SERVICE
from rehearsal.emulation.engine import LOOPBACK, container_tail, live
from rehearsal.emulation.model import State
from rehearsal.errors import RehearsalError

SERVICE = "django-docker.service"
ROLE = "django-docker.role"
REPLICA_REQUESTS = 50
TASK_DEADLINE = 30.0  # seconds for the Celery task of a visit
PROBE_TIMEOUT = 3  # seconds for the backend's TCP probe
STATIC_ASSET = "visits/site.css"  # the example's
EXAMPLE_APP = "django_app"
SAMPLE_MARKER = ".django-docker-sample"  # a sample project's kind (rehearsal/images/samples.py)


def app_setting(plan: Plan, key: str) -> str:
    """A stack's app setting as the program reads it (Pulumi.yaml's default unless the stack sets it)."""
    return str(plan.config[f"{PROJECT}:{key}"])


def app_kind(plan: Plan) -> str:
    """Which app the stack runs: "example" (django_app/), a sample project's kind, or "" (any other)."""
    context = (PROJECT_ROOT / app_setting(plan, "appContext")).resolve()
    if context == (PROJECT_ROOT / EXAMPLE_APP).resolve():
        return "example"
    marker = context / SAMPLE_MARKER
    return str(json.loads(marker.read_text())["kind"]) if marker.is_file() else ""


def healthy_answer(response: requests.Response, path: str) -> str:
    """A health answer that says every check passed, in one line (or CheckFailed)."""
    require(response.status_code == 200, f"GET {path} -> {response.status_code}: {response.text[:200]}")
    body = response.json()
    checks = body.get("checks") or {}
    require(checks and all(value == "ok" for value in checks.values()), f"checks {checks}")
    return f"GET {path} 200, {', '.join(f'{name} ok' for name in checks)}, git_sha {body.get('git_sha')}"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"  {'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


class CheckFailed(RehearsalError):
    """A check's finding, one line."""


def run_check(name: str, check: Callable[[], str]) -> Check:
    """One check's line: its detail when it passes; its finding, or the error that stopped it, when not."""
    try:
        return Check(name, True, check())
    except CheckFailed as failure:
        return Check(name, False, str(failure))
    except (requests.RequestException, docker.errors.APIError, OSError, KeyError, ValueError) as error:
        return Check(name, False, f"{type(error).__name__}: {error}")


def run_checks(checks: Iterable[tuple[str, Callable[[], str]]], say: Callable[[str], None]) -> list[Check]:
    """Each check in turn, its line said as soon as it is known."""
    results = []
    for name, check in checks:
        results.append(run_check(name, check))
        say(results[-1].line())
    return results


def require(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def front_door(plan: Plan) -> tuple[str, str, str]:
    """(base URL on 127.0.0.1, Host header, nginx container logical name) from the plan.

    With TLS on (the stack's url is https) the base is nginx's HTTPS port: port 80 only redirects.
    """
    url = plan.outputs.get("url") or ""
    scheme, internal = ("https", 443) if url.startswith("https://") else ("http", 80)
    # nginx as a container (its `ports`), or as a swarm service (its endpoint's host-mode ports)
    nginx = plan.containers("nginx") or [
        r for r in plan.of_type(SWARM_SERVICE) if label_in(r.inputs, SERVICE) == "nginx"
    ]
    require(len(nginx) == 1, f"expected one nginx container or service in the plan, found {len(nginx)}")
    published = {int(p["internal"]): int(p["external"]) for p in nginx[0].inputs.get("ports") or []} or {
        int(p["targetPort"]): int(p["publishedPort"])
        for p in (nginx[0].inputs.get("endpointSpec") or {}).get("ports") or []
    }
    require(internal in published, f"nginx publishes no port for {internal}")
    port = published[internal]
    # The rehearsal publishes on loopback only, whatever the stack's bindAddress.
    url = url or f"http://localhost:{port}/"
    return f"{scheme}://{LOOPBACK}:{port}", urlsplit(url).netloc, nginx[0].name


class ServerNameAdapter(HTTPAdapter):
    """HTTPS to an address (nginx on 127.0.0.1) as if to a host name: urllib3 sends the name as
    SNI (`server_hostname`) and OpenSSL verifies the certificate for that name against the
    session's `verify` bundle (urllib3 2.x connection.py: check_hostname stays on). Nothing
    else about verification changes."""

    def __init__(self, server_name: Optional[str], **kwargs):
        self.server_name = server_name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, server_hostname=self.server_name, **kwargs)


def http_session(base: str, host: str, ca_file: Optional[str] = None) -> requests.Session:
    """A session for the stack's front door: the Host header, and for HTTPS the server name and
    the CA the certificate must chain to (the rehearsal's own, for a certificate it generated)."""
    session = requests.Session()
    session.headers["Host"] = host
    if base.startswith("https://"):
        if ca_file is None:  # (what require() raises)
            raise CheckFailed(f"{base} is HTTPS but no CA to verify its certificate against was given")
        session.mount(base, ServerNameAdapter(urlsplit(f"//{host}").hostname))
        session.verify = ca_file
        # Else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment win over session.verify
        # (psf/requests#3829); nothing else from the environment (proxies, .netrc) belongs here.
        session.trust_env = False
    return session


class Smoke:
    def __init__(
        self,
        client: docker.DockerClient,
        plan: Plan,
        state: State,
        *,
        app_image: str,
        run_labels: dict[str, str],
        say: Callable[[str], None],
        tls_ca: Optional[str] = None,
        own_checks: Optional[Callable[["Smoke"], list[tuple[str, Callable[[], str], Optional[str]]]]] = None,
    ):
        self.client = client
        self.api = client.api
        self.plan = plan
        self.state = state
        self.containers = {name: real["id"] for name, real in live(state, CONTAINER).items()}
        self.app_image = app_image
        self.run_labels = run_labels
        self.say = say
        self.base, self.host, self.nginx = front_door(plan)
        self.http = http_session(self.base, self.host, tls_ca)
        self.health_path = app_setting(plan, "healthPath")
        self.kind = app_kind(plan)
        self.own_checks = own_checks
        """The app's own checks, for an app other than the example (a sample's: checks/samples.py)."""

    # -- helpers

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.base + path, timeout=10, allow_redirects=False, **kwargs)

    def cid(self, logical: str) -> str:
        return self.containers[logical]

    def names(self, service: str) -> list[str]:
        return [r.name for r in self.plan.containers(service) if r.type == CONTAINER]

    def checks(self) -> list[tuple[str, Callable[[], str], Optional[str]]]:
        """(name, check, the service whose logs explain a failure): any app's, then the app's own."""
        generic = [
            ("health", self.check_health, "web"),
            ("replicas", self.check_replicas, "nginx"),
            *([("static", self.check_static, "nginx")] if app_setting(self.plan, "staticRoot") else []),
            *([("media", self.check_media, "nginx")] if app_setting(self.plan, "mediaRoot") else []),
            *([("celery", self.check_celery, "celery-worker")] if self.plan.containers("celery-worker") else []),
            ("migrate", self.check_migrate, "migrate"),
            ("non-root", self.check_non_root, None),
            ("app image", self.check_app_image, None),
            ("backend isolation", self.check_backend_isolated, None),
            ("published ports", self.check_ports, None),
        ]
        own: list[tuple[str, Callable[[], str], Optional[str]]] = []
        if self.kind == "example":
            own = [("visit", self.check_visit, "celery-worker"), ("upload", self.check_upload, "web")]
        elif self.own_checks is not None:
            own = self.own_checks(self)
        return generic[:2] + own + generic[2:]

    def run(self) -> list[Check]:
        checks = []
        for name, check, culprit in self.checks():
            result = run_check(name, check)
            self.say(result.line())
            if not result.ok and culprit and "log lines" not in result.detail:
                self.say(f"  {culprit}:{self.tail_of(culprit)}")
            checks.append(result)
        return checks

    # -- checks

    def check_health(self) -> str:
        return healthy_answer(self.get(self.health_path), self.health_path)

    def check_replicas(self) -> str:
        """Every replica answers through nginx: the runtime's health answer names its container."""
        expected = {self.api.inspect_container(self.cid(n))["Config"]["Hostname"]: n for n in self.names("web")}
        seen: Counter = Counter()
        for _ in range(REPLICA_REQUESTS):
            response = self.get(self.health_path)
            require(response.status_code == 200, f"GET {self.health_path} -> {response.status_code}")
            seen[response.json()["hostname"]] += 1
        stray = set(seen) - set(expected)
        missing = set(expected) - set(seen)
        require(not stray, f"answers from unknown hosts {sorted(stray)}")
        require(not missing, f"replicas never answered: {sorted(expected[h] for h in missing)}")
        spread = ", ".join(f"{expected[h]} {seen[h]}" for h in sorted(seen, key=lambda h: expected[h]))
        return f"{REPLICA_REQUESTS} x GET {self.health_path}: all {len(expected)} replicas answered ({spread})"

    def check_visit(self) -> str:
        response = self.http.post(self.base + "/visits/", timeout=10)
        require(response.status_code == 201, f"POST /visits/ -> {response.status_code}: {response.text[:200]}")
        body = response.json()
        visit_id = int(body["id"])
        row = self.psql(f"select served_by from visits_visit where id = {visit_id}")
        require(row, f"visit {visit_id} is not in PostgreSQL")
        started = time.monotonic()
        while True:
            status = self.get(body["status_url"])
            require(status.status_code == 200, f"GET {body['status_url']} -> {status.status_code}")
            state = status.json()
            if state.get("processed"):
                break
            require(
                time.monotonic() - started < TASK_DEADLINE,
                f"visit {visit_id}: Celery task not done within {TASK_DEADLINE:.0f}s",
            )
            time.sleep(0.25)
        return (
            f"POST /visits/ 201 id {visit_id}, row in PostgreSQL (served by {row}), Celery task done by "
            f"{state.get('processed_by')} in {time.monotonic() - started:.1f}s"
        )

    def check_upload(self) -> str:
        content = f"rehearsal {self.run_labels.get('rehearsal.run')} {secrets.token_hex(8)}\n".encode()
        name = f"rehearsal-{secrets.token_hex(4)}.txt"
        response = self.http.post(self.base + "/uploads/", files={"file": (name, content, "text/plain")}, timeout=10)
        require(response.status_code == 201, f"POST /uploads/ -> {response.status_code}: {response.text[:200]}")
        url = response.json()["url"]
        require(url.startswith("/media/"), f"upload URL {url} is not under /media/")
        served = self.get(url)
        require(
            served.status_code == 200 and served.content == content,
            f"GET {url} -> {served.status_code}, {len(served.content)} bytes (uploaded {len(content)})",
        )
        return f"POST /uploads/ 201, GET {url} returns the same {len(content)} bytes"

    def check_static(self) -> str:
        """A file collectstatic put in the static volume, served at staticUrl byte for byte (the
        example's stylesheet; for another app, the first file of the volume)."""
        nginx = self.cid(self.nginx)
        asset = STATIC_ASSET if self.kind == "example" else self.first_static_file(nginx)
        path = f"{app_setting(self.plan, 'staticUrl')}{asset}"
        response = self.get(path)
        require(response.status_code == 200, f"GET {path} -> {response.status_code}")
        on_disk = self.read_file(nginx, f"/var/www/static/{asset}")
        require(response.content == on_disk, f"GET {path} differs from nginx's /var/www/static/{asset}")
        return (
            f"GET {path} 200 ({response.headers.get('Content-Type')}), identical to the file in nginx's static volume"
        )

    def first_static_file(self, nginx: str) -> str:
        listing = self.exec(nginx, ["find", "/var/www/static", "-type", "f", "-not", "-name", "staticfiles.json"])
        files = sorted(line.removeprefix("/var/www/static/") for line in listing.splitlines() if line.strip())
        require(files, "the static volume is empty: collectstatic collected nothing")
        return files[0]

    def check_media(self) -> str:
        """A file a web replica writes into MEDIA_ROOT (as the app user), served at mediaUrl."""
        (web, *_) = self.names("web")
        name = f"rehearsal-{secrets.token_hex(4)}.txt"
        content = f"rehearsal {self.run_labels.get('rehearsal.run')} {secrets.token_hex(8)}\n"
        target = f"{app_setting(self.plan, 'mediaRoot')}/{name}"
        self.exec(self.cid(web), ["python", "-c", f"open({target!r}, 'x').write({content!r})"])
        path = f"{app_setting(self.plan, 'mediaUrl')}{name}"
        served = self.get(path)
        require(
            served.status_code == 200 and served.content == content.encode(),
            f"GET {path} -> {served.status_code}, {len(served.content)} bytes (written {len(content)})",
        )
        return f"{web} wrote {target}; GET {path} returns the same {len(content)} bytes"

    def check_celery(self) -> str:
        """The worker answers a ping through the broker (its own healthcheck, run now)."""
        (worker,) = self.names("celery-worker")
        output = self.exec(self.cid(worker), ["python", "-m", "django_docker_runtime.healthcheck", "worker"])
        return f"{worker} answers a ping through the broker{(': ' + output) if output else ''}"

    def check_migrate(self) -> str:
        """Every release job ran (to exit 0, and left no container); migrate's effect too."""
        jobs = {r.name: r for r in self.plan.of_type(JOB)}
        ran: dict[str, Any] = {e.name: e.real.get("run_id") for e in self.state.entries if e.type == JOB and e.real}
        require(set(ran) == set(jobs), f"jobs that did not run: {sorted(set(jobs) - set(ran))}")
        recorded = "no migrate job (migrateCommand is empty)"
        if self.plan.containers("migrate"):
            # The release job's effect, not only its exit: its migrations are recorded as applied.
            applied = self.psql("select count(*) from django_migrations")
            require(applied.isdigit() and int(applied) >= 1, f"no migration recorded (got {applied!r})")
            recorded = f"{applied} migration(s) recorded"
        left = self.api.containers(
            all=True, filters={"label": ["django-docker.job-run", f"rehearsal.run={self.run_labels['rehearsal.run']}"]}
        )
        require(not left, f"job containers left behind: {[c['Names'] for c in left]}")
        return (
            ", ".join(f"{n} ran (run {run[:12]})" for n, run in sorted(ran.items())) or "no release job"
        ) + f"; {recorded}; no job container left"

    def check_non_root(self) -> str:
        users = {}
        for r in self.plan.of_type(CONTAINER):
            if r.label(ROLE) != "app":
                continue
            info = self.api.inspect_container(self.cid(r.name))
            if info["State"]["Running"]:
                result = self.api.exec_create(info["Id"], ["id", "-u"])
                uid = self.api.exec_start(result["Id"]).decode().strip()
            else:
                uid = (info["Config"]["User"] or self.image_user(info["Image"]) or "0").split(":")[0]
            users[r.name] = uid
        require(users, "no app containers in the plan")
        root = [n for n, uid in users.items() if uid in ("0", "root", "")]
        require(not root, f"running as root: {root}")
        return f"{len(users)} app containers, uids {sorted(set(users.values()))}"

    def check_app_image(self) -> str:
        wrong = {}
        for r in self.plan.of_type(CONTAINER):
            if r.label(ROLE) == "app":
                image = self.api.inspect_container(self.cid(r.name))["Image"]
                if image != self.app_image:
                    wrong[r.name] = image
        require(not wrong, f"not running the built image {self.app_image[:19]}: {wrong}")
        return f"every app container runs the built image {self.app_image[:19]}"

    def check_backend_isolated(self) -> str:
        """A TCP connect from the backend network to an address of this machine outside it.

        The target is a listener the rehearsal opens on the engine's docker0 gateway:
        an address of this host, not on the backend network. From a frontend container
        (a control that proves the probe can reach it) it connects; from a container on
        the backend network only it must not. No packet leaves this machine.
        """
        backend = self.network_named("backend")
        frontend = self.network_named("frontend")
        gateway = self.host_address()
        with socket.socket() as listener:
            listener.bind((gateway, 0))
            listener.listen(8)
            port = listener.getsockname()[1]
            control = self.probe(frontend, gateway, port)
            require(
                control == "connected",
                f"control probe from the frontend network could not reach {gateway}:{port} ({control}); "
                "cannot prove isolation",
            )
            result = self.probe(backend, gateway, port)
        require(result != "connected", f"a backend-only container reached {gateway}:{port}")
        return f"backend-only container cannot reach this host's {gateway}:{port} ({result}); frontend can"

    def check_ports(self) -> str:
        published = {}
        for c in self.api.containers(
            all=True, filters={"label": [f"rehearsal.run={self.run_labels['rehearsal.run']}"]}
        ):
            bindings = self.api.inspect_container(c["Id"])["HostConfig"].get("PortBindings") or {}
            bound = {k: v for k, v in bindings.items() if v}
            if bound:
                published[c["Names"][0].lstrip("/")] = bound
        nginx = self.api.inspect_container(self.cid(self.nginx))["Name"].lstrip("/")
        others = sorted(set(published) - {nginx})
        require(not others, f"ports published by {others}: {[published[o] for o in others]}")
        ports = [
            f"{b['HostIp'] or '0.0.0.0'}:{b['HostPort']}->{k}" for k, v in published.get(nginx, {}).items() for b in v
        ]
        return f"only nginx publishes ({', '.join(ports)})"

    # -- plumbing

    def network_named(self, role: str) -> str:
        networks = live(self.state, NETWORK)
        for r in self.plan.of_type(NETWORK):
            if r.label("django-docker.network") == role:
                return networks[r.name]["name"]
        raise CheckFailed(f"no {role} network in the plan")

    def host_address(self) -> str:
        """This machine's address on the engine's default bridge (docker0)."""
        config = (self.api.inspect_network("bridge")["IPAM"]["Config"] or [{}])[0]
        if config.get("Gateway"):
            return config["Gateway"]
        if config.get("Subnet"):  # the engine gives docker0 the subnet's first address
            hosts = ipaddress.ip_network(config["Subnet"]).hosts()
            if isinstance(hosts, list):  # a /31 or /32 lists its addresses: next() raised this
                raise TypeError("'list' object is not an iterator")
            return str(next(hosts))
        raise CheckFailed("the engine's default bridge has no subnet; no host address to probe")

    def probe(self, network: str, host: str, port: int) -> str:
        code = (
            "import socket, sys\n"
            "s = socket.socket(); s.settimeout(%d)\n"
            "try:\n    s.connect((sys.argv[1], int(sys.argv[2]))); print('connected')\n"
            "except OSError as e:\n    print(type(e).__name__, e.errno or '')\n" % PROBE_TIMEOUT
        )
        container = self.client.containers.create(
            self.app_image,
            ["python", "-c", code, host, str(port)],
            network=network,
            user="10001:10001",
            labels={**self.run_labels, "rehearsal.role": "probe"},
            read_only=True,
        )
        try:
            container.start()
            container.wait(timeout=PROBE_TIMEOUT + 30)
            return container.logs().decode(errors="replace").strip() or "no output"
        finally:
            container.remove(force=True)

    def exec(self, cid: str, argv: list[str]) -> str:
        """Run argv in a running container (as its own user); its output, or CheckFailed."""
        exec_id = self.api.exec_create(cid, argv)["Id"]
        output = self.api.exec_start(exec_id).decode(errors="replace").strip()
        code = self.api.exec_inspect(exec_id)["ExitCode"]
        require(code == 0, f"{' '.join(argv[:3])} exited {code}: {output[-300:]}")
        return output

    def psql(self, sql: str) -> str:
        (postgres,) = self.plan.containers("postgres")
        return psql(self.api, self.cid(postgres.name), sql)

    def read_file(self, cid: str, path: str) -> bytes:
        return read_file(self.api, cid, path)

    def image_user(self, image: str) -> str:
        return self.api.inspect_image(image)["Config"].get("User") or ""

    def tail_of(self, service: str) -> str:
        names = [n for n in self.names(service) if n in self.containers]
        return container_tail(self.api, self.cid(names[0])) if names else " (no such container)"


def psql(api, cid: str, sql: str) -> str:
    """Run one SQL statement in the postgres container as its own user and database."""
    env = dict(e.split("=", 1) for e in api.inspect_container(cid)["Config"]["Env"] if "=" in e)
    user = env.get("POSTGRES_USER", "postgres")
    exec_id = api.exec_create(
        cid, ["psql", "-U", user, "-d", env.get("POSTGRES_DB", user), "-v", "ON_ERROR_STOP=1", "-tAc", sql]
    )["Id"]
    output = api.exec_start(exec_id).decode().strip()
    if api.exec_inspect(exec_id)["ExitCode"] != 0:
        raise CheckFailed(f"psql failed: {output}")
    return output


def read_file(api, cid: str, path: str) -> bytes:
    """One file out of a container (get_archive: works on a stopped one too)."""
    stream, _ = api.get_archive(cid, path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        if member is None:  # not a regular file: `.read()` raised this
            raise AttributeError("'NoneType' object has no attribute 'read'")
        return member.read()
