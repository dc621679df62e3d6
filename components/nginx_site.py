"""NginxSite: nginx's configuration (and manual TLS certificate) on a volume, reloaded in place.

Why not `uploads` on the nginx container: every field of `upload` is ForceNew
(kreuzwerker/terraform-provider-docker v4.5.0 internal/provider/resource_docker_container.go
:987-1040, "The container is mutated once, and never updated later"), so a changed nginx.conf
or certificate replaced nginx; its host ports are fixed, so the old one went first
(delete-before-replace) and requests were refused meanwhile (7 in 1.4 s on the real engine,
docs/rehearsal.md "Calibration").

Here the configuration lives on the stack's `nginx-site` volume, mounted read-only into nginx,
which runs `nginx -c /etc/nginx/site/current/nginx.conf`. This dynamic resource writes it:
each set of files is a generation, a directory named by the hash of its contents, and
`current` a symlink to the one in use. An update

1. writes the new generation beside the old one (a short-lived helper container of the nginx
   image with the volume mounted; put_archive: works on a remote Docker host too);
2. checks it with `nginx -t -c <generation>/nginx.conf` in the running nginx (its image, its
   mounts), or in the helper when no nginx runs yet; a refusal fails `pulumi up` in one line
   and `current` still names the old generation, which nginx keeps serving;
3. points `current` at it (a new symlink renamed over the old: atomic);
4. `nginx -s reload`: the master re-reads the configuration, starts new workers and lets the
   old ones finish their requests (a graceful reload: nginx docs "Controlling nginx");
5. waits until nginx's health door answers with the new generation's id (the workers that
   answer run it); then keeps the previous generation and removes older ones.

The nginx container's own inputs do not change with its configuration, so it is not replaced.
`diff` compares the generation id (a hash of the files) with the recorded one, so a second
`pulumi up` plans nothing. The files hold the TLS key in manual TLS mode: they are a secret
input, and only the generation id is an output.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shlex
import tarfile
import time
import uuid
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import docker as docker_sdk
import pulumi
import pulumi.dynamic
import requests

from components import dockerhost, render
from components.job import CONNECTION_KEYS, PROVIDER_KEY, connection_props, has_unknown, host_of, plain
from components.settings.provider import DockerAccess

HELPER_LABEL = "django-docker.nginx-site"
"""Label on the helper containers: the run's id, so a leftover can be found."""
RELOAD_TIMEOUT_SECONDS = 20.0
KEEP_GENERATIONS = 2  # the current one and the one before it (to compare, or go back by hand)
INPUT_KEYS = ("files", "modes", "volume", "image", "stack", "labels", "acmeNames", *CONNECTION_KEYS)
OUTPUT_KEYS = ("generation",)
# How the Docker host is reached (as the release jobs: components/job.py) changes nothing here.
NOT_COMPARED = {PROVIDER_KEY, *CONNECTION_KEYS, "files", "modes", *OUTPUT_KEYS}
GENERATION_RE = re.compile(r"^[0-9a-f]{16}$")


class SiteError(Exception):
    """The configuration could not be put in place; one line. nginx serves the previous one."""


# --- pure ------------------------------------------------------------------------------------


def generation_of(files: Mapping[str, str], modes: Mapping[str, str]) -> str:
    """The generation id: a hash of the files and their modes (16 hex)."""
    canonical = json.dumps({"files": dict(files), "modes": dict(modes)}, sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]


def archive(
    generation: str, files: Mapping[str, str], modes: Mapping[str, str], extra: Optional[Mapping[str, str]] = None
) -> bytes:
    """A tar of `<generation>/<path>` for every file (owned by root; mode 0644 unless given),
    plus the generation file nginx.conf includes, and `extra` (not part of the generation:
    the placeholder certificate, key files 0600)."""
    content = {**files, **(extra or {}), render.NGINX_GENERATION_FILE: render.nginx_generation_conf(generation)}
    modes = {**modes, **{path: "0600" for path in (extra or {}) if path.endswith(".key")}}
    buffer = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories = {generation} | {
            f"{generation}/{'/'.join(path.split('/')[:n])}" for path in content for n in range(1, path.count("/") + 1)
        }
        for directory in sorted(directories):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for path, text in sorted(content.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{generation}/{path}")
            info.size, info.mode, info.mtime = len(data), int(modes.get(path, "0644"), 8), now
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def switch_script(generation: str, keep: int = KEEP_GENERATIONS) -> str:
    """Shell run in the helper: `current` -> the generation (rename over: atomic), then every
    generation but the newest `keep` (by the time they were switched to) removed."""
    site, g = render.NGINX_SITE_DIR, shlex.quote(generation)
    return "\n".join(
        [
            "set -eu",
            f"cd {site}",
            f"touch {g}",  # its mtime: when it became current (for pruning)
            f"ln -sfn {g} .current-next",
            "mv -Tf .current-next current",
            # Generation directories are 16 hex characters; nothing else here is touched.
            f"ls -1dt [0-9a-f]*/ 2>/dev/null | sed 's#/$##' | grep -E '^[0-9a-f]{{16}}$' | tail -n +{keep + 1} "
            '| while read -r old; do rm -rf -- "$old"; done',
        ]
    )


REFUSED_MARKER = ".refused"


PLACEHOLDER_DIR = "placeholder"


def helper_script(generation: str, test: Optional[str], placeholder: bool = False) -> str:
    """What the helper runs once the generation is written: with `placeholder` (tlsMode acme)
    the placeholder certificate installed where the ACME client's will be, unless one is there;
    then `test` (when no nginx runs to check it in), then the switch. A generation that was
    refused (its marker: the running nginx refused it, or `test` failed) is removed instead, and
    never becomes current."""
    g = shlex.quote(generation)
    refused = f"{render.NGINX_SITE_DIR}/{g}/{REFUSED_MARKER}"
    staged = f"{render.NGINX_SITE_DIR}/{g}/{PLACEHOLDER_DIR}"
    install = (
        [
            f"if [ ! -s {render.NGINX_ACME_CERT} ]; then mkdir -p {render.NGINX_ACME_DIR} "
            f"&& cp -p {staged}/server.key {render.NGINX_ACME_KEY} && cp -p {staged}/server.crt {render.NGINX_ACME_CERT}; fi",
            f"rm -rf {staged}",
        ]
        if placeholder
        else []
    )
    # Never the one in use (the same files refused by a newer nginx image, say).
    drop = f'[ "$(readlink {render.NGINX_SITE_DIR}/current)" = {g} ] || rm -rf -- {render.NGINX_SITE_DIR}/{g}'
    lines = [f"if [ -e {refused} ]; then rm -f {refused}; {drop}; exit 0; fi", *install]
    if test:
        lines.append(f"if ! {test}; then {drop}; exit 1; fi")
    return "\n".join([*lines, switch_script(generation)])


def placeholder_files(names: list[str]) -> dict[str, str]:
    """A self-signed certificate for `names`, valid a week: what nginx serves on 443 until the
    ACME CA's first certificate is installed (nginx cannot start its TLS server without one)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "django-docker placeholder (waiting for the ACME CA)")]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return {
        f"{PLACEHOLDER_DIR}/server.crt": cert.public_bytes(pem).decode(),
        f"{PLACEHOLDER_DIR}/server.key": key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    }


def _marker(generation: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(f"{generation}/{REFUSED_MARKER}")
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(b""))
    return buffer.getvalue()


def one_line(text: str, limit: int = 400) -> str:
    """nginx's own error lines (the `[emerg]` ones first), on one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if "[emerg]" in line] or [
        line for line in lines if "test failed" not in line and "syntax is ok" not in line
    ]
    joined = " | ".join(lines) or "no output"
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


def site_diff(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """What changed: `files` when the generation differs; any other compared input by name."""
    changed = []
    files, modes = news.get("files"), news.get("modes") or {}
    if (
        has_unknown(files)
        or has_unknown(modes)
        or generation_of(plain(files) or {}, plain(modes)) != olds.get("generation")
    ):
        changed.append("files")
    for key in sorted((set(olds) | set(news)) - NOT_COMPARED):
        if has_unknown(news.get(key)) or plain(olds.get(key)) != plain(news.get(key)):
            changed.append(key)
    return changed


def check_props(props: Mapping[str, Any]) -> None:
    unknown = sorted(set(props) - set(INPUT_KEYS) - set(OUTPUT_KEYS) - {PROVIDER_KEY})
    if unknown:
        raise SiteError(f"NginxSite properties refused: unknown {', '.join(unknown)}")
    for key in ("files", "volume", "image", "stack"):
        if not props.get(key):
            raise SiteError(f"NginxSite property {key} is required")
    if "nginx.conf" not in props["files"]:
        raise SiteError("NginxSite property files has no nginx.conf")
    for path in props["files"]:
        if path.startswith("/") or ".." in path.split("/") or not re.fullmatch(r"[A-Za-z0-9._/-]+", path):
            raise SiteError(f"NginxSite file path {path!r} is not a plain relative path")


# --- the one layer that acts -------------------------------------------------------------------


def _exec(api, cid: str, command: list[str]) -> tuple[int, str]:
    exec_id = api.exec_create(cid, command, stdout=True, stderr=True, user="root")["Id"]
    output = api.exec_start(exec_id).decode("utf-8", errors="replace")
    return int(api.exec_inspect(exec_id)["ExitCode"] or 0), output


def running_nginx(client, stack: str, volume: str) -> Optional[str]:
    """The id of the running nginx container of the stack that mounts this site volume."""
    filters = {"label": [f"{render.LABEL_PREFIX}.stack={stack}", f"{render.LABEL_PREFIX}.service=nginx"]}
    for summary in client.api.containers(filters=filters):  # running only
        if any(m.get("Type") == "volume" and m.get("Name") == volume for m in summary.get("Mounts") or []):
            return summary["Id"]
    return None


def apply(props: Mapping[str, Any]) -> dict:
    """Write, check, switch to and reload the props' generation; its outputs. Raises SiteError."""
    props = plain(props)
    check_props(props)
    files, modes = dict(props["files"]), dict(props.get("modes") or {})
    generation = generation_of(files, modes)
    volume, image, stack = props["volume"], props["image"], props["stack"]
    what = f"nginx-site {generation}"
    try:
        client = dockerhost.connect(host_of(props))
    except (docker_sdk.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SiteError(f"nginx: cannot reach the Docker host: {exc}".splitlines()[0]) from None
    api = client.api
    helper = None
    try:
        nginx = running_nginx(client, stack, volume)
        labels = {item["label"]: item["value"] for item in props.get("labels") or []}
        # Through the image's entrypoint, as nginx itself starts (it prepares what nginx needs:
        # the official image runs its /docker-entrypoint.d scripts for an `nginx` command).
        entrypoint = (api.inspect_image(image).get("Config") or {}).get("Entrypoint") or []
        test = shlex.join([*entrypoint, "nginx", "-t", "-q", "-c", f"{render.NGINX_SITE_DIR}/{generation}/nginx.conf"])
        acme_names = list(props.get("acmeNames") or [])
        # tlsMode acme: the helper installs the placeholder first when no certificate is there,
        # so it checks the configuration itself, after that.
        test_in_nginx = nginx is not None and not acme_names
        script = helper_script(generation, None if test_in_nginx else test, placeholder=bool(acme_names))
        helper = api.create_container(
            image,
            command=["sh", "-c", script],  # through the image's entrypoint, which execs it
            user="root",
            labels={**labels, HELPER_LABEL: uuid.uuid4().hex},
            network_disabled=True,
            host_config=api.create_host_config(
                binds=[f"{volume}:{render.NGINX_SITE_DIR}:rw"], network_mode="none", auto_remove=False
            ),
        )["Id"]
        extra = placeholder_files(acme_names) if acme_names else None
        api.put_archive(helper, render.NGINX_SITE_DIR, archive(generation, files, modes, extra))
        refused = ""
        if test_in_nginx and nginx is not None:
            # The running nginx checks it: its own binary, OpenSSL policy and mounts.
            code, output = _exec(
                api, nginx, ["nginx", "-t", "-q", "-c", f"{render.NGINX_SITE_DIR}/{generation}/nginx.conf"]
            )
            if code != 0:
                refused = one_line(output)
                # The helper then removes the refused generation instead of switching to it.
                api.put_archive(helper, render.NGINX_SITE_DIR, _marker(generation))
        api.start(helper)
        state = api.wait(helper, timeout=60)
        output = api.logs(helper, stdout=True, stderr=True).decode("utf-8", errors="replace")
        if refused:
            raise SiteError(
                f"nginx refused the new configuration (`nginx -t`), so the running one serves on: {refused}"
            )
        if int(state.get("StatusCode", 1)) != 0:
            if not test_in_nginx:
                raise SiteError(f"nginx refused the configuration (`nginx -t`): {one_line(output)}")
            raise SiteError(f"{what}: could not switch to it on volume {volume}: {one_line(output)}")
        if nginx and _served_generation(api, nginx) != generation:
            _reload(api, nginx, generation)
    except (docker_sdk.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SiteError(f"{what}: Docker refused: {exc}".splitlines()[0]) from None
    finally:
        if helper is not None:
            try:
                api.remove_container(helper, force=True)
            except docker_sdk.errors.APIError:
                pass
        client.close()
    # Not the files (secret) nor the connection's PEMs: only what says which generation is served.
    outs = {
        key: value
        for key, value in props.items()
        if key not in (PROVIDER_KEY, "files", "modes", "caMaterial", "certMaterial", "keyMaterial")
    }
    # (nginx, if running, was checked and reloaded above: `nginx` is its id)
    return {**outs, "generation": generation}


def _served_generation(api, nginx: str) -> str:
    """The generation nginx's workers answer the health door with ("" when none answers)."""
    url = f"http://127.0.0.1:{render.NGINX_HEALTH_PORT}{render.NGINX_HEALTH_PATH}"
    _code, output = _exec(api, nginx, ["curl", "--silent", "--include", "--max-time", "2", url])
    header = render.NGINX_GENERATION_HEADER.lower()
    for line in output.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == header:
            return value.strip()
    return ""


def _reload(api, nginx: str, generation: str) -> None:
    """`nginx -s reload`, then wait until the health door answers with the new generation.

    `-c` names the configuration, whose `pid` file says which master to signal (without it
    nginx would read the image's default /etc/nginx/nginx.conf)."""
    code, output = _exec(api, nginx, ["nginx", "-s", "reload", "-c", render.NGINX_SITE_CONF])
    if code != 0:
        raise SiteError(f"nginx -s reload failed: {one_line(output)}")
    deadline = time.monotonic() + RELOAD_TIMEOUT_SECONDS
    seen = ""
    while time.monotonic() < deadline:
        seen = _served_generation(api, nginx)
        if seen == generation:
            return
        time.sleep(0.1)
    log = api.logs(nginx, tail=5, stdout=False, stderr=True).decode("utf-8", errors="replace")
    raise SiteError(
        f"nginx was told to reload but still serves generation {seen or '(none)'} after "
        f"{RELOAD_TIMEOUT_SECONDS:g}s, not {generation}: {one_line(log)}"
    )


# --- maintenance: the other configuration of the generation nginx serves ---------------------


def maintenance_files(files: Mapping[str, str], on: bool) -> dict[str, str]:
    """The generation's files with `nginx.conf` a copy of its maintenance configuration (on) or
    of the site's own (off). Raises SiteError when the generation has not both (written by a
    program from before migrationMode)."""
    source = render.MAINTENANCE_CONF_FILE if on else render.SITE_CONF_FILE
    if source not in files:
        raise SiteError(
            f"the configuration nginx serves has no {source} (written before maintenance mode existed): "
            "run `pulumi up` once to write both configurations"
        )
    return {**files, "nginx.conf": files[source]}


def is_maintenance(files: Mapping[str, str]) -> bool:
    return files.get("nginx.conf") == files.get(render.MAINTENANCE_CONF_FILE) and "nginx.conf" in files


def generation_files(tar_bytes: bytes, generation: str) -> tuple[dict[str, str], dict[str, str]]:
    """(files, modes) of a generation from Docker's archive of its directory (`<generation>/...`):
    what `apply` writes, without the generation file it adds, a refusal marker or the ACME
    placeholder (they are not part of a generation's files)."""
    files: dict[str, str] = {}
    modes: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            head, _, path = member.name.partition("/")
            if head != generation or not path or path in (render.NGINX_GENERATION_FILE, REFUSED_MARKER):
                continue
            if path.startswith(f"{PLACEHOLDER_DIR}/"):
                continue
            extracted = tar.extractfile(member)
            if extracted is None:
                continue
            files[path] = extracted.read().decode()
            if member.mode & 0o777 != 0o644:
                modes[path] = f"{member.mode & 0o777:04o}"
    return files, modes


def served_files(api, nginx: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """(generation, files, modes) of what the running nginx serves: `current` on its site volume."""
    code, output = _exec(api, nginx, ["readlink", f"{render.NGINX_SITE_DIR}/current"])
    generation = output.strip()
    if code != 0 or not GENERATION_RE.match(generation):
        raise SiteError(f"nginx's site volume has no current generation ({one_line(output)})")
    stream, _stat = api.get_archive(nginx, f"{render.NGINX_SITE_DIR}/{generation}")
    files, modes = generation_files(b"".join(stream), generation)
    return generation, files, modes


def switch_maintenance(props: Mapping[str, Any], on: bool) -> tuple[str, bool]:
    """Switch the running nginx of `props`' stack and site volume to its maintenance page (on)
    or back to the site (off), through `apply`: written, `nginx -t`, switched, reloaded, seen
    served. (the generation served now, whether it changed). `props` as an NginxSite's, but
    `files` and `modes`, which are the served generation's."""
    props = plain(props)
    try:
        client = dockerhost.connect(host_of(props))
    except (docker_sdk.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SiteError(f"nginx: cannot reach the Docker host: {exc}".splitlines()[0]) from None
    try:
        nginx = running_nginx(client, props["stack"], props["volume"])
        if nginx is None:
            raise SiteError(f"no running nginx of stack {props['stack']} mounts the site volume {props['volume']}")
        generation, files, modes = served_files(client.api, nginx)
    except (docker_sdk.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SiteError(f"nginx: Docker refused: {exc}".splitlines()[0]) from None
    finally:
        client.close()
    wanted = maintenance_files(files, on)
    if wanted == files:
        return generation, False
    outs = apply({**props, "files": wanted, "modes": modes})
    return outs["generation"], True


class NginxSiteProvider(pulumi.dynamic.ResourceProvider):
    """Writes the configuration in `create`, and again (then reloads nginx) in `update`; never
    replaces. Stateless on purpose: it pickles to a reference to this class."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        unknown = sorted(set(news) - set(INPUT_KEYS) - set(OUTPUT_KEYS) - {PROVIDER_KEY})
        failures = [pulumi.dynamic.CheckFailure(key, "unknown property of an NginxSite") for key in unknown]
        return pulumi.dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        changed = site_diff(olds, news)
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outs = apply(props)
        return pulumi.dynamic.CreateResult(id_=f"{outs['volume']}", outs=outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(outs=apply(news))

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        return pulumi.dynamic.ReadResult(id_, props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # Nothing: the volume goes with the stack, and nginx must not lose its configuration
        # while it still runs.
        return None


@dataclass(frozen=True, kw_only=True)
class NginxSiteArgs:
    files: pulumi.Input[Mapping[str, pulumi.Input[str]]]
    """Relative path -> content; `nginx.conf` is the one nginx runs. Made secret (it may hold the TLS key)."""
    modes: Mapping[str, str]
    """Relative path -> octal mode (`0600` for the key); others 0644. Owner root."""
    volume: pulumi.Input[str]
    """The site volume (nginx mounts it read-only at render.NGINX_SITE_DIR)."""
    acme_names: Optional[list[str]] = None
    """tlsMode acme: the certificate's names (a placeholder for them until the CA's first one)."""
    image: str
    """The nginx image (the helper that writes and checks runs it)."""
    stack: str
    """The stack: which running nginx to check in and reload (with the volume)."""
    labels: list
    """Labels of the helper containers (ContainerLabelArgs)."""
    docker: DockerAccess
    """How the provider reaches the Docker host (as the release jobs); not compared."""


def _connection(access: DockerAccess) -> dict[str, Any]:
    """The connection's properties, named and shaped as a release job's (components.job)."""
    props = connection_props(
        access.host, access.ssh_opts, access.cert_path, access.ca_material, access.cert_material, access.key_material
    )
    return {key: value for key, value in props.items() if value is not None}


class NginxSite(pulumi.dynamic.Resource, module="django-docker", name="NginxSite"):
    """nginx's configuration on its volume (see the module). Type token
    `pulumi-python:dynamic/django-docker:NginxSite`."""

    generation: pulumi.Output[str]
    """The id of the generation nginx serves (a hash of the files)."""

    def __init__(self, name: str, args: NginxSiteArgs, opts: Optional[pulumi.ResourceOptions] = None):
        props = {
            "files": pulumi.Output.secret(args.files),
            "modes": dict(args.modes),
            "volume": args.volume,
            "image": args.image,
            "stack": args.stack,
            "labels": args.labels,
            **_connection(args.docker),
            **({"acmeNames": list(args.acme_names)} if args.acme_names else {}),
            "generation": None,
        }
        super().__init__(NginxSiteProvider(), name, props, opts)
