"""tlsMode acme, proven against Pebble: obtained by the first `pulumi up`, served, renewed under
load, and a CA that refuses.

`python -m rehearsal acme STACK` (make rehearse-acme STACK=...) starts Pebble (rehearsal/hosts/
pebble.py: Let's Encrypt's test CA from Debian's package, on this machine only), boots the stack
as `rehearse()` does with `tlsMode: acme` pointed at it (acmeDirectory, acmeCaCertificate: the
directory's TLS root; its smoke and day-2 checks then go over HTTPS, verified against Pebble's
issuing root), and then, against 127.0.0.1 with serverName as Host and SNI:

- certificate: the first `pulumi up` waited for it: the acme-certificate job ran, and nginx
  presents a certificate Pebble issued for exactly the stack's names, verified against Pebble's
  root (not the placeholder nginx started with);
- http: plain HTTP is redirected to HTTPS, but the HTTP-01 challenge path is served from the
  webroot (never redirected);
- keys: lego's account key and the certificate's key are files of mode 0600 in the volumes, and
  in no container's `docker inspect` (environment included), no plan output or non-secret
  input, nothing the rehearsal printed;
- status: `python -m ops status` names the served certificate and its days left;
- renewal: forced in the running ACME client (`python -m ops renew-certificate`) under HTTPS load:
  a new certificate is served and no request fails;
- refusal: a `pulumi up` that adds a name Pebble cannot validate (its DNS says NXDOMAIN) fails in
  one line naming the name and the CA's error; the old certificate serves on, no request fails.

Then `acme <stack>: <K> checks passed, <M> failed`. Exit 1 on any failure.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from components import render
from planning.harness import JOB, stack_config
from rehearsal.checks.load import Load
from rehearsal.checks.smoke import Check, CheckFailed, front_door, http_session, require, run_checks
from rehearsal.checks.tls import _json_escaped, _Tee
from rehearsal.emulation.engine import LOOPBACK, brief
from rehearsal.hosts.pebble import Pebble

REFUSED_LABEL = "refused"  # the name Pebble's DNS does not know: <this>.<serverName>
LOAD_RATE, LOAD_WORKERS = 20, 4
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class AcmeRehearsal:
    """What `python -m rehearsal acme` adds to `rehearse()`: Pebble and config before the boot,
    the checks after it."""

    def __init__(self, stack: str):
        self.stack = stack
        self.pebble: Optional[Pebble] = None
        self.printed: list[str] = []
        self.checks: list[Check] = []
        self.server_name = ""

    def before_boot(self, ctx) -> None:
        config, ns = stack_config(self.stack)
        self.server_name = config[f"{ns}:serverName"].lstrip(".")
        http_port = int(config.get(f"{ns}:httpPort") or 80)
        self.pebble = Pebble(
            ctx.session.client, dict(ctx.session.run_labels), http_port, ctx.say, names={self.server_name}
        )
        ctx.say(f"  acme: {self.pebble.start()}")
        root = Path(ctx.scratch) / "pebble-root.pem"
        root.write_text(self.pebble.issuing_roots())
        ctx.tls_ca = str(root)
        ctx.overrides.update(
            tlsMode="acme",
            acmeEmail=f"rehearsal@{self.server_name}",
            acmeDirectory=self.pebble.directory,
            acmeCaCertificate=self.pebble.directory_ca_pem,
            # Any name under serverName is an allowed host: the refusal's name needs no new environment.
            djangoAllowedHosts=f".{self.server_name}",
        )
        self._stdout = sys.stdout
        sys.stdout = _Tee(sys.stdout, self.printed)
        ctx.say(
            f"  acme: tlsMode acme for {self.server_name}, acmeDirectory {self.pebble.directory}; HTTPS verified "
            "against Pebble's issuing root"
        )

    def after_boot(self, ctx, phase) -> list[Check]:
        info: dict = {}
        with phase("acme", info):
            assert self.pebble is not None  # before_boot ran
            self.checks = AcmeChecks(ctx, self.pebble, self.server_name, self.printed).run()
            info["text"] = f"{sum(c.ok for c in self.checks)} of {len(self.checks)} ACME checks passed"
        return self.checks

    def summary(self, phase_failed: bool) -> tuple[str, int]:
        if isinstance(sys.stdout, _Tee):
            sys.stdout = self._stdout
        if self.pebble is not None:
            self.pebble.stop()
        passed = sum(c.ok for c in self.checks)
        failed = sum(not c.ok for c in self.checks) + (1 if phase_failed else 0)
        return f"acme {self.stack}: {passed} checks passed, {failed} failed", failed


class AcmeChecks:
    def __init__(self, ctx, pebble: Pebble, server_name: str, printed: list[str]):
        self.ctx, self.pebble, self.server_name, self.printed = ctx, pebble, server_name, printed
        self.api = ctx.session.client.api
        self.plan = ctx.current_plan().plan
        self.say: Callable[[str], None] = ctx.say
        self.https_base, self.host, _ = front_door(self.plan)
        nginx = self.plan.containers("nginx")[0]
        ports = {int(p["internal"]): int(p["external"]) for p in nginx.inputs.get("ports") or []}
        self.https_port, self.http_base = ports[443], f"http://{LOOPBACK}:{ports[80]}"
        self.names = [self.server_name]

    def run(self) -> list[Check]:
        return run_checks(
            [
                ("certificate", self.check_certificate),
                ("http", self.check_http),
                ("keys", self.check_keys),
                ("status", self.check_status),
                ("renewal", self.check_renewal),
                ("refusal", self.check_refusal),
            ],
            self.say,
        )

    # -- what nginx presents

    def presented(self) -> x509.Certificate:
        """The certificate of a handshake for serverName on nginx's HTTPS port, verified against
        Pebble's issuing root."""
        context = ssl.create_default_context(cafile=self.ctx.tls_ca)
        with socket.create_connection((LOOPBACK, self.https_port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=self.server_name) as tls:
                der = tls.getpeercert(binary_form=True)
        if der is None:
            raise CheckFailed("no certificate presented")
        return x509.load_der_x509_certificate(der)

    def describe(self, cert: x509.Certificate) -> str:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
        issuer = ", ".join(str(a.value) for a in cert.issuer if a.oid == x509.oid.NameOID.COMMON_NAME)
        return f"serial {cert.serial_number:x}"[:24] + f", {', '.join(names)}, issued by {issuer}"

    def check_certificate(self) -> str:
        jobs = {e.name: e for e in self.ctx.session.state.entries if e.type == JOB and e.real}
        job = next((e for n, e in jobs.items() if n.endswith("acme-certificate")), None)
        if job is None:
            raise CheckFailed(f"no acme-certificate job ran in the first `pulumi up` (jobs: {sorted(jobs)})")
        cert = self.presented()
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
        require(sorted(names) == sorted(self.names), f"the certificate names {names}, expected {self.names}")
        issuer = ", ".join(str(a.value) for a in cert.issuer if a.oid == x509.oid.NameOID.COMMON_NAME)
        require("placeholder" not in issuer, "nginx still serves the placeholder")
        response = http_session(self.https_base, self.host, self.ctx.tls_ca).get(
            self.https_base + "/health/", timeout=10
        )
        require(response.status_code == 200, f"GET https://{self.host}/health/ -> {response.status_code}")
        (renewer,) = self.ctx.session.containers_of("acme").values()
        health = renewer["State"]["Health"]["Status"]
        require(health == "healthy", f"the ACME client is {health}")
        return (
            f"the first `pulumi up` ran {job.name} (run {job.real.get('run_id', '')[:12]}); nginx presents "
            f"{self.describe(cert)}, verified against Pebble's root for {self.server_name}; GET /health/ 200 over "
            f"HTTPS; the renewer {renewer['Name'].lstrip('/')} is healthy"
        )

    def check_http(self) -> str:
        import requests

        with requests.Session() as plain:
            plain.trust_env = False
            redirect = plain.get(self.http_base + "/health/", headers={"Host": self.host}, allow_redirects=False)
            challenge = plain.get(
                self.http_base + render.ACME_CHALLENGE_PATH + "rehearsal-probe",
                headers={"Host": self.host},
                allow_redirects=False,
            )
        require(redirect.status_code == 301, f"GET http://{self.host}/health/ -> {redirect.status_code}, not 301")
        require(
            challenge.status_code == 404,
            f"GET {render.ACME_CHALLENGE_PATH}rehearsal-probe over HTTP -> {challenge.status_code} (expected 404 "
            "from the webroot: the challenge path must not be redirected)",
        )
        return (
            f"GET http://{self.host}/health/ -> 301 {redirect.headers.get('Location')}; "
            f"{render.ACME_CHALLENGE_PATH}… is served over HTTP from the webroot (404 for a token that is not there)"
        )

    # -- the keys

    def _exec(self, cid: str, command: list[str]) -> str:
        exec_id = self.api.exec_create(cid, command)["Id"]
        output = self.api.exec_start(exec_id).decode(errors="replace")
        require(self.api.exec_inspect(exec_id)["ExitCode"] == 0, f"{' '.join(command)} failed: {output.strip()}")
        return output

    def check_keys(self) -> str:
        (renewer,) = self.ctx.session.containers_of("acme").values()
        rid = renewer["Id"]
        paths = self._exec(rid, ["find", render.ACME_DATA, "-name", "*.key", "-type", "f"]).split()
        require(any("/accounts/" in p for p in paths), f"no account key under {render.ACME_DATA} ({paths})")
        paths.append(render.NGINX_ACME_KEY)
        modes = {p: self._exec(rid, ["stat", "-c", "%a", p]).strip() for p in paths}
        require(all(m == "600" for m in modes.values()), f"key files not 0600: {modes}")
        keys = {p: self._exec(rid, ["cat", p]) for p in paths}
        needles: dict[str, bytes] = {}
        for path, pem in keys.items():
            key = serialization.load_pem_private_key(pem.encode(), password=None)
            body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
            needles[f"{path} (a PEM line)"] = body[min(1, len(body) - 1)].encode()
            if isinstance(key, ec.EllipticCurvePrivateKey):  # its raw private value, in any binary copy
                size = (key.curve.key_size + 7) // 8
                needles[f"{path} (private value)"] = key.private_numbers().private_value.to_bytes(size, "big")
        labels = [f"{k}={v}" for k, v in self.ctx.session.run_labels.items()]
        found = []
        containers = self.api.containers(all=True, filters={"label": labels})
        for c in containers:
            text = json.dumps(self.api.inspect_container(c["Id"])).encode()
            found += [
                f"{c['Names'][0]} ({what})" for what, n in needles.items() if n in text or _json_escaped(n) in text
            ]
        places = {
            "the plan's outputs": json.dumps(self.plan.outputs, default=str),
            "the rehearsal's output": "".join(self.printed),
        }
        found += [
            f"{where} ({what})" for where, text in places.items() for what, n in needles.items() if n in text.encode()
        ]
        require(not found, f"a key is in {found}")
        return (
            f"{len(paths)} keys (the ACME account's, the certificate's, nginx's copy), each 0600; none in docker "
            f"inspect of the run's {len(containers)} containers, the plan's outputs or the {len(self.printed)} "
            "pieces of output printed"
        )

    # -- the day-2 view

    def check_status(self) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "ops", "status", self.ctx.stack],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        line = next((x for x in result.stdout.splitlines() if x.startswith("certificate:")), "")
        require(
            self.server_name in line and "days left" in line,
            f"ops status shows no certificate line: {result.stdout[-400:]}",
        )
        return f"`python -m ops status {self.ctx.stack}`: {line}"

    # -- under load

    def load(self) -> Load:
        base, host = self.https_base, self.host
        return Load(
            base,
            host=host,
            path="/health/",
            rate=LOAD_RATE,
            workers=LOAD_WORKERS,
            max_seconds=300,
            session=lambda: http_session(base, host, self.ctx.tls_ca),
        )

    def check_renewal(self) -> str:
        before = self.presented()
        load = self.load().start()
        try:
            time.sleep(1.0)
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, "-m", "ops", "renew-certificate", self.ctx.stack],
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
            require(result.returncode == 0, f"ops renew-certificate exited {result.returncode}: {result.stdout[-300:]}")
            after = before
            while after.serial_number == before.serial_number and time.monotonic() - started < 30:
                time.sleep(0.2)
                after = self.presented()
            seconds = time.monotonic() - started
            time.sleep(1.0)
        finally:
            report = load.stop()
        require(
            after.serial_number != before.serial_number, "nginx still presents the old certificate after the renewal"
        )
        self.say(f"acme {self.ctx.stack} renewal: {report.line(self.ctx.stack, 'renewal').split(': ', 1)[1]}")
        require(report.failed == 0, f"{report.failed} requests failed during the renewal")
        return (
            f"forced in the running ACME client ({result.stdout.strip().splitlines()[-1]}); nginx presents "
            f"{self.describe(after)} {seconds:.1f}s later; {report.requests} HTTPS requests, 0 failed"
        )

    def check_refusal(self) -> str:
        before = self.presented()
        refused = f"{REFUSED_LABEL}.{self.server_name}"
        load = self.load().start()
        try:
            time.sleep(1.0)
            self.ctx.overrides["acmeExtraNames"] = refused
            rp = self.ctx.plan(self.ctx.variant)
            result = self.ctx.session.up(rp)
            time.sleep(1.0)
        finally:
            report = load.stop()
            self.ctx.overrides.pop("acmeExtraNames", None)
        require(not result.ok, "the `pulumi up` with a name the CA cannot validate succeeded")
        error = result.error or ""
        require(
            refused in error and "the CA refused" in error and "\n" not in error,
            f"the failure does not name {refused} and the CA's error on one line: {brief(error)}",
        )
        after = self.presented()
        require(after.serial_number == before.serial_number, "the certificate changed after a refused order")
        require(report.failed == 0, f"{report.failed} requests failed while the CA refused")
        acme_line = error[error.index("acme: ") :] if "acme: " in error else error
        return (
            f"`pulumi up` adding {refused} failed ({brief(acme_line, 240)}); nginx still presents "
            f"{self.describe(after)}; {report.requests} HTTPS requests, 0 failed"
        )
