"""Plain asserts on every render function; the nginx config is parsed with crossplane here and
checked by a real nginx of the pinned feature set in tests/rehearsal/test_standins.py."""

import crossplane
import pytest

from components import render
from tests.nginx_check import APP_PATHS


def test_labels():
    assert render.labels(service="web", role="app", stack="dev", git_sha="abc") == {
        "django-docker.service": "web",
        "django-docker.role": "app",
        "django-docker.stack": "dev",
        "django-docker.git-sha": "abc",
    }
    assert "django-docker.git-sha" not in render.labels(service="nginx", role="accessory", stack="prod")


WEB = dict(workers=2, threads=1, timeout=30, max_requests=1000, max_requests_jitter=100)


def test_web_command_serves_the_runtimes_wrapper_with_every_tunable_as_a_flag():
    assert render.web_command(server="wsgi", **WEB) == [
        "gunicorn",
        "--config",
        "python:django_docker_runtime.gunicorn_conf",
        "--workers",
        "2",
        "--timeout",
        "30",
        "--graceful-timeout",
        "30",
        "--max-requests",
        "1000",
        "--max-requests-jitter",
        "100",
        "django_docker_runtime.wsgi:application",
    ]
    threaded = render.web_command(server="wsgi", **{**WEB, "threads": 4})
    assert threaded[5:7] == ["--threads", "4"]  # gunicorn picks its gthread worker
    asgi = render.web_command(server="asgi", **{**WEB, "threads": 4})
    assert asgi[5:7] == ["--worker-class", "uvicorn_worker.UvicornWorker"]
    assert "--threads" not in asgi  # the uvicorn worker has no threads
    assert asgi[-1] == "django_docker_runtime.asgi:application"


def test_celery_commands_name_the_app_and_only_the_flags_set():
    assert render.worker_command("proj", concurrency=3, pool="prefork", max_tasks_per_child=0, queues=()) == [
        "celery",
        "--app",
        "proj",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        "3",
    ]
    assert render.worker_command(
        "proj.celery:app", concurrency=1, pool="threads", max_tasks_per_child=50, queues=("high", "low")
    )[8:] == ["--pool", "threads", "--max-tasks-per-child", "50", "--queues", "high,low"]
    assert render.beat_command("proj") == [
        "celery",
        "--app",
        "proj",
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        "/tmp/celerybeat-schedule",
    ]
    assert render.with_secret_files(["celery", "--app", "proj", "worker"]) == [
        "python",
        "-m",
        "django_docker_runtime.run",
        "--",
        "celery",
        "--app",
        "proj",
        "worker",
    ]


def test_healthchecks():
    assert render.app_healthcheck("web") == ["CMD", "python", "-m", "django_docker_runtime.healthcheck", "web"]
    assert render.postgres_healthcheck("app", "db") == [
        "CMD",
        "pg_isready",
        "--username",
        "app",
        "--dbname",
        "db",
        "--host",
        "127.0.0.1",
    ]
    assert render.redis_healthcheck() == ["CMD", "redis-cli", "ping"]


def test_redis_keeps_headroom_and_never_evicts():
    assert render.redis_command(256) == [
        "redis-server",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--maxmemory",
        "192mb",
        "--maxmemory-policy",
        "noeviction",
    ]


def test_database_url_quotes_the_password():
    assert (
        render.database_url(user="app", password="p@ss/w:rd", db="app")
        == "postgres://app:p%40ss%2Fw%3Ard@postgres:5432/app"
    )
    assert render.redis_url() == "redis://redis:6379/0"


APP_ENV = dict(
    settings_module="config.settings.production",
    app_module="config.wsgi:application",
    port=8000,
    health_path="/health/",
    health_checks=("database", "cache", "broker"),
    ready_checks=("database",),
    celery_app="config",
    secret_key="k",
    database={"user": "app", "password": "p@ss", "db": "app"},
    redis_url="redis://r",
    allowed_hosts=["a.example", "b.example"],
    tls=False,
    hsts_seconds=3600,
    log_level="INFO",
    forwarded_allow_ips="10.0.0.0/24",
    csrf_trusted_origins=["http://a.example"],
)


def test_app_env_plain_http():
    assert render.app_env(**APP_ENV) == [
        "DJANGO_SETTINGS_MODULE=config.settings.production",
        "DJANGO_SECRET_KEY=k",
        "DJANGO_ALLOWED_HOSTS=a.example,b.example",
        "DJANGO_CSRF_TRUSTED_ORIGINS=http://a.example",
        "DATABASE_URL=postgres://app:p%40ss@postgres:5432/app",
        "POSTGRES_HOST=postgres",
        "POSTGRES_PORT=5432",
        "POSTGRES_DB=app",
        "POSTGRES_USER=app",
        "POSTGRES_PASSWORD=p@ss",
        "REDIS_URL=redis://r",
        "DJANGO_SECURE_SSL_REDIRECT=false",
        "DJANGO_SECURE_COOKIES=false",
        "DJANGO_SECURE_HSTS_SECONDS=0",  # no HSTS over plain HTTP, whatever the stack asks
        "DJANGO_LOG_LEVEL=INFO",
        "APP_MODULE=config.wsgi:application",
        "PORT=8000",
        "HEALTH_PATH=/health/",
        "HEALTH_CHECKS=database,cache,broker",
        "READY_CHECKS=database",
        "FORWARDED_ALLOW_IPS=10.0.0.0/24",
        "CELERY_APP=config",
    ]
    # the program sets exactly the names it says it sets (appEnv is refused any of them)
    assert {item.split("=", 1)[0] for item in render.app_env(**APP_ENV)} == set(render.PROVIDED_ENV)


def test_app_env_without_celery_names_no_app():
    env = render.app_env(**{**APP_ENV, "celery_app": ""})
    assert not any(item.startswith("CELERY_APP=") for item in env)


def test_app_env_tls_turns_on_https_settings():
    env = dict(e.split("=", 1) for e in render.app_env(**{**APP_ENV, "tls": True}))
    assert (env["DJANGO_SECURE_SSL_REDIRECT"], env["DJANGO_SECURE_COOKIES"], env["DJANGO_SECURE_HSTS_SECONDS"]) == (
        "true",
        "true",
        "3600",
    )


def test_app_env_adds_the_stacks_own_variables_with_references_expanded():
    env = render.app_env(
        **APP_ENV,
        extra=[("SECRET_KEY", "${DJANGO_SECRET_KEY}"), ("PRICE", "$$5 at ${PORT}"), ("PLAIN", "x")],
        secret_extra={"SENTRY_DSN": "https://key@sentry.example/1"},
    )
    assert env[-4:] == ["SECRET_KEY=k", "PRICE=$5 at 8000", "PLAIN=x", "SENTRY_DSN=https://key@sentry.example/1"]
    assert render.references("a ${B} $$ ${C}") == ["B", "C"]


def test_urls_and_origins():
    assert render.public_url(server_name="example.com", tls=False, port=80) == "http://example.com/"
    assert render.public_url(server_name="localhost", tls=False, port=8080) == "http://localhost:8080/"
    assert render.public_url(server_name="example.com", tls=True, port=443) == "https://example.com/"
    assert render.csrf_origins(hosts=["example.com", ".example.com"], tls=True, port=8443) == [
        "https://example.com:8443"
    ]
    assert render.postgres_env(user="u", password="p", db="d") == [
        "POSTGRES_USER=u",
        "POSTGRES_PASSWORD=p",
        "POSTGRES_DB=d",
    ]


def _parse(text, tmp_path):
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    result = crossplane.parse(str(path), single=True, check_ctx=True, check_args=True, comments=False)
    assert result["status"] == "ok", result["errors"]
    return result["config"][0]["parsed"]


def _find(block, directive):
    for item in block:
        if item["directive"] == directive:
            yield item
        for child in _find(item.get("block", []), directive):
            yield child


def test_nginx_conf_structure(tmp_path):
    conf = render.nginx_conf(server_name="example.com", client_max_body_size="10m", tls=False, **APP_PATHS)
    parsed = _parse(conf, tmp_path)
    assert [d["args"] for d in _find(parsed, "user")] == [["nginx"]]
    # One upstream that follows the replicas' shared alias through Docker's DNS.
    assert [d["args"] for d in _find(parsed, "resolver")] == [["127.0.0.11", "valid=1s", "ipv6=off"]]
    # Two upstreams over the same alias: the first attempt's, which marks a refusing replica
    # failed for a few seconds, and the fresh attempt's, which keeps no marks (see below).
    upstream, fresh = _find(parsed, "upstream")
    assert upstream["args"] == ["django"]
    assert [(d["directive"], d["args"]) for d in upstream["block"]] == [
        ("zone", ["django", "64k"]),
        ("server", ["web:8000", "resolve", "max_fails=1", "fail_timeout=5s"]),
        ("keepalive", ["16"]),
    ]
    assert fresh["args"] == ["django_fresh"]
    assert [(d["directive"], d["args"]) for d in fresh["block"]] == [
        ("zone", ["django_fresh", "64k"]),
        ("server", ["web:8000", "resolve", "max_fails=0"]),
    ]
    # A request nginx never repeats once sent goes there, and asks for its connection to close:
    # none is kept for the next (nginx >= 1.29.7 would keep one by default).
    maps = {d["args"][1]: {e["directive"]: e["args"][0] for e in d["block"]} for d in _find(parsed, "map")}
    assert maps["$django_upstream"] == {
        "default": "django",
        "POST": "django_fresh",
        "PATCH": "django_fresh",
        "LOCK": "django_fresh",
    }
    assert maps["$django_connection"] == {"default": "", "POST": "close", "PATCH": "close", "LOCK": "close"}
    assert [d["args"] for d in _find(parsed, "server_tokens")] == [["off"]]
    assert [d["args"] for d in _find(parsed, "client_max_body_size")] == [["10m"]]
    health, site = [d for d in parsed[-1]["block"] if d["directive"] == "server"]
    # The healthcheck's door: loopback only, answered by nginx itself.
    assert [d["args"] for d in health["block"] if d["directive"] == "listen"] == [["127.0.0.1:8081"]]
    (probe,) = [d for d in health["block"] if d["directive"] == "location"]
    assert probe["args"] == ["=", "/nginx-health"] and probe["block"] == [
        {"directive": "return", "args": ["204"], "line": probe["block"][0]["line"]}
    ]
    locations = {d["args"][-1]: d["block"] for d in _find(site["block"], "location")}
    hashed_pattern = "^/static/(.+\\.[0-9a-f]{12}\\.[A-Za-z0-9]+)$"
    assert set(locations) == {hashed_pattern, "/static/", "/media/", "/health/", "/", "@again", "@health_again"}
    # A file ManifestStaticFilesStorage fingerprinted (12 hex of its MD5) is kept a year; others a minute.
    (hashed,) = [d for d in _find(site["block"], "location") if d["args"][0] == "~"]
    assert hashed["args"] == ["~", hashed_pattern]
    assert [d["args"] for d in hashed["block"] if d["directive"] == "alias"] == [["/var/www/static/$1"]]

    def cache(block):
        return [d["args"][1] for d in block if d["directive"] == "add_header" and d["args"][0] == "Cache-Control"]

    assert cache(hashed["block"]) == ["public, max-age=31536000, immutable"]
    assert cache(locations["/static/"]) == ["public, max-age=60"]
    assert [d["args"] for d in _find(parsed, "gzip_types")] == [
        [
            "text/plain",
            "text/css",
            "text/javascript",
            "application/javascript",
            "application/json",
            "application/xml",
            "image/svg+xml",
        ]
    ]
    assert [d["args"] for d in _find(parsed, "gzip_vary")] == [["on"]]
    # The app's health answer: proxied, but its 503 (a dependency down) is the answer, neither
    # retried on another replica nor counted against this one (which would take every replica
    # out of the upstream and fail every page with it).
    health_proxy = {d["directive"]: d["args"] for d in locations["/health/"] if d["directive"].startswith("proxy_")}
    assert health_proxy["proxy_pass"] == ["http://django"]
    assert health_proxy["proxy_next_upstream"] == ["error", "timeout"]
    # Only nginx's own 502 goes elsewhere (error_page never sees a proxied answer without
    # proxy_intercept_errors, so the app's 503 still passes): tried once more, with the current
    # replicas, and still with the 503 as the answer. Without it a probe that met a draining
    # replica and an address that died with its container got a 502 (CI, unhealthy-release).
    assert not list(_find(parsed, "proxy_intercept_errors"))
    assert [d["args"] for d in locations["/health/"] if d["directive"] == "error_page"] == [
        ["502", "=", "@health_again"]
    ]
    again_proxy = {d["directive"]: d["args"] for d in locations["@health_again"] if d["directive"].startswith("proxy_")}
    assert again_proxy["proxy_next_upstream"] == ["error", "timeout"]
    # nginx's own 502 of a repeatable request is tried once more, with the current replicas.
    assert [d["args"] for d in locations["/"] if d["directive"] == "error_page"] == [["502", "=", "@again"]]
    # Tried again: a request that may be repeated, or one nothing of which reached a replica
    # (nginx repeats no POST it sent; tests/rehearsal/test_nginx_resolve.py test_h on a real nginx).
    for name in ("@again", "@health_again"):
        guards = [
            (d["directive"], d["args"], [(e["directive"], e["args"]) for e in d.get("block", [])])
            for d in locations[name]
            if d["directive"] in ("set", "if")
        ]
        assert guards == [
            ("set", ["$again", ""], []),
            ("if", ["$request_method", "~", "^(GET|HEAD|OPTIONS)$"], [("set", ["$again", "yes"])]),
            ("if", ["$upstream_bytes_sent", "~", "^[0 ,:]*$"], [("set", ["$again", "yes"])]),
            ("if", ["$again", "=", ""], [("return", ["502"])]),
        ]
        assert "error_page" not in {d["directive"] for d in locations[name]}  # one more attempt, not a loop

    # The first attempt honours nginx's failure marks; the fresh one ignores them, so a replica
    # that listens by now is reached although it refused while booting (every replica marked:
    # "no live upstreams"; tests/rehearsal/test_nginx_resolve.py shows both on a real nginx).
    def passed_to(name):
        block = locations[name]
        connection = [
            d["args"][1] for d in block if d["directive"] == "proxy_set_header" and d["args"][0] == "Connection"
        ]
        return [d["args"][0] for d in block if d["directive"] == "proxy_pass"] + connection

    assert passed_to("/") == ["http://$django_upstream", "$django_connection"]
    assert passed_to("/health/") == ["http://django", ""]
    assert passed_to("@again") == passed_to("@health_again") == ["http://django_fresh", "close"]
    assert [d["args"] for d in locations["/static/"] if d["directive"] == "alias"] == [["/var/www/static/"]]
    assert [d["args"] for d in locations["/media/"] if d["directive"] == "alias"] == [["/var/www/media/"]]
    proxy = {
        d["directive"]: d["args"]
        for d in locations["/"]
        if d["directive"].startswith("proxy_") and d["directive"] != "proxy_set_header"
    }
    assert proxy["proxy_next_upstream"] == ["error", "timeout", "http_502", "http_503", "http_504"]
    assert proxy["proxy_next_upstream_tries"] == ["0"]  # every replica, within the timeout below
    assert proxy["proxy_next_upstream_timeout"] == ["15s"]
    assert proxy["proxy_connect_timeout"] == ["100ms"]
    headers = {tuple(d["args"][:1]): d["args"] for d in locations["/"] if d["directive"] == "proxy_set_header"}
    assert headers[("X-Forwarded-Proto",)] == ["X-Forwarded-Proto", "$scheme"]
    assert headers[("Host",)] == ["Host", "$host"]
    assert headers[("X-Forwarded-For",)] == ["X-Forwarded-For", "$proxy_add_x_forwarded_for"]
    for block in locations.values():
        added = {d["args"][0] for d in block if d["directive"] == "add_header"}
        assert {"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} <= added
    assert "Content-Security-Policy" in {d["args"][0] for d in locations["/media/"] if d["directive"] == "add_header"}
    assert [d["args"] for d in _find(site["block"], "listen")] == [["80", "default_server"]]


def test_secrets_as_files_names_each_secret_by_its_file_and_keeps_the_rest():
    env = ["A=1", "DJANGO_SECRET_KEY=s3cret", "DATABASE_URL=postgres://u:p@db/x", "B=two=2"]

    result = render.secrets_as_files(env, ["DJANGO_SECRET_KEY", "DATABASE_URL"], "/run/secrets")

    assert result == {
        "A": "1",
        "DJANGO_SECRET_KEY_FILE": "/run/secrets/django-secret-key",
        "DATABASE_URL_FILE": "/run/secrets/database-url",
        "B": "two=2",
        "VALUES_FROM_FILES": "DJANGO_SECRET_KEY,DATABASE_URL",  # the runtime reads only these back
    }
    assert "s3cret" not in str(result) and "u:p" not in str(result)
    with pytest.raises(ValueError, match="not in the environment: REDIS_PASSWORD"):
        render.secrets_as_files(env, ["REDIS_PASSWORD"], "/run/secrets")


def test_nginx_conf_does_not_depend_on_the_replicas():
    # Nothing about a release or the replica count is an input of nginx: it is never replaced by one.
    import inspect

    assert set(inspect.signature(render.nginx_conf).parameters) == {
        "server_name",
        "client_max_body_size",
        "tls",
        "public_https_port",
        "hsts_seconds",
        "tls_cert_path",  # where the certificate and key are: the site's generation (swarm: a config's, a secret's)
        "tls_key_path",
        "generation_file",  # the site's generation file (a container's): the health door names it
        "acme_webroot",  # tlsMode acme: where port 80 serves the challenges from
        "maintenance_retry_after",  # the maintenance configuration (migrationMode maintenance): a setting
        "app_port",  # the app's port and paths: settings of the app, not of a release
        "static_url",
        "media_url",
        "health_path",
    }


def test_nginx_conf_follows_the_apps_port_and_paths_and_leaves_out_what_it_has_not(tmp_path):
    conf = render.nginx_conf(
        server_name="example.com",
        client_max_body_size="10m",
        tls=False,
        app_port=9000,
        static_url="/assets/",
        media_url=None,
        health_path="/-/ready/",
    )
    parsed = _parse(conf, tmp_path)
    upstream, fresh = _find(parsed, "upstream")
    assert ["web:9000", "resolve", "max_fails=1", "fail_timeout=5s"] in [d["args"] for d in upstream["block"]]
    assert ["web:9000", "resolve", "max_fails=0"] in [d["args"] for d in fresh["block"]]
    locations = {tuple(d["args"]): d["block"] for d in _find(parsed, "location")}
    assert set(locations) == {
        ("=", "/nginx-health"),
        ("=", "/-/ready/"),
        ("~", "^/assets/(.+\\.[0-9a-f]{12}\\.[A-Za-z0-9]+)$"),  # fingerprinted files
        ("/assets/",),
        ("/",),
        ("@again",),
        ("@health_again",),
    }
    assert [d["args"] for d in locations[("/assets/",)] if d["directive"] == "alias"] == [["/var/www/static/"]]
    bare = render.nginx_conf(
        server_name="example.com",
        client_max_body_size="10m",
        tls=False,
        app_port=8000,
        static_url=None,
        media_url=None,
        health_path="/health/",
    )
    assert "/var/www/" not in bare


def test_nginx_conf_tls_redirects_and_adds_hsts(tmp_path):
    conf = render.nginx_conf(
        **APP_PATHS,
        server_name="example.com",
        client_max_body_size="1m",
        tls=True,
        public_https_port=8443,
        hsts_seconds=600,
    )
    parsed = _parse(conf, tmp_path)
    assert [d["args"] for d in _find(parsed, "listen")] == [
        ["127.0.0.1:8081"],
        ["80", "default_server"],
        ["443", "ssl", "default_server"],
    ]
    assert [d["args"] for d in _find(parsed, "http2")] == [["on"]]
    assert [d["args"] for d in _find(parsed, "return")] == [
        ["204"],
        ["301", "https://$host:8443$request_uri"],
        ["502"],
        ["502"],
    ]
    assert ["Strict-Transport-Security", "max-age=600; includeSubDomains", "always"] in [
        d["args"] for d in _find(parsed, "add_header")
    ]
    # Each header nginx adds to the app's answers is hidden from the app's own answer: sent once.
    locations = {d["args"][-1]: d["block"] for d in _find(parsed, "location")}
    for name in ("/", "@again", "/health/", "@health_again"):
        added = {d["args"][0] for d in locations[name] if d["directive"] == "add_header"}
        hidden = {d["args"][0] for d in locations[name] if d["directive"] == "proxy_hide_header"}
        assert "Strict-Transport-Security" in added and added == hidden, name


def test_nginx_healthcheck_probes_its_own_door():
    assert render.nginx_healthcheck() == [
        "CMD",
        "curl",
        "--fail",
        "--silent",
        "--output",
        "/dev/null",
        "http://127.0.0.1:8081/nginx-health",
    ]


def test_an_image_is_pinned_as_the_docker_client_pins_a_service_s():
    digest = "sha256:" + "ab" * 32
    assert render.with_digest("postgres:15.14-bookworm", f"postgres@{digest}") == f"postgres:15.14-bookworm@{digest}"
    # a registry's port is not a tag
    assert (
        render.with_digest("127.0.0.1:5000/redis:7.4.5-bookworm", f"127.0.0.1:5000/redis@{digest}")
        == f"127.0.0.1:5000/redis:7.4.5-bookworm@{digest}"
    )
    # already pinned; a digest of another repository (retagged locally); no digest (built here)
    assert render.with_digest(f"nginx:1.28.0@{digest}", "nginx@sha256:" + "cd" * 32) == f"nginx:1.28.0@{digest}"
    assert (
        render.with_digest("reg.example.com/postgres:15.14", f"postgres@{digest}") == "reg.example.com/postgres:15.14"
    )
    assert render.with_digest("postgres:15.14-bookworm", "") == "postgres:15.14-bookworm"


def test_an_image_is_named_as_the_docker_client_writes_it():
    assert render.familiar_image("docker.io/library/postgres:15.14-bookworm") == "postgres:15.14-bookworm"
    assert render.familiar_image("index.docker.io/library/redis:7.4.5") == "redis:7.4.5"
    assert render.familiar_image("docker.io/bitnami/postgresql:16.4.0") == "bitnami/postgresql:16.4.0"
    assert render.familiar_image("docker.io/library/team/nginx:1.28.0") == "library/team/nginx:1.28.0"
    assert render.familiar_image("127.0.0.1:5000/nginx:1.28.0") == "127.0.0.1:5000/nginx:1.28.0"


def test_the_maintenance_configuration_answers_503_and_still_serves_files(tmp_path):
    conf = render.nginx_conf(
        server_name="example.com",
        client_max_body_size="10m",
        tls=False,
        generation_file=render.NGINX_GENERATION_FILE,
        maintenance_retry_after=45,
        **APP_PATHS,
    )
    parsed = _parse(conf, tmp_path)
    # Nothing reaches the app: no proxy_pass anywhere, no health location, no retry location.
    assert list(_find(parsed, "proxy_pass")) == []
    servers = [s for s in _find(parsed, "server") if "block" in s]
    (server,) = [s for s in servers if ["80", "default_server"] in [d["args"] for d in s["block"]]]
    locations = {tuple(d["args"]): d["block"] for d in server["block"] if d["directive"] == "location"}
    assert ("/",) in locations and ("=", APP_PATHS["health_path"]) not in locations and ("@again",) not in locations
    page = locations[("/",)]
    (ret,) = [d["args"] for d in page if d["directive"] == "return"]
    assert ret[0] == "503" and "Down for maintenance" in ret[1]
    headers = {d["args"][0]: d["args"][1:] for d in page if d["directive"] == "add_header"}
    assert headers["Retry-After"] == ["45", "always"]
    assert headers["Cache-Control"] == ["no-store", "always"]
    assert headers["X-Frame-Options"] == ["DENY", "always"]
    # Static files and uploads are served as in the site's own configuration.
    normal = render.nginx_conf(
        server_name="example.com",
        client_max_body_size="10m",
        tls=False,
        generation_file=render.NGINX_GENERATION_FILE,
        **APP_PATHS,
    )
    for block in (f"location {APP_PATHS['static_url']} {{", f"location {APP_PATHS['media_url']} {{"):
        assert block in conf and block in normal
    # The health door (the reload's proof) and its generation stay.
    assert f"include {render.NGINX_GENERATION_FILE};" in conf
    assert f"listen 127.0.0.1:{render.NGINX_HEALTH_PORT};" in conf
    # Everything before the server's locations is the same configuration.
    assert conf.split("server {\n        listen 80")[0] == normal.split("server {\n        listen 80")[0]


def test_the_maintenance_configuration_with_tls_keeps_the_redirect_and_the_certificate(tmp_path):
    conf = render.nginx_conf(
        server_name="example.com", client_max_body_size="10m", tls=True, maintenance_retry_after=30, **APP_PATHS
    )
    parsed = _parse(conf, tmp_path)
    assert [d["args"] for d in _find(parsed, "ssl_certificate")] == [[render.NGINX_TLS_CERT]]
    assert [d["args"] for d in _find(parsed, "return") if d["args"][0] == "301"]
    assert [d["args"][0] for d in _find(parsed, "return") if d["args"][0] == "503"] == ["503"]


def test_migration_gate_command():
    assert render.migration_gate_command("gate") == [
        "python",
        "-m",
        "django_docker_runtime.migration_gate",
        "--mode",
        "gate",
    ]
    assert render.migration_gate_command("maintenance")[-1] == "maintenance"
    with pytest.raises(ValueError):
        render.migration_gate_command("off")
