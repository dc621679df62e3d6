"""Images the plan names but no registry serves: pull them, or build stand-ins.

A stand-in is built from a debootstrapped Debian (bookworm, or forky where
bookworm's package lacks a feature the pinned image has) with Debian's own
package of the same software, and tagged with the exact pinned name, so the plan
runs unedited. Each honours the contract of the official image it replaces
(entrypoint, users, paths, PATH) -- the parts the program and the app rely on.
Stand-ins carry the label ``rehearsal.standin=true`` and a hash of their recipe:
a later run reuses them, and rebuilds one only when its recipe changed. A real
image of the same name (pulled, or the user's own) is never overwritten.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import docker
import docker.errors

from rehearsal.errors import RehearsalError

STANDIN_LABEL = "rehearsal.standin"
RECIPE_LABEL = "rehearsal.standin.recipe"
BASE_REPOSITORY = "rehearsal-standin-base"
SUITE = "bookworm"  # the default suite; the host's apt sources name the mirror for it
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
FILES = Path(__file__).parent / "standin_files"


@dataclass(frozen=True)
class Suite:
    """A Debian suite the stand-ins' bases are debootstrapped from."""

    name: str
    script: str = ""  # debootstrap's suite script, when debootstrap may not know the suite's name
    apt_conf: str = ""  # /etc/apt/apt.conf.d/99rehearsal in the base, if any


SUITES: dict[str, Suite] = {
    "bookworm": Suite("bookworm"),
    # Testing. An older debootstrap (bookworm's 1.0.128) has no script named forky; sid's
    # is the one every Debian suite since jessie links to. Testing's Release files are valid
    # for a week only, and a mirror or proxy that lags makes apt refuse them (here: 19 days
    # past Valid-Until); debootstrap checks the signature, not the date.
    "forky": Suite(
        "forky",
        script="sid",
        apt_conf=(
            "// Debian testing's Release files expire after a week; a lagging mirror must not\n"
            "// stop a stand-in build (the signature is still checked).\n"
            'Acquire::Check-Valid-Until "false";\n'
        ),
    ),
}


def base_image(suite: str = SUITE) -> str:
    return f"{BASE_REPOSITORY}:{suite}"


BASE_IMAGE = base_image(SUITE)


# --------------------------------------------------------------------------- names


def split_ref(ref: str) -> tuple[str, str]:
    """'docker.io/library/postgres:15.14-bookworm' -> ('postgres', '15.14-bookworm')."""
    name, _, digest = ref.partition("@")
    if digest:
        raise RehearsalError(
            f"image {ref!r} is pinned by digest; a stand-in cannot carry that digest, pin a tag instead"
        )
    last = name.rsplit("/", 1)[-1]
    repo, _, tag = last.partition(":")
    return repo, tag or "latest"


def dockerfile_base_images(dockerfile: str, build_args: dict[str, str] | None = None) -> list[str]:
    """The images a Dockerfile's FROM lines name (not earlier stages), ARGs substituted."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    seen_from = False
    for raw in _logical_lines(dockerfile):
        words = raw.split()
        if not words:
            continue
        op = words[0].upper()
        if op == "ARG" and not seen_from and len(words) > 1:
            key, _, default = words[1].partition("=")
            args[key] = (build_args or {}).get(key, default.strip("\"'"))
        elif op == "FROM":
            seen_from = True
            rest = [w for w in words[1:] if not w.startswith("--")]
            if not rest:
                continue
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), rest[0])
            if len(rest) >= 3 and rest[1].upper() == "AS":
                stages.add(rest[2].lower())
            if image.lower() not in stages and image != "scratch" and image not in images:
                images.append(image)
    return images


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


# --------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class Recipe:
    """How to build the stand-in for one official image repository."""

    repository: str
    dockerfile: str
    files: tuple[str, ...]  # names under standin_files/<repository>/
    debian_package: str  # what the stand-in really runs, e.g. "nginx (1.30)"
    supported: Callable[[str], bool]  # tag -> can debian_package stand in for it?
    host_ca: bool = False
    suite: str = SUITE  # the Debian suite of its base image

    @property
    def describe(self) -> str:
        return f"Debian {self.suite}'s {self.debian_package}"


def _python_dockerfile() -> str:
    return f"""FROM {BASE_IMAGE}
# python:*-slim-bookworm: python and pip on PATH (no curl, no compiler), headers
# for building wheels, pip allowed to install system-wide (no PEP 668 marker)
# into /usr/local/lib/python3.11/site-packages (Debian calls it dist-packages).
ENV LANG=C.UTF-8 PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates netbase tzdata \\
        python3 python3-venv python3-dev python3-pip python-is-python3 \\
 && rm -rf /var/lib/apt/lists/* \\
 && rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED \\
 && ln -sf /usr/bin/pip3 /usr/local/bin/pip \\
 && mkdir -p /usr/local/lib/python3.11/dist-packages \\
 && ln -s dist-packages /usr/local/lib/python3.11/site-packages
# This network inspects TLS: trust the host's CA bundle, also after a later
# update-ca-certificates (it re-reads /usr/local/share/ca-certificates).
COPY host-ca-bundle.crt /usr/local/share/ca-certificates/rehearsal-host-bundle.crt
RUN cat /usr/local/share/ca-certificates/rehearsal-host-bundle.crt >> /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
"""


def _postgres_dockerfile() -> str:
    return f"""FROM {BASE_IMAGE}
# postgres:15-bookworm: uid/gid 999, PGDATA, docker-entrypoint.sh that initdb's
# from POSTGRES_* and drops to the postgres user, listens on all interfaces.
RUN groupadd -r postgres --gid=999 \\
 && useradd -r -g postgres --uid=999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres \\
 && mkdir -p /var/lib/postgresql && chown -R postgres:postgres /var/lib/postgresql
RUN apt-get update \\
 && apt-get install -y --no-install-recommends postgresql-common \\
 && sed -ri 's/#(create_main_cluster) .*$/\\1 = false/' /etc/postgresql-common/createcluster.conf \\
 && apt-get install -y --no-install-recommends postgresql-15 \\
 && rm -rf /var/lib/apt/lists/* \\
 && sed -ri "s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!" /usr/share/postgresql/15/postgresql.conf.sample \\
 && mkdir -p /var/run/postgresql /docker-entrypoint-initdb.d \\
 && chown -R postgres:postgres /var/run/postgresql && chmod 3777 /var/run/postgresql
ENV LANG=C.UTF-8 PATH=$PATH:/usr/lib/postgresql/15/bin PGDATA=/var/lib/postgresql/data
RUN mkdir -p "$PGDATA" && chown -R postgres:postgres "$PGDATA" && chmod 1777 "$PGDATA"
VOLUME /var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
"""


def _redis_dockerfile() -> str:
    return f"""FROM {BASE_IMAGE}
# redis:7-bookworm: uid/gid 999, /data, entrypoint that drops to the redis user.
RUN groupadd -r -g 999 redis && useradd -r -g redis -u 999 redis
RUN apt-get update \\
 && apt-get install -y --no-install-recommends redis-server redis-tools \\
 && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /data && chown redis:redis /data
VOLUME /data
WORKDIR /data
COPY docker-entrypoint.sh /usr/local/bin/
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 6379
CMD ["redis-server"]
"""


# The nginx stand-in comes from Debian forky (testing): the pinned image's config uses
# `server ... resolve` in an upstream, open source only since nginx 1.27.3, which
# bookworm's 1.22 rejects. The build fails if forky no longer carries this series.
NGINX_SERIES = "1.30"
NGINX_SUITE = "forky"


def _nginx_dockerfile() -> str:
    series = re.escape(NGINX_SERIES)
    return f"""FROM {base_image(NGINX_SUITE)}
# nginx:1.x-bookworm: user nginx (101), the official nginx.conf and default
# server, logs to stdout/stderr, temp files under /var/cache/nginx, curl.
RUN groupadd --system --gid 101 nginx \\
 && useradd --system --gid nginx --no-create-home --home /nonexistent --shell /bin/false --uid 101 nginx
RUN apt-get update \\
 && apt-get install -y --no-install-recommends nginx curl ca-certificates \\
 && rm -rf /var/lib/apt/lists/* \\
 && {{ nginx -v 2>&1 | grep -q 'nginx/{series}[.]' \\
      || {{ echo "Debian {NGINX_SUITE} no longer carries nginx {NGINX_SERIES}: $(nginx -v 2>&1); update rehearsal/images/standins.py" >&2; exit 1; }}; }} \\
 && rm -rf /etc/nginx/sites-enabled /etc/nginx/sites-available /etc/nginx/conf.d/* /var/lib/nginx \\
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log \\
 && mkdir -p /var/cache/nginx /var/lib/nginx /docker-entrypoint.d \\
 && ln -s /var/cache/nginx/client_temp /var/lib/nginx/body \\
 && ln -s /var/cache/nginx/proxy_temp /var/lib/nginx/proxy \\
 && ln -s /var/cache/nginx/fastcgi_temp /var/lib/nginx/fastcgi \\
 && ln -s /var/cache/nginx/uwsgi_temp /var/lib/nginx/uwsgi \\
 && ln -s /var/cache/nginx/scgi_temp /var/lib/nginx/scgi
COPY nginx.conf /etc/nginx/nginx.conf
COPY default.conf /etc/nginx/conf.d/default.conf
COPY docker-entrypoint.sh /docker-entrypoint.sh
ENTRYPOINT ["/docker-entrypoint.sh"]
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
"""


def _lego_dockerfile() -> str:
    return f"""FROM {BASE_IMAGE}
# goacme/lego:v4.x: the lego binary at /lego (the entrypoint), a POSIX shell with grep, sed,
# cmp, flock (busybox in the official alpine image), CA certificates. Debian's lego is 4.9.1: it
# has every flag the program uses (run, renew --days --no-random-sleep, --http.webroot, --path,
# LEGO_CA_CERTIFICATES); the newer 4.x it stands for add ARI and options the program does not use.
RUN apt-get update \\
 && apt-get install -y --no-install-recommends lego ca-certificates diffutils \\
 && rm -rf /var/lib/apt/lists/* \\
 && ln -s /usr/bin/lego /lego
ENTRYPOINT ["/lego"]
EXPOSE 80
"""


def _pebble_dockerfile() -> str:
    return f"""FROM {BASE_IMAGE}
# letsencrypt/pebble (the rehearsal's own ACME CA, not a pinned image of the program): Debian's
# pebble 2.4.0 and pebble-challtestsrv; the rehearsal gives it its config and certificate.
RUN apt-get update \\
 && apt-get install -y --no-install-recommends pebble ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/usr/bin/pebble"]
"""


_NGINX_TAG = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:-(.+))?")


def nginx_supported(tag: str) -> bool:
    """Can Debian's nginx 1.30 stand in for this official tag?

    Only releases whose feature set it has and no more: from 1.27.3 (upstream `resolve`
    in open source) to 1.30.x. An older pin would pass configs its real image rejects, a
    newer one may use what 1.30 lacks. Debian flavours only (no alpine, perl, otel).
    """
    match = _NGINX_TAG.fullmatch(tag)
    if not match or (match.group(4) or "bookworm") not in ("bookworm", "trixie"):
        return False
    major, minor = int(match.group(1)), int(match.group(2))
    patch = int(match.group(3)) if match.group(3) is not None else None  # "1.27": its newest patch
    series = tuple(int(part) for part in NGINX_SERIES.split("."))
    if (major, minor) > series:
        return False
    return (major, minor, patch if patch is not None else 10**6) >= (1, 27, 3)


RECIPES: dict[str, Recipe] = {
    "python": Recipe(
        "python", _python_dockerfile(), (), "python3 (3.11)", lambda tag: tag.startswith("3.11"), host_ca=True
    ),
    "postgres": Recipe(
        "postgres",
        _postgres_dockerfile(),
        ("docker-entrypoint.sh",),
        "postgresql-15",
        lambda tag: tag.split(".")[0].split("-")[0] == "15",
    ),
    "redis": Recipe(
        "redis",
        _redis_dockerfile(),
        ("docker-entrypoint.sh",),
        "redis-server (7.0)",
        lambda tag: tag.split(".")[0] == "7",
    ),
    "nginx": Recipe(
        "nginx",
        _nginx_dockerfile(),
        ("docker-entrypoint.sh", "nginx.conf", "default.conf"),
        f"nginx ({NGINX_SERIES})",
        nginx_supported,
        suite=NGINX_SUITE,
    ),
    "lego": Recipe(
        "lego", _lego_dockerfile(), (), "lego (4.9.1)", lambda tag: re.fullmatch(r"v4\.\d+\.\d+", tag) is not None
    ),
    "pebble": Recipe("pebble", _pebble_dockerfile(), (), "pebble (2.4.0)", lambda tag: tag.startswith("v2.")),
}


def recipe_for(ref: str) -> Recipe:
    repo, tag = split_ref(ref)
    recipe = RECIPES.get(repo)
    if recipe is None:
        raise RehearsalError(
            f"no registry answers for image {ref!r} and the rehearsal has no stand-in recipe "
            f"for {repo!r} (it has: {', '.join(sorted(RECIPES))})"
        )
    if not recipe.supported(tag):
        raise RehearsalError(
            f"image {ref!r}: the stand-in recipe for {repo!r} installs {recipe.describe}, "
            f"which cannot stand in for tag {tag!r}"
        )
    return recipe


def context_files(recipe: Recipe) -> dict[str, bytes]:
    """Every file of the recipe's build context, by name."""
    files = {"Dockerfile": recipe.dockerfile.encode()}
    for name in recipe.files:
        files[name] = (FILES / recipe.repository / name).read_bytes()
    if recipe.host_ca:
        if not HOST_CA_BUNDLE.is_file():
            raise RehearsalError(f"the python stand-in needs the host's CA bundle at {HOST_CA_BUNDLE}")
        files["host-ca-bundle.crt"] = HOST_CA_BUNDLE.read_bytes()
    return files


def recipe_hash(files: dict[str, bytes], base_hash: str) -> str:
    digest = hashlib.sha256(base_hash.encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- apt sources


def debian_mirrors(sources_dir: Path = Path("/etc/apt")) -> tuple[str, str]:
    """(main mirror, security mirror) from apt's sources, for Debian's defaults as fallback."""
    mirror, security = "", ""
    texts = []
    for path in [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*"))]:
        if path.is_file():
            texts.append((path.suffix == ".sources", path.read_text(errors="replace")))
    for deb822, text in texts:
        for uri, suites in _deb822_entries(text) if deb822 else _one_line_entries(text):
            if not mirror and SUITE in suites:
                mirror = uri
            if not security and f"{SUITE}-security" in suites:
                security = uri
    return (
        mirror or "http://deb.debian.org/debian",
        security or "http://deb.debian.org/debian-security",
    )


def _deb822_entries(text: str):
    for stanza in re.split(r"\n\s*\n", text):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []):
            for uri in fields.get("uris", []):
                yield uri.rstrip("/"), fields.get("suites", [])


def _one_line_entries(text: str):
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line).split()
        if len(words) >= 3 and words[0] == "deb":
            yield words[1].rstrip("/"), [words[2]]


def base_recipe(mirror: str, security: str, suite: str = SUITE) -> tuple[str, str]:
    """(sources file for the image, hash of everything the base depends on)."""
    spec = SUITES[suite]
    sources = (
        f"Types: deb\nURIs: {mirror}\nSuites: {suite} {suite}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {security}\nSuites: {suite}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    recipe = f"debootstrap --variant=minbase {suite} {mirror}\n{sources}policy-rc.d=101\nv1"
    if spec.script or spec.apt_conf:  # (bookworm's recipe text predates these: keep its hash)
        recipe += f"\nscript={spec.script}\napt.conf={spec.apt_conf}"
    return sources, hashlib.sha256(recipe.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- engine side


@dataclass
class Outcome:
    ref: str
    source: str  # "local" | "pulled" | "stand-in (cached)" | "stand-in (built)"
    detail: str = ""


def _labels(image) -> dict[str, str]:
    return (image.attrs.get("Config") or {}).get("Labels") or {}


def _local(client: docker.DockerClient, ref: str):
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def ensure_images(
    client: docker.DockerClient, refs: list[str], say: Callable[[str], None], pull_timeout: int = 120
) -> list[Outcome]:
    """Make every image in refs present on the engine; report where each came from."""
    outcomes: list[Outcome] = []
    mirror, security = debian_mirrors()
    for ref in refs:
        image = _local(client, ref)
        if image is not None and _labels(image).get(STANDIN_LABEL) != "true":
            outcomes.append(Outcome(ref, "local", "a real image already on the engine"))
            continue
        if image is not None:
            recipe = recipe_for(ref)
        else:
            pulled, why = _try_pull(ref, pull_timeout)
            if pulled:
                outcomes.append(Outcome(ref, "pulled"))
                continue
            recipe = recipe_for(ref)
            say(f"  {ref}: no registry answers ({why}); using a stand-in")
        files = context_files(recipe)
        _, base_hash = base_recipe(mirror, security, recipe.suite)
        want = recipe_hash(files, base_hash)
        if image is not None and _labels(image).get(RECIPE_LABEL) == want:
            outcomes.append(Outcome(ref, "stand-in (cached)", recipe.describe))
            continue
        _ensure_base(client, mirror, security, say, recipe.suite)
        say(f"  building stand-in {ref} from {recipe.describe}")
        build_context(client, files, ref, {STANDIN_LABEL: "true", RECIPE_LABEL: want})
        outcomes.append(Outcome(ref, "stand-in (built)", recipe.describe))
    return outcomes


def _try_pull(ref: str, timeout: int) -> tuple[bool, str]:
    repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    client = docker.from_env(timeout=timeout)
    try:
        client.images.pull(repo, tag=tag)
        return True, ""
    except (docker.errors.APIError, docker.errors.DockerException, OSError) as error:
        text = str(getattr(error, "explanation", None) or error)
        return False, text.splitlines()[0][:120]
    finally:
        client.close()


def _ensure_base(client, mirror: str, security: str, say, suite: str = SUITE) -> None:
    spec = SUITES[suite]
    sources, base_hash = base_recipe(mirror, security, suite)
    name = base_image(suite)
    image = _local(client, name)
    if image is not None and _labels(image).get(RECIPE_LABEL) == base_hash:
        return
    if os.geteuid() != 0:
        raise RehearsalError("building the stand-ins' Debian base needs root (debootstrap): run as root")
    if shutil.which("debootstrap") is None:
        raise RehearsalError("building the stand-ins' Debian base needs debootstrap: apt-get install debootstrap")
    say(f"  debootstrapping Debian {suite} (minbase) from {mirror} for the stand-ins' base")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rehearsal-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        run = subprocess.run(
            ["debootstrap", "--variant=minbase", suite, str(root), mirror, *([spec.script] if spec.script else [])],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            tail = "\n".join((run.stdout + run.stderr).splitlines()[-15:])
            raise RehearsalError(f"debootstrap failed (exit {run.returncode}):\n{tail}")
        # Like Debian's official images: deb822 sources, no daemons started by
        # package scripts, no package caches.
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        (root / "etc/apt/sources.list.d/debian.sources").write_text(sources)
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        if spec.apt_conf:
            (root / "etc/apt/apt.conf.d/99rehearsal").write_text(spec.apt_conf)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / junk).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(
            [
                "tar",
                "--numeric-owner",
                "--exclude=./dev/*",
                "--exclude=./proc/*",
                "--exclude=./sys/*",
                "-C",
                str(root),
                "-cf",
                str(tarball),
                ".",
            ],
            check=True,
        )
        repository, tag = name.split(":")
        client.api.import_image_from_file(
            str(tarball),
            repository=repository,
            tag=tag,
            changes=[
                f"LABEL {STANDIN_LABEL}=true {RECIPE_LABEL}={base_hash}",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                'CMD ["bash"]',
            ],
        )
    say(f"  base image {name} ready in {time.monotonic() - started:.0f}s")


def build_context(client, files: dict[str, bytes], tag: str, labels: dict[str, str]) -> str:
    """Build an in-memory context with the classic builder; return the image id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return stream_build(client, tag, fileobj=buffer, custom_context=True, labels=labels)


def stream_build(client, tag: str, **kwargs) -> str:
    """Run a classic-builder build; on failure raise with the build's last lines."""
    log: list[str] = []
    image_id = ""
    for chunk in client.api.build(tag=tag, rm=True, forcerm=True, pull=False, decode=True, **kwargs):
        if "stream" in chunk:
            log.extend(chunk["stream"].rstrip("\n").splitlines())
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        if "error" in chunk:
            tail = "\n".join(["    " + line for line in log[-25:]])
            raise RehearsalError(f"building {tag} failed: {chunk['error'].strip()}\n{tail}")
    if not image_id:
        image_id = client.images.get(tag).id
    return image_id
