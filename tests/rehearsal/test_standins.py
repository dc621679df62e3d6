"""Stand-in images: names, recipes and apt sources (pure; no engine needed)."""

import pytest

from rehearsal.errors import RehearsalError
from rehearsal.standins import (
    context_files,
    debian_mirrors,
    dockerfile_base_images,
    recipe_for,
    recipe_hash,
    split_ref,
)


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
