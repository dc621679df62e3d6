"""Stand-in images: names, recipes and apt sources (pure; no engine needed), and, on an
engine (marked docker), the pinned nginx image's contract and `nginx -t` of the rendered conf."""

import pytest

from rehearsal.errors import RehearsalError
from rehearsal.images.standins import (
    RECIPES,
    SUITES,
    base_recipe,
    context_files,
    debian_mirrors,
    dockerfile_base_images,
    recipe_for,
    recipe_hash,
    split_ref,
)
from tests.nginx_check import APP_PATHS, nginx_image  # noqa: F401  (a fixture)


def test_split_ref_strips_registry_and_library():
    assert split_ref("postgres:15.14-bookworm") == ("postgres", "15.14-bookworm")
    assert split_ref("docker.io/library/nginx:1.28.0-bookworm") == ("nginx", "1.28.0-bookworm")
    assert split_ref("redis") == ("redis", "latest")


def test_split_ref_refuses_digest_pins():
    with pytest.raises(RehearsalError, match="pinned by digest"):
        split_ref("postgres@sha256:" + "0" * 64)


def test_dockerfile_base_images_skips_stages_and_substitutes_args():
    dockerfile = """
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# a comment
FROM ${PYTHON_IMAGE} AS builder
RUN pip wheel \\
    -r requirements.txt
FROM --platform=linux/amd64 $PYTHON_IMAGE
COPY --from=builder /wheels /wheels
FROM builder AS test
"""
    assert dockerfile_base_images(dockerfile) == ["python:3.11.14-slim-bookworm"]
    assert dockerfile_base_images(dockerfile, {"PYTHON_IMAGE": "python:3.11.9-slim"}) == ["python:3.11.9-slim"]


def test_recipe_by_repository_name():
    assert recipe_for("docker.io/library/postgres:15.14-bookworm").repository == "postgres"
    assert recipe_for("python:3.11.14-slim-bookworm").host_ca


def test_image_without_recipe_is_a_clear_error():
    with pytest.raises(RehearsalError, match="no stand-in recipe for 'memcached'"):
        recipe_for("memcached:1.6")


def test_version_debian_cannot_stand_in_for_is_refused():
    with pytest.raises(RehearsalError, match="postgresql-15.*'16.4'"):
        recipe_for("postgres:16.4")


def test_recipe_hash_changes_with_any_file_or_the_base():
    files = context_files(recipe_for("redis:7.4.5-bookworm"))
    assert set(files) == {"Dockerfile", "docker-entrypoint.sh"}
    same = recipe_hash(files, "base1")
    assert recipe_hash(dict(files), "base1") == same
    assert recipe_hash({**files, "Dockerfile": b"x"}, "base1") != same
    assert recipe_hash(files, "base2") != same


def test_debian_mirrors_from_deb822_and_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://sec.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert debian_mirrors(tmp_path) == ("http://mirror.example/debian", "http://sec.example/debian-security")
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://one.example/debian bookworm main\n")
    assert debian_mirrors(tmp_path) == ("http://one.example/debian", "http://deb.debian.org/debian-security")


def test_python_postgres_and_redis_stay_on_bookworm():
    for repository in ("python", "postgres", "redis"):
        recipe = RECIPES[repository]
        assert recipe.suite == "bookworm"
        assert recipe.dockerfile.startswith("FROM rehearsal-standin-base:bookworm\n")
        assert recipe.describe.startswith("Debian bookworm's ")


def test_nginx_stands_in_from_forky_with_the_official_contract():
    recipe = recipe_for("docker.io/library/nginx:1.28.0-bookworm")
    dockerfile = recipe.dockerfile

    assert (recipe.suite, recipe.debian_package) == ("forky", "nginx (1.30)")
    assert recipe.describe == "Debian forky's nginx (1.30)"
    assert dockerfile.startswith("FROM rehearsal-standin-base:forky\n")
    assert "--uid 101 nginx" in dockerfile and "--gid 101 nginx" in dockerfile
    assert "ln -sf /dev/stdout /var/log/nginx/access.log" in dockerfile
    assert "ln -sf /dev/stderr /var/log/nginx/error.log" in dockerfile
    assert " curl " in dockerfile
    assert "STOPSIGNAL SIGQUIT\n" in dockerfile
    assert 'CMD ["nginx", "-g", "daemon off;"]' in dockerfile
    # The build fails rather than run another series than debian_package says.
    assert "grep -q 'nginx/1\\.30[.]'" in dockerfile
    assert set(context_files(recipe)) == {"Dockerfile", "docker-entrypoint.sh", "nginx.conf", "default.conf"}


@pytest.mark.parametrize(
    "tag", ["1.28.0-bookworm", "1.28.0", "1.28", "1.27.3", "1.27", "1.29.1-trixie", "1.30.0", "1.30"]
)
def test_nginx_tags_with_upstream_resolve_up_to_1_30_are_stood_in_for(tag):
    assert recipe_for(f"nginx:{tag}").repository == "nginx"


@pytest.mark.parametrize(
    "tag",
    [
        "1.26.3-bookworm",  # no `resolve`: the stand-in would pass configs the real image rejects
        "1.27.2",
        "1.22.1",
        "1.31.0",  # newer than the stand-in
        "2.0.0",
        "1.28.0-alpine",  # not a Debian image
        "1.28.0-bookworm-perl",  # modules the stand-in lacks
        "latest",
        "mainline",
    ],
)
def test_nginx_tags_the_forky_stand_in_cannot_honour_are_refused(tag):
    with pytest.raises(RehearsalError, match=rf"Debian forky's nginx \(1\.30\), which cannot stand in for tag '{tag}'"):
        recipe_for(f"nginx:{tag}")


def test_base_recipes_per_suite():
    mirror, security = "http://m.example/debian", "http://s.example/debian-security"
    bookworm_sources, bookworm_hash = base_recipe(mirror, security)
    forky_sources, forky_hash = base_recipe(mirror, security, "forky")

    # bookworm's hash is what it was before there were suites: its cached base stays valid.
    assert base_recipe(mirror, security, "bookworm") == (bookworm_sources, bookworm_hash)
    assert bookworm_hash == "0529ec765807f1d3"
    assert "Suites: forky forky-updates\n" in forky_sources and "Suites: forky-security\n" in forky_sources
    assert forky_hash != bookworm_hash
    # bookworm's debootstrap (1.0.128) has no forky script; forky's Release may be stale.
    assert SUITES["forky"].script == "sid"
    assert 'Acquire::Check-Valid-Until "false";' in SUITES["forky"].apt_conf
    assert SUITES["bookworm"].script == SUITES["bookworm"].apt_conf == ""


# --------------------------------------------------------------------------- on the engine


@pytest.mark.docker
def test_pinned_nginx_image_honours_the_official_contract(nginx_image):
    from tests.nginx_check import docker_client

    client = docker_client()
    try:
        config = client.images.get(nginx_image).attrs["Config"]
        output = (
            client.containers.run(
                nginx_image,
                [
                    "sh",
                    "-c",
                    "nginx -v 2>&1; id -u nginx; id -g nginx; command -v curl; "
                    "readlink /var/log/nginx/access.log /var/log/nginx/error.log",
                ],
                entrypoint=[],
                remove=True,
                network_mode="none",
            )
            .decode()
            .split("\n")
        )
    finally:
        client.close()

    assert config["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert config["StopSignal"] == "SIGQUIT"
    version = tuple(int(part) for part in output[0].split("nginx/")[1].split()[0].split("."))
    assert version >= (1, 27, 3)  # upstream `server ... resolve`
    assert output[1:6] == ["101", "101", "/usr/bin/curl", "/dev/stdout", "/dev/stderr"]


@pytest.mark.docker
@pytest.mark.parametrize("tls", [False, True])
def test_rendered_nginx_conf_passes_nginx_t_unedited(nginx_image, tls, tmp_path):
    import subprocess

    from components import render
    from tests.nginx_check import nginx_test

    files = {}
    if tls:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=example.test",
                "-days",
                "2",
                "-keyout",
                tmp_path / "key",
                "-out",
                tmp_path / "crt",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        files = {
            render.NGINX_TLS_CERT: (tmp_path / "crt").read_bytes(),
            render.NGINX_TLS_KEY: ((tmp_path / "key").read_bytes(), 0o600),
        }
    conf = render.nginx_conf(
        **APP_PATHS,
        server_name="example.test",
        client_max_body_size="10m",
        tls=tls,
        public_https_port=8443,
        hsts_seconds=3600,
    )

    result = nginx_test(conf, files, image=nginx_image)

    assert result.returncode == 0, result.output
    assert "test is successful" in result.output


@pytest.mark.docker
def test_nginx_t_reports_a_broken_conf(nginx_image):
    from tests.nginx_check import nginx_test

    result = nginx_test("events {}\nhttp { upstream u { server web:8000 resolve bogus; } }\n", image=nginx_image)

    assert result.returncode != 0
    assert 'invalid parameter "bogus"' in result.output
