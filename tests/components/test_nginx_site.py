"""NginxSite: its pure parts, then the provider against a real nginx on the local engine."""

from __future__ import annotations

import io
import tarfile
import time
import uuid

import pytest

from components import nginx_site, render
from components.nginx_site import NginxSiteProvider, SiteError, archive, generation_of, one_line, site_diff
from tests.nginx_check import docker_client, nginx_image  # noqa: F401 (nginx_image: fixture)


def conf(body_size: str = "10m") -> str:
    return render.nginx_conf(
        server_name="example.com",
        client_max_body_size=body_size,
        tls=False,
        generation_file=render.NGINX_GENERATION_FILE,
        app_port=8000,
        static_url="/static/",
        media_url="/media/",
        health_path="/health/",
    )


def test_the_generation_is_a_hash_of_the_files_and_modes():
    files = {"nginx.conf": "a", "tls/server.key": "k"}
    same = generation_of(dict(reversed(list(files.items()))), {})
    assert generation_of(files, {}) == same and len(same) == 16
    assert generation_of(files, {"tls/server.key": "0600"}) != same
    assert generation_of({**files, "nginx.conf": "b"}, {}) != same


def test_the_archive_holds_the_generation_with_its_modes_and_its_generation_file():
    generation = generation_of({"nginx.conf": "x", "tls/server.key": "k"}, {"tls/server.key": "0600"})
    data = archive(generation, {"nginx.conf": "x", "tls/server.key": "k"}, {"tls/server.key": "0600"})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members[generation].isdir() and members[f"{generation}/tls"].isdir()
        assert oct(members[f"{generation}/tls/server.key"].mode) == "0o600"
        assert oct(members[f"{generation}/nginx.conf"].mode) == "0o644"
        assert (members[f"{generation}/tls/server.key"].uid, members[f"{generation}/tls/server.key"].gid) == (0, 0)
        text = tar.extractfile(f"{generation}/{render.NGINX_GENERATION_FILE}").read().decode()
    assert f'default "{generation}";' in text


def test_diff_compares_the_generation_not_the_secret_files():
    files = {"nginx.conf": "x"}
    olds = {"generation": generation_of(files, {}), "volume": "v", "image": "nginx:1", "stack": "s"}
    news = {"files": files, "modes": {}, "volume": "v", "image": "nginx:1", "stack": "s", "dockerHost": "ssh://x"}
    assert site_diff(olds, news) == []  # where the host is reached from is no change
    assert site_diff(olds, {**news, "files": {"nginx.conf": "y"}}) == ["files"]
    assert site_diff(olds, {**news, "volume": "w"}) == ["volume"]


def test_one_line_keeps_nginx_s_emerg_lines():
    output = (
        'nginx: [emerg] unknown directive "bogus" in /etc/nginx/site/abc/nginx.conf:3\n'
        "nginx: configuration file /etc/nginx/site/abc/nginx.conf test failed\n"
    )
    assert one_line(output) == 'nginx: [emerg] unknown directive "bogus" in /etc/nginx/site/abc/nginx.conf:3'


def test_unsafe_paths_are_refused():
    for path in ("/etc/passwd", "../x", "a/../../b", "a b"):
        with pytest.raises(SiteError, match="not a plain relative path"):
            nginx_site.check_props({"files": {"nginx.conf": "x", path: "y"}, "volume": "v", "image": "i", "stack": "s"})


# --- on the engine ------------------------------------------------------------------------------


@pytest.fixture
def engine(nginx_image):  # noqa: F811 (a fixture)
    client = docker_client()
    stack = f"test-site-{uuid.uuid4().hex[:8]}"
    volume = client.volumes.create(name=f"{stack}-site").name
    created = []
    yield client, stack, volume, created
    for cid in created:
        client.api.remove_container(cid, force=True)
    client.api.remove_volume(volume, force=True)
    client.close()


def props(stack: str, volume: str, image: str, text: str) -> dict:
    return {"files": {"nginx.conf": text}, "modes": {}, "volume": volume, "image": image, "stack": stack}


def start_nginx(client, stack: str, volume: str, image: str) -> str:
    cid = client.api.create_container(
        image,
        command=render.nginx_command(),
        labels=render.labels(service="nginx", role="accessory", stack=stack),
        host_config=client.api.create_host_config(binds=[f"{volume}:{render.NGINX_SITE_DIR}:ro"]),
    )["Id"]
    client.api.start(cid)
    for _ in range(50):
        if nginx_site._served_generation(client.api, cid):
            return cid
        time.sleep(0.1)
    raise AssertionError(client.api.logs(cid).decode())


@pytest.mark.docker
def test_create_then_update_reloads_the_same_nginx_and_a_refused_config_changes_nothing(engine, nginx_image):  # noqa: F811
    client, stack, volume, created = engine
    provider = NginxSiteProvider()
    first = provider.create(props(stack, volume, nginx_image, conf("10m"))).outs
    cid = start_nginx(client, stack, volume, nginx_image)
    created.append(cid)
    assert nginx_site._served_generation(client.api, cid) == first["generation"]
    master = client.api.top(cid)["Processes"]

    second = provider.update("x", first, props(stack, volume, nginx_image, conf("20m"))).outs
    assert second["generation"] != first["generation"]
    assert nginx_site._served_generation(client.api, cid) == second["generation"]  # the same container
    assert client.api.inspect_container(cid)["State"]["Running"]
    masters = [p for p in client.api.top(cid)["Processes"] if "master" in " ".join(p)]
    assert masters and masters[0][1] == [p for p in master if "master" in " ".join(p)][0][1]  # not restarted

    bad = conf("30m").replace("client_max_body_size 30m;", "client_max_body_size 30m;\n    bogus_directive on;")
    with pytest.raises(SiteError) as refused:
        provider.update("x", second, props(stack, volume, nginx_image, bad))
    message = str(refused.value)
    assert "\n" not in message and 'unknown directive "bogus_directive"' in message and "serves on" in message
    assert nginx_site._served_generation(client.api, cid) == second["generation"]
    current = client.api.exec_create(cid, ["readlink", f"{render.NGINX_SITE_DIR}/current"])["Id"]
    assert client.api.exec_start(current).decode().strip() == second["generation"]

    # Only the current generation and the one before it are kept.
    third = provider.update("x", second, props(stack, volume, nginx_image, conf("40m"))).outs
    listing = client.api.exec_create(cid, ["ls", "-1", render.NGINX_SITE_DIR])["Id"]
    kept = sorted(client.api.exec_start(listing).decode().split())
    assert kept == sorted(["current", second["generation"], third["generation"]])


@pytest.mark.docker
def test_a_first_configuration_nginx_refuses_fails_the_create_in_one_line(engine, nginx_image):  # noqa: F811
    client, stack, volume, _ = engine
    with pytest.raises(SiteError) as refused:
        NginxSiteProvider().create(props(stack, volume, nginx_image, "events {}\nhttp { bogus on; }\n"))
    assert "\n" not in str(refused.value) and 'unknown directive "bogus"' in str(refused.value)


@pytest.mark.docker
def test_acme_mode_installs_a_placeholder_once_and_never_over_the_cas_certificate(engine, nginx_image):  # noqa: F811
    client, stack, volume, created = engine
    acme_conf = render.nginx_conf(
        server_name="shop.dev",
        client_max_body_size="10m",
        tls=True,
        generation_file=render.NGINX_GENERATION_FILE,
        tls_cert_path=render.NGINX_ACME_CERT,
        tls_key_path=render.NGINX_ACME_KEY,
        acme_webroot=render.ACME_WEBROOT,
        app_port=8000,
        static_url="/static/",
        media_url=None,
        health_path="/health/",
    )
    provider = NginxSiteProvider()
    first = provider.create({**props(stack, volume, nginx_image, acme_conf), "acmeNames": ["shop.dev"]}).outs
    cid = start_nginx(client, stack, volume, nginx_image)
    created.append(cid)

    def read(path: str) -> str:
        exec_id = client.api.exec_create(cid, ["cat", path])["Id"]
        return client.api.exec_start(exec_id).decode()

    placeholder = read(render.NGINX_ACME_CERT)
    assert "BEGIN CERTIFICATE" in placeholder
    mode = client.api.exec_start(client.api.exec_create(cid, ["stat", "-c", "%a", render.NGINX_ACME_KEY])["Id"])
    assert mode.decode().strip() == "600"
    # A configuration change later keeps the certificate that is there (the CA's, by then).
    second = provider.update(
        "x", first, {**props(stack, volume, nginx_image, acme_conf.replace("10m", "20m")), "acmeNames": ["shop.dev"]}
    ).outs
    assert read(render.NGINX_ACME_CERT) == placeholder
    assert nginx_site._served_generation(client.api, cid) == second["generation"]


# --- maintenance: the other configuration of the served generation --------------------------------


def paused(retry_after: int = 30) -> str:
    return render.nginx_conf(
        server_name="example.com",
        client_max_body_size="10m",
        tls=False,
        generation_file=render.NGINX_GENERATION_FILE,
        app_port=8000,
        static_url="/static/",
        media_url="/media/",
        health_path="/health/",
        maintenance_retry_after=retry_after,
    )


def both(on: bool = False) -> dict:
    return {
        "nginx.conf": paused() if on else conf(),
        render.SITE_CONF_FILE: conf(),
        render.MAINTENANCE_CONF_FILE: paused(),
    }


def test_maintenance_files_swap_nginx_conf_and_switch_back_to_the_same_generation():
    site = both()
    on = nginx_site.maintenance_files(site, True)
    assert on["nginx.conf"] == paused() and nginx_site.is_maintenance(on)
    assert not nginx_site.is_maintenance(site)
    off = nginx_site.maintenance_files(on, False)
    # Back to exactly the site's files: the generation the program's NginxSite recorded.
    assert off == site and generation_of(off, {}) == generation_of(site, {})
    assert generation_of(on, {}) != generation_of(site, {})


def test_a_generation_without_both_configurations_is_refused_in_one_line():
    with pytest.raises(SiteError, match="has no maintenance.conf .*run `pulumi up` once"):
        nginx_site.maintenance_files({"nginx.conf": conf()}, True)


def test_generation_files_read_back_what_archive_wrote_without_what_apply_adds():
    files = {**both(), "tls/server.key": "k"}
    modes = {"tls/server.key": "0600"}
    generation = generation_of(files, modes)
    data = archive(generation, files, modes, extra={"placeholder/server.key": "p"})
    read, read_modes = nginx_site.generation_files(data, generation)
    assert read == files and read_modes == modes
    assert generation_of(read, read_modes) == generation


@pytest.mark.docker
def test_maintenance_on_and_off_reload_the_same_nginx(engine, nginx_image):  # noqa: F811
    client, stack, volume, created = engine
    first = NginxSiteProvider().create({**props(stack, volume, nginx_image, conf()), "files": both()}).outs
    cid = start_nginx(client, stack, volume, nginx_image)
    created.append(cid)
    base = {"volume": volume, "image": nginx_image, "stack": stack}

    def get(path: str) -> str:
        _code, out = nginx_site._exec(
            client.api, cid, ["curl", "-s", "-i", "--max-time", "3", f"http://127.0.0.1{path}"]
        )
        return out

    generation, changed = nginx_site.switch_maintenance(base, True)
    assert changed and generation != first["generation"]
    answer = get("/health/")
    assert answer.startswith("HTTP/1.1 503") and "Retry-After: 30" in answer and "Down for maintenance" in answer
    assert nginx_site.switch_maintenance(base, True) == (generation, False)  # already on: nothing done
    back, changed = nginx_site.switch_maintenance(base, False)
    assert changed and back == first["generation"]
    assert not get("/health/").startswith("HTTP/1.1 503")  # proxied again (no app here: 502)
    # The same nginx all along: reloaded, never replaced.
    assert client.api.inspect_container(cid)["State"]["Running"]
