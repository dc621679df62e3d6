"""TLS, proven: a stack with a certificate made for the run, served by the real nginx.

`python -m rehearsal tls STACK` (make rehearse-tls STACK=...) generates a CA and a server
certificate for the stack's serverName, passes them to the plan as secret config
(`tlsCertificate`, `tlsKey`; `djangoHstsSeconds` set for the run), boots the stack as
`rehearse()` does (its smoke and day-2 checks then run over HTTPS, verified against that CA),
and then runs the checks below, all against 127.0.0.1 with the serverName as Host and SNI:

- https: GET /health/ is 200 with the certificate verified against the run's CA for serverName,
  and the certificate nginx presents is the run's;
- verification: the same request is refused by a client that does not trust the run's CA, and
  for another host name (so the first check's verification is real);
- redirect: plain HTTP gets a 301/308 to the same https:// URL;
- hsts: exactly one Strict-Transport-Security header, with the configured max-age, on what the
  app answers and on what nginx serves itself;
- django https: `request.is_secure()` is true (GET /whoami/);
- csrf: with the CSRF cookie and token a browser gets from a GET, a POST to the CSRF-protected
  /whoami/ passes from Origin https://serverName; without the token, and from the http://
  origin, it is refused (so Django compares against the https origin: it knows the scheme);
- key file: in nginx, mode 0600, owned by root (nginx's master reads it before it drops to its
  worker user), the run's key byte for byte;
- key not in env: no container of the run carries the key in anything `docker inspect` shows;
- key not in images: no layer of any image the run's containers run (docker save, streamed);
- key not in outputs: not in the plan's outputs, any resource input not marked secret, or
  anything the rehearsal printed to stdout since the certificates were made.

The boot's own checks (smoke, ops) are counted in the `rehearsal <stack>: ...` line as for
`up`; the final `tls <stack>: <K> checks passed, <M> failed` counts the TLS checks above, plus
one failure when a phase before them failed (then they did not run). Exit 1 when either
line has a failure.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import ssl
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, cast
from urllib.parse import urlsplit

import certifi
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from components import render
from planning.harness import NGINX_SITE, Plan, stack_config
from rehearsal.checks.smoke import (
    Check,
    CheckFailed,
    ServerNameAdapter,
    healthy_answer,
    http_session,
    require,
    run_checks,
)
from rehearsal.emulation.engine import LOOPBACK
from rehearsal.hosts.certificates import RunCertificates, certificates_for, key_pem, new_key  # noqa: F401 (re-exported)

HSTS_SECONDS = 600  # the run's djangoHstsSeconds (prod's committed value is 0: HSTS off)
# Where nginx reads them: the site volume's current generation (components/nginx_site.py).
KEY_FILE = f"{render.NGINX_SITE_DIR}/current/{render.NGINX_SITE_TLS_KEY}"
CERT_FILE = f"{render.NGINX_SITE_DIR}/current/{render.NGINX_SITE_TLS_CERT}"
OTHER_NAME = "not-the-server.example.net"
SCAN_CHUNK = 1 << 20


# --------------------------------------------------------------------------- certificates (rehearsal.hosts.certificates)


def _rsa(template: RunCertificates, bits: int) -> RunCertificates:
    from cryptography.hazmat.primitives.asymmetric import rsa

    leaf = x509.load_pem_x509_certificate(template.cert_pem.encode())
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    ca_key = new_key()
    ca = x509.load_pem_x509_certificate(template.ca_pem.encode())
    cert = (
        x509.CertificateBuilder()
        .subject_name(leaf.subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(leaf.not_valid_before_utc)
        .not_valid_after(leaf.not_valid_after_utc)
        .add_extension(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return RunCertificates(template.ca_pem, cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem(key))


def key_needles(certs: RunCertificates) -> dict[str, bytes]:
    """What the key looks like wherever it might leak: its PEM, a line of its PEM body (survives
    re-wrapping and escaping), and the raw private scalar (DER, or any binary copy of it)."""
    lines = [line for line in certs.key_pem.splitlines() if line and not line.startswith("-----")]
    scalar = certs.key.private_numbers().private_value.to_bytes(32, "big")
    return {"PEM": certs.key_pem.encode(), "PEM body line": lines[1].encode(), "private scalar": scalar}


# --------------------------------------------------------------------------- the hook


class TlsRehearsal:
    """What `python -m rehearsal tls` adds to `rehearse()`: config before the boot, checks after it."""

    def __init__(self, stack: str):
        self.stack = stack
        self.certs: Optional[RunCertificates] = None
        self.printed: list[str] = []
        """What the process printed since before the plan (stdout)."""
        self.checks: list[Check] = []

    def before_boot(self, ctx) -> None:
        config, ns = stack_config(self.stack)
        server_name = config[f"{ns}:serverName"]
        self.certs = certificates_for(server_name)
        ca_file = Path(ctx.scratch) / "rehearsal-ca.pem"
        ca_file.write_text(self.certs.ca_pem)
        ctx.tls_ca = str(ca_file)
        ctx.secrets.update(tlsCertificate=self.certs.cert_pem, tlsKey=self.certs.key_pem)
        ctx.overrides["djangoHstsSeconds"] = HSTS_SECONDS
        self._stdout = sys.stdout
        sys.stdout = _Tee(sys.stdout, self.printed)  # everything printed from here on, for check_not_in_outputs
        ctx.say(
            f"  tls: a CA and a certificate for {server_name} generated for this run (EC P-256, valid 1 day), "
            f"passed as secret config tlsCertificate/tlsKey; djangoHstsSeconds {HSTS_SECONDS}"
        )

    def after_boot(self, ctx, phase) -> list[Check]:
        info: dict = {}
        with phase("tls", info):
            # before_boot (always run first) set them; TlsChecks fails on None as it always did.
            self.checks = TlsChecks(ctx, cast(RunCertificates, self.certs), self.printed).run()
            info["text"] = f"{sum(c.ok for c in self.checks)} of {len(self.checks)} TLS checks passed"
        return self.checks

    def summary(self, phase_failed: bool) -> tuple[str, int]:
        """The final line; a phase that failed (the boot, or the TLS phase itself) counts once."""
        if isinstance(sys.stdout, _Tee):
            sys.stdout = self._stdout
        passed = sum(c.ok for c in self.checks)
        failed = sum(not c.ok for c in self.checks) + (1 if phase_failed else 0)
        return f"tls {self.stack}: {passed} checks passed, {failed} failed", failed


# --------------------------------------------------------------------------- the checks


class TlsChecks:
    def __init__(self, ctx, certs: RunCertificates, printed: list[str]):
        self.ctx = ctx
        self.api = ctx.session.client.api
        self.plan: Plan = ctx.rp.plan
        self.certs = certs
        self.printed = printed
        self.say: Callable[[str], None] = ctx.say
        self.server_name = next(v for k, v in self.plan.config.items() if k.endswith(":serverName")).lstrip(".")
        nginx = self.plan.containers("nginx")
        require(len(nginx) == 1, f"expected one nginx container, found {len(nginx)}")
        self.nginx_name = nginx[0].name
        ports = {int(p["internal"]): int(p["external"]) for p in nginx[0].inputs.get("ports") or []}
        require(443 in ports, f"nginx publishes no port for 443 (publishes {sorted(ports)})")
        self.https_base = f"https://{LOOPBACK}:{ports[443]}"
        self.http_base = f"http://{LOOPBACK}:{ports[80]}"
        self.host = urlsplit(self.plan.outputs.get("url") or "").netloc
        require(
            self.plan.outputs.get("url", "").startswith("https://"),
            f"the stack's url is {self.plan.outputs.get('url')}, not https",
        )
        self.https = http_session(self.https_base, self.host, ctx.tls_ca)

    def run(self) -> list[Check]:
        return run_checks(
            [
                ("https", self.check_https),
                ("verification", self.check_verification_is_real),
                ("redirect", self.check_redirect),
                ("hsts", self.check_hsts),
                ("django https", self.check_is_secure),
                ("csrf", self.check_csrf),
                ("key file", self.check_key_file),
                ("key not in env", self.check_not_in_containers),
                ("key not in images", self.check_not_in_images),
                ("key not in outputs", self.check_not_in_outputs),
                ("rotation", self.check_rotation),
                ("refused certificate", self.check_refused_certificate),
            ],
            self.say,
        )

    # -- over the wire

    def check_https(self) -> str:
        response = self.https.get(self.https_base + "/health/", timeout=10, allow_redirects=False)
        answer = healthy_answer(response, f"https://{self.host}/health/")
        # What nginx presents, from a handshake of our own (the same verification, for serverName).
        context = ssl.create_default_context(cafile=self.ctx.tls_ca)
        https_port = urlsplit(self.https_base).port
        if https_port is None:  # (what int(None) raised)
            raise TypeError("int() argument must be a string, a bytes-like object or a real number, not 'NoneType'")
        port = int(https_port)
        with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=self.server_name) as tls:
                presented, version = tls.getpeercert(binary_form=True), tls.version()
        expected = self.certs.cert_der()
        if presented is None or presented != expected:  # (what require() raises)
            raise CheckFailed("nginx presents a certificate that is not the run's")
        return (
            f"{answer.split(', git_sha')[0]} on {LOOPBACK}:{port}, certificate "
            f"verified against the run's CA for {self.server_name}; nginx presents the run's certificate "
            f"(sha256 {hashlib.sha256(presented).hexdigest()[:16]}), {version}"
        )

    def check_verification_is_real(self) -> str:
        """Each refusal must be for its own reason, or the https check's verification proves nothing."""
        refused = []
        for label, session, reason in (
            (
                f"{self.server_name} by a client that trusts only certifi's CAs",
                self._session(self.server_name, verify=certifi.where()),
                "unable to get local issuer certificate",
            ),
            (
                f"{OTHER_NAME} by a client that trusts the run's CA",
                self._session(OTHER_NAME, verify=self.ctx.tls_ca),
                "Hostname mismatch",
            ),
        ):
            try:
                session.get(self.https_base + "/health/", timeout=10)
            except requests.exceptions.SSLError as error:
                require(reason in str(error), f"{label}: refused, but not for '{reason}': {_reason(error)}")
                refused.append(f"{label} ({_reason(error)})")
                continue
            raise CheckFailed(f"{label}: accepted")
        return "refused for " + "; and for ".join(refused)

    def _session(self, name: str, *, verify: str) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # as smoke.http_session: the environment's CA bundle must not win
        session.headers["Host"] = self.host
        session.mount(self.https_base, ServerNameAdapter(name))
        session.verify = verify
        return session

    def check_redirect(self) -> str:
        path = "/visits/1/?from=rehearsal"
        with requests.Session() as plain:
            plain.trust_env = False
            response = plain.get(self.http_base + path, headers={"Host": self.host}, timeout=10, allow_redirects=False)
        require(
            response.status_code in (301, 308),
            f"GET http://{self.host}{path} -> {response.status_code}, not a redirect",
        )
        expected = f"https://{self.host}{path}"
        require(
            response.headers.get("Location") == expected,
            f"Location {response.headers.get('Location')!r}, expected {expected!r}",
        )
        require(
            "Strict-Transport-Security" not in response.headers,
            "the plain-HTTP answer carries HSTS (RFC 6797 7.2: only over HTTPS)",
        )
        return f"GET http://{self.host}{path} -> {response.status_code} Location {expected}"

    def check_hsts(self) -> str:
        wanted = f"max-age={HSTS_SECONDS}"
        seen = []
        for path in ("/whoami/", "/static/visits/site.css"):
            response = self.https.get(self.https_base + path, timeout=10, allow_redirects=False)
            require(response.status_code == 200, f"GET {path} -> {response.status_code}")
            values = response.raw.headers.getlist("Strict-Transport-Security")
            require(
                len(values) == 1,
                f"GET {path}: {len(values)} Strict-Transport-Security headers {values} (clients use only the first)",
            )
            directives = [d.strip() for d in values[0].split(";")]
            require(wanted in directives, f"GET {path}: Strict-Transport-Security {values[0]!r} has no {wanted}")
            seen.append(f"{path}: {values[0]!r}")
        return "exactly one header, " + "; ".join(seen)

    def check_is_secure(self) -> str:
        response = self.https.get(self.https_base + "/whoami/", timeout=10, allow_redirects=False)
        require(response.status_code == 200, f"GET /whoami/ -> {response.status_code}")
        body = response.json()
        require(body.get("secure") is True, f"Django answered {body}: request.is_secure() is not true")
        return f"GET https://{self.host}/whoami/: request.is_secure() true (answered by {body.get('hostname')})"

    def check_csrf(self) -> str:
        origin = f"https://{self.host}"
        browser = http_session(self.https_base, self.host, self.ctx.tls_ca)
        page = browser.get(self.https_base + "/whoami/", timeout=10)
        require(page.status_code == 200, f"GET /whoami/ -> {page.status_code}")
        cookie = next((c for c in browser.cookies if c.name == "csrftoken"), None)
        if cookie is None:  # (what require() raises)
            raise CheckFailed("GET /whoami/ set no csrftoken cookie")
        require(cookie.secure, "the csrftoken cookie is not Secure over HTTPS")

        def post(**headers) -> int:
            return browser.post(
                self.https_base + "/whoami/", headers=headers, timeout=10, allow_redirects=False
            ).status_code

        without_token = post(Origin=origin, Referer=origin + "/whoami/")
        require(
            without_token == 403,
            f"POST without the CSRF token -> {without_token}, expected 403: the view is not protected",
        )
        plain_origin = post(
            Origin=f"http://{self.host}", Referer=f"http://{self.host}/whoami/", **{"X-CSRFToken": cookie.value}
        )
        require(plain_origin == 403, f"POST from Origin http://{self.host} -> {plain_origin}, expected 403")
        passed = post(Origin=origin, Referer=origin + "/whoami/", **{"X-CSRFToken": cookie.value})
        require(passed == 200, f"POST with the CSRF cookie and token from Origin {origin} -> {passed}")
        return (
            f"POST /whoami/ with the cookie's token from Origin {origin} 200 (Secure csrftoken cookie); "
            f"refused without the token ({without_token}) and from http:// ({plain_origin})"
        )

    # -- a new certificate, by `pulumi up`, under load

    def presented(self, ca_file: str) -> bytes:
        context = ssl.create_default_context(cafile=ca_file)
        port = urlsplit(self.https_base).port or 443
        with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=self.server_name) as tls:
                der = tls.getpeercert(binary_form=True)
        if der is None:
            raise CheckFailed("no certificate presented")
        return der

    def _up_under_load(self, certs: "RunCertificates", ca_file: str):
        from rehearsal.checks.load import Load

        load = Load(
            self.https_base,
            host=self.host,
            path="/health/",
            rate=20,
            workers=4,
            max_seconds=120,
            session=lambda: http_session(self.https_base, self.host, ca_file),
        ).start()
        try:
            time.sleep(1.0)
            self.ctx.secrets.update(tlsCertificate=certs.cert_pem, tlsKey=certs.key_pem)
            result = self.ctx.session.up(self.ctx.plan(self.ctx.variant))
            time.sleep(1.0)
        finally:
            report = load.stop()
        return result, report

    def check_rotation(self) -> str:
        """A new certificate (same CA) set as the secrets and applied: nginx reloads, no request fails."""
        nginx_before = self.nginx_id()
        rotated = certificates_for(self.server_name)
        # Its CA joins the run's bundle first: clients under load accept both, old and new.
        with open(self.ctx.tls_ca, "a") as bundle:
            bundle.write(rotated.ca_pem)
        result, report = self._up_under_load(rotated, self.ctx.tls_ca)
        require(result.ok, f"the rotation's `pulumi up` failed: {result.error}")
        presented = self.presented(self.ctx.tls_ca)
        require(presented == rotated.cert_der(), "nginx does not present the rotated certificate")
        require(self.nginx_id() == nginx_before, "nginx was replaced, not reloaded")
        require(report.failed == 0, f"{report.failed} of {report.requests} requests failed during the rotation")
        self.certs = rotated
        self.say(f"    {report.line(self.ctx.stack, 'certificate-rotation')}")
        return (
            f"new certificate (sha256 {hashlib.sha256(presented).hexdigest()[:16]}) served by the same nginx "
            f"after `pulumi up` ({result.seconds:.1f}s); {report.requests} HTTPS requests, 0 failed"
        )

    def check_refused_certificate(self) -> str:
        """An RSA-1024 certificate: the settings take it (it parses, matches, covers serverName),
        nginx's OpenSSL refuses it (security level 2: "ee key too small"). `nginx -t` catches it
        before anything changes: `pulumi up` fails in one line and the old certificate serves on."""
        weak = _rsa(certificates_for(self.server_name), 1024)
        before = self.presented(self.ctx.tls_ca)
        result, report = self._up_under_load(weak, self.ctx.tls_ca)
        self.ctx.secrets.update(tlsCertificate=self.certs.cert_pem, tlsKey=self.certs.key_pem)
        require(not result.ok, "nginx took an RSA-1024 certificate")
        error = result.error or ""
        require("nginx -t" in error and "\n" not in error, f"not nginx -t's one-line refusal: {error[:300]}")
        require(self.presented(self.ctx.tls_ca) == before, "the served certificate changed")
        require(report.failed == 0, f"{report.failed} of {report.requests} requests failed")
        # Back to the served certificate's secrets: the next `pulumi up` is a no-op again.
        again = self.ctx.session.up(self.ctx.plan(self.ctx.variant))
        require(again.ok, f"the `pulumi up` back to the served certificate failed: {again.error}")
        return f"`pulumi up` refused: {error[error.find('nginx refused') :][:200]}; the old certificate served on, {report.requests} requests, 0 failed"

    # -- on the engine

    def nginx_id(self) -> str:
        (nginx,) = [c for c in self.ctx.session.containers_of("nginx").values()]
        return nginx["Id"]

    def exec(self, cid: str, command: list[str]) -> str:
        exec_id = self.api.exec_create(cid, command)["Id"]
        output = self.api.exec_start(exec_id).decode(errors="replace").strip()
        require(self.api.exec_inspect(exec_id)["ExitCode"] == 0, f"{' '.join(command)} failed: {output}")
        return output

    def check_key_file(self) -> str:
        cid = self.nginx_id()
        mode = self.exec(cid, ["stat", "-c", "%a %u:%g %U", KEY_FILE])
        require(mode.split()[0] == "600", f"{KEY_FILE} has mode {mode.split()[0]}, expected 600")
        require(mode.split()[1] == "0:0", f"{KEY_FILE} is owned by {mode.split()[1]}, expected root (0:0)")
        content = self.ctx.read_file(cid, KEY_FILE)
        require(content == self.certs.key_pem, f"{KEY_FILE} is not the run's key")
        require(self.ctx.read_file(cid, CERT_FILE) == self.certs.cert_pem, f"{CERT_FILE} is not the run's certificate")
        # Only nginx's master (root) reads it, at start; its workers serve as the `nginx` user.
        status = self.exec(cid, ["sh", "-c", "cat /proc/[0-9]*/status 2>/dev/null | grep -E '^(Name|Uid):'"])
        fields = [line.split()[1] for line in status.splitlines()]
        uids = {(name, uid) for name, uid in zip(fields[::2], fields[1::2]) if name == "nginx"}
        require(any(uid != "0" for _, uid in uids), f"every nginx process runs as root ({sorted(uids)})")
        exec_id = self.api.exec_create(cid, ["cat", KEY_FILE], user="nginx")["Id"]
        self.api.exec_start(exec_id)
        require(self.api.exec_inspect(exec_id)["ExitCode"] != 0, f"the nginx worker user can read {KEY_FILE}")
        return (
            f"{KEY_FILE}: mode 0600, owner {mode.split()[2]} (0:0), the run's key; nginx processes run as uids "
            f"{sorted({uid for _, uid in uids})}, and the worker user `nginx` cannot read it"
        )

    def run_containers(self) -> list[dict]:
        labels = [f"{k}={v}" for k, v in self.ctx.session.run_labels.items()]
        return self.api.containers(all=True, filters={"label": labels})

    def check_not_in_containers(self) -> str:
        needles = key_needles(self.certs)
        containers = self.run_containers()
        require(containers, "no containers of this run")
        found = []
        for c in containers:
            text = json.dumps(self.api.inspect_container(c["Id"])).encode()
            found += [
                f"{c['Names'][0].lstrip('/')} ({what})"
                for what, needle in needles.items()
                if needle in text or _json_escaped(needle) in text
            ]
        require(not found, f"the key is in docker inspect of {found}")
        return f"not in docker inspect (env, labels, command, mounts) of any of the run's {len(containers)} containers"

    def check_not_in_images(self) -> str:
        needles = key_needles(self.certs)
        # Positive control: the scanner finds the key where it is (the nginx container's file).
        control = self.ctx.read_file(self.nginx_id(), KEY_FILE).encode()
        require(
            _scan([control[:100], control[100:]], needles), "the scanner does not find the key in the key file itself"
        )
        images: dict[str, str] = {}
        for c in self.run_containers():
            images.setdefault(c["ImageID"], c["Image"])
        found, scanned = [], 0
        for image_id, name in sorted(images.items(), key=lambda kv: kv[1]):
            size = 0

            def chunks(image_id=image_id):
                nonlocal size
                for chunk in self.api.get_image(image_id, chunk_size=SCAN_CHUNK):
                    size += len(chunk)
                    yield chunk

            hits = _scan(chunks(), needles)
            scanned += size
            if hits:
                found.append(f"{name} ({', '.join(hits)})")
        require(not found, f"the key is in the layers of {found}")
        return (
            f"not in any layer or config of the run's {len(images)} images (docker save, {scanned / 1e6:.0f} MB: "
            f"{', '.join(sorted(set(images.values())))})"
        )

    def check_not_in_outputs(self) -> str:
        needles = key_needles(self.certs)
        outputs = json.dumps(self.plan.outputs, default=str)
        plain_inputs = json.dumps([_without(r.inputs, r.secret_paths) for r in self.plan.resources], default=str)
        printed = "".join(self.printed)
        where = {
            "the plan's outputs": outputs,
            "non-secret resource inputs": plain_inputs,
            "the rehearsal's output": printed,
        }
        found = [
            f"{place} ({what})"
            for place, text in where.items()
            for what, needle in needles.items()
            if needle in text.encode() or _json_escaped(needle) in text.encode()
        ]
        require(not found, f"the key is in {found}")
        (site,) = self.plan.of_type(NGINX_SITE)
        require("files" in site.secret_paths, "the NginxSite's files (the key among them) are not marked secret")
        return (
            f"not in the plan's {len(self.plan.outputs)} outputs, the non-secret inputs of {len(self.plan.resources)} "
            f"resources, or the {printed.count(chr(10))} lines printed so far; nginx's uploads are secret"
        )


class _Tee(io.TextIOBase):
    """stdout, also kept as text."""

    def __init__(self, stream, kept: list[str]):
        self.stream, self.kept = stream, kept

    def write(self, text: str) -> int:
        self.kept.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:  # a child process writing to it directly is not kept
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()


def _reason(error: requests.exceptions.SSLError) -> str:
    match = re.search(r"certificate verify failed: (.*?)\s*\(_ssl", str(error))
    return match.group(1).rstrip(".") if match else str(error)[:160]


def _json_escaped(needle: bytes) -> bytes:
    return json.dumps(needle.decode("latin-1"))[1:-1].encode("latin-1")


def _scan(chunks: Iterable[bytes], needles: dict[str, bytes]) -> list[str]:
    """Which needles occur in a stream, also across chunk boundaries."""
    keep = max(len(n) for n in needles.values()) - 1
    hits: set[str] = set()
    tail = b""
    for chunk in chunks:
        window = tail + chunk
        hits |= {what for what, needle in needles.items() if needle in window}
        tail = window[-keep:] if keep else b""
    return sorted(hits)


def _without(value: Any, secret_paths: Iterable[str], path: str = "") -> Any:
    """A resource's inputs with every secret path (as plan.py names them) left out."""
    paths = set(secret_paths)
    if path in paths:
        return "[secret]"
    if isinstance(value, dict):
        return {k: _without(v, paths, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_without(v, paths, f"{path}[{i}]") for i, v in enumerate(value)]
    return value
