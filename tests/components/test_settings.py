"""Bad stack config fails before any resource exists, with one line that names the key."""

from datetime import datetime, timedelta, timezone

import pytest

from planning.harness import PlanError, plan_stack
from tests.program_fixtures import dev_outputs

# (config overrides, the one line that refuses them)
BAD_CONFIG: list[tuple[dict[str, object], str]] = [
    ({"webReplicas": 0}, "webReplicas: 0 is out of range; expected 1 to 50"),
    ({"webReplicas": "three"}, "webReplicas: 'three' is not a whole number; expected 1 to 50"),
    ({"webReplicas": 51}, "webReplicas: 51 is out of range; expected 1 to 50"),
    ({"webMemory": "lots"}, "webMemory: 'lots' is not a memory limit; expected a size like 512M or 1G (at least 6M)"),
    ({"celeryMemory": "1k"}, "celeryMemory: '1k' is not a memory limit; expected a size like 512M or 1G (at least 6M)"),
    ({"postgresImage": "postgres:latest"}, "postgresImage: 'latest' is mutable; pin a version, e.g. postgres:1.2.3"),
    ({"redisImage": "redis"}, "redisImage: 'redis' has no tag; pin a version, e.g. redis:1.2.3"),
    (
        {"nginxImage": "Nginx::1"},
        "nginxImage: 'Nginx::1' is not an image reference; expected repository:tag or repository@sha256:<64 hex>",
    ),
    ({"postgresImage": "mysql:8.0.36"}, "postgresImage: 'mysql:8.0.36' is not a postgres image"),
    (
        {"postgresImage": "postgres:16.4"},
        "postgresImage: '16.4' is not 15.x; this stack's data needs postgres 15 (a major upgrade is a migration)",
    ),
    ({"redisImage": "redis:7"}, "redisImage: '7' is not a pinned release; expected redis:7.x.x"),
    ({"httpPort": 70000}, "httpPort: 70000 is out of range; expected 1 to 65535"),
    ({"httpPort": "eighty"}, "httpPort: 'eighty' is not a whole number; expected 1 to 65535"),
    ({"restartPolicy": "sometimes"}, "restartPolicy: 'sometimes' is not one of always, unless-stopped, on-failure"),
    ({"migrationMode": "sometimes"}, "migrationMode: 'sometimes' is not one of gate, maintenance"),
    ({"maintenanceRetryAfter": 0}, "maintenanceRetryAfter: 0 is out of range; expected 1 to 3600"),
    ({"protectData": "yes"}, "protectData: 'yes' is not a boolean; expected true or false"),
    (
        {"healthcheckInterval": "30 seconds"},
        "healthcheckInterval: '30 seconds' is not valid; expected a duration like 30s or 1m30s",
    ),
    ({"bindAddress": "localhost"}, "bindAddress: 'localhost' is not an IP address; expected e.g. 127.0.0.1 or 0.0.0.0"),
    (
        {"frontendSubnet": "172.30.10.1/24"},
        "frontendSubnet: '172.30.10.1/24' is not a subnet; expected CIDR like 172.30.10.0/24",
    ),
    ({"imageSource": "registry"}, "imageSource: 'registry' is not one of build, stack, pin"),
    (
        {"imageSource": "pin", "imagePin": "acme/web:1.2.3"},
        "imagePin: 'acme/web:1.2.3' is not valid; expected repo@sha256:<64 hex>",
    ),
    (
        {"imageSource": "stack", "imageSourceStack": "dev"},
        "imageSourceStack: 'dev' is not valid; expected org/project/stack, e.g. organization/django-docker/dev",
    ),
    (
        {"imageRegistry": "ghcr.io/acme"},
        "imageRegistryUsername, imageRegistryPassword: required (the password as a secret) to push to imageRegistry",
    ),
    (
        {"imageRepository": "ghcr.io/acme/web:1"},
        "imageRepository: 'ghcr.io/acme/web:1' is not valid; expected a repository name like acme/web (lowercase, no registry, no tag)",
    ),
    ({"djangoLogLevel": "LOUD"}, "djangoLogLevel: 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR"),
    (
        {"djangoAllowedHosts": "ok.example.com,bad host"},
        "djangoAllowedHosts: 'bad host' is not a host name (letters, digits, - and . only)",
    ),
    (
        {"clientMaxBodySize": "ten"},
        "clientMaxBodySize: 'ten' is not valid; expected an nginx size like 10m, 512k or 1g (0: no limit)",
    ),
    (
        {"postgresUser": "Robert'); DROP"},
        "postgresUser: 'Robert'); DROP' is not valid; expected a role name (lowercase letters, digits, _), at most 63",
    ),
]


@pytest.mark.parametrize(
    "overrides, message", BAD_CONFIG, ids=[next(iter(o)) + "-" + str(i) for i, (o, _) in enumerate(BAD_CONFIG)]
)
def test_bad_config_is_one_clear_line(overrides, message):
    with pytest.raises(PlanError) as error:
        plan_stack("dev", overrides=overrides)
    assert str(error.value) == message
    assert "\n" not in str(error.value)


def test_plain_text_secret_is_refused():
    with pytest.raises(PlanError) as error:
        plan_stack("dev", overrides={"postgresPassword": "hunter2"})
    assert (
        str(error.value)
        == "postgresPassword: stored in plain text; set it with `pulumi config set --secret postgresPassword`"
    )


def test_tls_needs_both_halves():
    with pytest.raises(PlanError) as error:
        plan_stack("dev", secrets={"tlsCertificate": "-----BEGIN CERTIFICATE-----"})
    assert str(error.value) == "tlsCertificate, tlsKey: set both (secrets) to serve HTTPS, or neither"


def test_registry_push_needs_secret_password():
    with pytest.raises(PlanError) as error:
        plan_stack("dev", overrides={"imageRegistry": "ghcr.io/acme", "imageRegistryUsername": "bot"})
    assert "imageRegistryPassword" in str(error.value)


def test_a_bad_ci_sha_is_refused(monkeypatch):
    monkeypatch.setenv("GIT_SHA", "not-a-sha")
    with pytest.raises(PlanError) as error:
        plan_stack("dev")
    assert str(error.value) == "GIT_SHA: 'not-a-sha' is not a 40-character git SHA"


@pytest.mark.parametrize("overrides", [dict(o) for o, _ in BAD_CONFIG[:5]])
def test_nothing_is_created_on_bad_config(overrides, monkeypatch):
    """The refusal happens before the first resource registers."""
    from planning import harness as plan_module

    registered = []
    original = plan_module._RecordingMonitor.RegisterResource

    def spy(self, request):
        if request.type != "pulumi:pulumi:Stack":  # the stack itself always exists
            registered.append(request.type)
        return original(self, request)

    monkeypatch.setattr(plan_module._RecordingMonitor, "RegisterResource", spy)
    with pytest.raises(PlanError):
        plan_stack("dev", overrides=overrides)
    assert registered == []


def test_prod_config_is_valid_with_its_source_stack():
    plan = plan_stack("prod", stack_references=dev_outputs())
    assert plan.outputs["imageRef"].endswith("@sha256:" + "d" * 64)


# Go's own cases for Duration.String (go/src/time/time_test.go, durationTests): the provider
# reads a healthcheck back this way, so the settings spell durations the same.
GO_DURATIONS = [
    (0, "0s"),
    (1, "1ns"),
    (1100, "1.1µs"),
    (2200 * 1000, "2.2ms"),
    (3300 * 10**6, "3.3s"),
    ((4 * 60 + 5) * 10**9, "4m5s"),
    ((4 * 60 + 5) * 10**9 + 10**6, "4m5.001s"),
    (((5 * 60 + 6) * 60 + 7) * 10**9 + 10**6, "5h6m7.001s"),
    (8 * 60 * 10**9 + 1, "8m0.000000001s"),
    (-(10**9) - 10**8, "-1.1s"),
]


@pytest.mark.parametrize("ns, text", GO_DURATIONS)
def test_durations_are_spelled_as_go_does(ns, text):
    from components.settings import duration_ns, go_duration

    assert go_duration(ns) == text
    if ns > 0 and "µ" not in text and "ns" not in text:
        assert duration_ns(text) == ns  # and read back


@pytest.mark.parametrize(
    "given, spelled",
    [
        ("30s", "30s"),
        ("1m", "1m0s"),
        ("90s", "1m30s"),
        ("1h", "1h0m0s"),
        ("1500ms", "1.5s"),
        ("500ms", "500ms"),
        ("1m30s", "1m30s"),
    ],
)
def test_healthcheck_durations_are_read_in_gos_spelling(given, spelled):
    plan = plan_stack("dev", overrides={"healthcheckInterval": given})
    assert plan.container("django-docker-web-1").inputs["healthcheck"]["interval"] == spelled


# --- TLS: certificates generated here (rehearsal.checks.tls.certificates_for, cryptography) --------------


def _tls(cert: str, key: str) -> dict:
    return {"tlsCertificate": cert, "tlsKey": key}


def _refused_before_anything(monkeypatch, secrets: dict) -> str:
    """plan_stack('dev') with these TLS secrets: the one-line refusal, and nothing registered."""
    from planning import harness as plan_module

    registered = []
    original = plan_module._RecordingMonitor.RegisterResource

    def spy(self, request):
        if request.type != "pulumi:pulumi:Stack":
            registered.append(request.type)
        return original(self, request)

    monkeypatch.setattr(plan_module._RecordingMonitor, "RegisterResource", spy)
    with pytest.raises(PlanError) as error:
        plan_stack("dev", secrets=secrets)
    assert registered == []
    message = str(error.value)
    assert "\n" not in message
    # Nothing of the secret text in the message.
    for value in secrets.values():
        for line in value.splitlines():
            if line and not line.startswith("-----"):
                assert line not in message
    return message


def test_a_valid_certificate_and_key_serve_https():
    from rehearsal.checks.tls import certificates_for

    certs = certificates_for("localhost")
    plan = plan_stack("dev", secrets=_tls(certs.cert_pem, certs.key_pem))
    assert plan.outputs["url"].startswith("https://localhost")


def test_a_wildcard_certificate_covers_the_server_name():
    from rehearsal.checks.tls import certificates_for

    certs = certificates_for("app.example.com", names=["*.example.com"])
    plan = plan_stack("dev", overrides={"serverName": "app.example.com"}, secrets=_tls(certs.cert_pem, certs.key_pem))
    assert plan.outputs["url"].startswith("https://app.example.com")


def test_a_key_that_is_not_the_certificates_is_refused(monkeypatch):
    from rehearsal.checks.tls import certificates_for

    certs, other = certificates_for("localhost"), certificates_for("localhost")
    message = _refused_before_anything(monkeypatch, _tls(certs.cert_pem, other.key_pem))
    assert message == "tlsKey: does not match tlsCertificate (the key's public key is not the certificate's)"


def test_an_expired_certificate_is_refused(monkeypatch):
    from rehearsal.checks.tls import certificates_for

    until = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    certs = certificates_for("localhost", valid_from=until - timedelta(days=90), valid_until=until)
    message = _refused_before_anything(monkeypatch, _tls(certs.cert_pem, certs.key_pem))
    assert message == "tlsCertificate: expired on 2024-01-02 03:04:05 UTC"


def test_a_certificate_not_yet_valid_is_refused(monkeypatch):
    from rehearsal.checks.tls import certificates_for

    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=3)
    certs = certificates_for("localhost", valid_from=start, valid_until=start + timedelta(days=90))
    message = _refused_before_anything(monkeypatch, _tls(certs.cert_pem, certs.key_pem))
    assert message == f"tlsCertificate: not valid before {start:%Y-%m-%d %H:%M:%S} UTC"


def test_a_certificate_for_another_name_is_refused(monkeypatch):
    from rehearsal.checks.tls import certificates_for

    certs = certificates_for("localhost", names=["www.example.org", "*.example.net"])
    message = _refused_before_anything(monkeypatch, _tls(certs.cert_pem, certs.key_pem))
    assert message == "tlsCertificate: does not cover serverName 'localhost'; it names www.example.org, *.example.net"


@pytest.mark.parametrize("which", ["tlsCertificate", "tlsKey"])
def test_garbage_is_refused_naming_the_key(monkeypatch, which):
    from rehearsal.checks.tls import certificates_for

    certs = certificates_for("localhost")
    secrets = _tls(certs.cert_pem, certs.key_pem)
    secrets[which] = "-----BEGIN SOMETHING-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END SOMETHING-----\n"
    message = _refused_before_anything(monkeypatch, secrets)
    assert (
        message
        == {
            "tlsCertificate": "tlsCertificate: not a PEM certificate; expected the server's certificate, then any "
            "intermediates, each between -----BEGIN CERTIFICATE----- lines",
            "tlsKey": "tlsKey: not a PEM private key; expected -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY), unencrypted",
        }[which]
    )


def test_the_certificate_and_key_swapped_are_refused(monkeypatch):
    from rehearsal.checks.tls import certificates_for

    certs = certificates_for("localhost")
    message = _refused_before_anything(monkeypatch, _tls(certs.key_pem, certs.cert_pem))
    assert message.startswith("tlsCertificate: not a PEM certificate;")


def test_an_encrypted_key_is_refused(monkeypatch):
    from cryptography.hazmat.primitives import serialization

    from rehearsal.checks.tls import certificates_for

    certs = certificates_for("localhost")
    encrypted = certs.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    message = _refused_before_anything(monkeypatch, _tls(certs.cert_pem, encrypted))
    assert message == "tlsKey: encrypted; nginx needs the private key without a passphrase"


def test_tls_in_plain_text_is_refused_before_it_is_parsed():
    with pytest.raises(PlanError) as error:
        plan_stack("dev", overrides={"tlsCertificate": "x", "tlsKey": "y"})
    assert str(error.value).splitlines() == [
        "tlsCertificate: stored in plain text; set it with `pulumi config set --secret tlsCertificate`",
        "tlsKey: stored in plain text; set it with `pulumi config set --secret tlsKey`",
    ]


def test_only_changes_to_what_goes_into_the_image_make_the_tag_dirty(tmp_path, monkeypatch):
    """`pulumi stack init` writes an encryptionsalt into Pulumi.<stack>.yaml: no byte of the image
    changes, so the tag must stay the clean commit's; an edit under the app's context, or under
    the runtime it copies in, is `-dirty`."""
    import subprocess

    from components.settings import resolve_git_sha

    monkeypatch.delenv("GIT_SHA", raising=False)
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    for folder in ("django_app", "runtime"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "app.py").write_text("x = 1\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    clean = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    sha = lambda: resolve_git_sha(tmp_path / "django_app", runtime=tmp_path / "runtime")  # noqa: E731
    (tmp_path / "Pulumi.dev.yaml").write_text("encryptionsalt: v1:abc\nconfig: {}\n")
    (tmp_path / ".pulumi-state").mkdir()
    (tmp_path / ".pulumi-state" / "x.json").write_text("{}")
    assert sha() == clean
    (tmp_path / "runtime" / "new.py").write_text("y = 2\n")
    assert sha() == clean + "-dirty"
    (tmp_path / "runtime" / "new.py").unlink()
    (tmp_path / "django_app" / "new.py").write_text("y = 2\n")
    assert sha() == clean + "-dirty"


def test_an_app_in_its_own_repository_is_tagged_with_its_own_commit(tmp_path, monkeypatch):
    import subprocess

    from components.settings import SettingsError, resolve_git_sha

    monkeypatch.delenv("GIT_SHA", raising=False)
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    app = tmp_path / "team-app"
    app.mkdir()
    with pytest.raises(SettingsError, match=r"^appContext: cannot read the commit of .*team-app"):
        resolve_git_sha(app, runtime=tmp_path / "none")
    git = ["git", "-C", str(app), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (app / "manage.py").write_text("")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    theirs = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert resolve_git_sha(app, runtime=tmp_path / "none") == theirs


REGISTRY_AUTH = '[{"address": "ghcr.io", "username": "deploy", "password": "token-123"}]'


def test_prod_pulls_from_a_private_registry_with_the_providers_registry_auth():
    from tests.program_fixtures import PROD_SECRETS, plan_prod

    plan = plan_prod(secrets={**PROD_SECRETS, "docker:registryAuth": REGISTRY_AUTH})
    assert plan.outputs["imageRef"]


@pytest.mark.parametrize(
    "config, message",
    [
        (
            {"overrides": {"docker:registryAuth": REGISTRY_AUTH}},
            "docker:registryAuth[0].password: stored in plain text; set it with `pulumi config set --secret --path 'docker:registryAuth[0].password'`",
        ),
        (
            {"overrides": {"docker:registryAuth": '[{"username": "deploy"}]'}},
            "docker:registryAuth[0].address: required, the registry host (e.g. ghcr.io)",
        ),
        (
            {"overrides": {"docker:registryAuth": '{"address": "ghcr.io"}'}},
            "docker:registryAuth: not a list of {address, username, password}; set it with "
            "`pulumi config set --path 'docker:registryAuth[0].address' ghcr.io` (and --secret for the password)",
        ),
    ],
)
def test_registry_auth_is_refused_in_one_line_before_anything(config, message):
    from tests.program_fixtures import plan_prod

    with pytest.raises(PlanError) as error:
        plan_prod(**config)
    assert str(error.value) == message
