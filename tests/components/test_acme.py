"""tlsMode acme: what the settings refuse (one line each, naming the key, before anything is
created), what the program plans for it, and the ACME client's script."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from components import render
from planning.harness import CONTAINER, JOB, NGINX_SITE, VOLUME, PlanError
from rehearsal.checks.tls import certificates_for
from tests.program_fixtures import PROD_SECRETS, plan_prod

ACME = {"tlsMode": "acme", "acmeEmail": "ops@shop.dev", "serverName": "shop.dev"}


def refused(**overrides) -> list[str]:
    with pytest.raises(PlanError) as error:
        plan_prod(overrides=overrides)
    return str(error.value).splitlines()


@pytest.mark.parametrize(
    "overrides, line",
    [
        ({"acmeEmail": ""}, "acmeEmail: empty; tlsMode acme needs the account's e-mail address"),
        ({"acmeEmail": "ops"}, "acmeEmail: 'ops' is not an e-mail address; it has no @ between a name and a domain"),
        (
            {"acmeEmail": "ops@shop"},
            "acmeEmail: 'ops@shop' is not an e-mail address; it has a domain (shop) with no dot",
        ),
        ({"acmeEmail": "o ps@shop.dev"}, "acmeEmail: 'o ps@shop.dev' is not an e-mail address; it has a name part"),
        ({"acmeDirectory": "http://ca.internal/dir"}, "acmeDirectory: 'http://ca.internal/dir' is not an https URL"),
        ({"acmeDirectory": "ca.internal/dir"}, "acmeDirectory: 'ca.internal/dir' is not an https URL"),
        ({"serverName": "10.1.2.3"}, "serverName: '10.1.2.3' is an IP address; HTTP-01 validates domain names"),
        ({"serverName": "localhost"}, "serverName: 'localhost' is a single label"),
        ({"serverName": "com"}, "serverName: 'com' is a single label (like localhost or a bare top-level domain)"),
        ({"serverName": ".shop.dev"}, "serverName: '.shop.dev' is a wildcard; only the DNS-01 challenge"),
        ({"serverName": "shop.test"}, "serverName: 'shop.test' is under a reserved top-level domain"),
        ({"serverName": "example.com"}, "serverName: 'example.com' is an example domain (RFC 2606)"),
        ({"acmeExtraNames": "www.shop.dev"}, "acmeExtraNames: 'www.shop.dev' is not one of Django's allowed hosts"),
        (
            {"acmeExtraNames": "localhost", "djangoAllowedHosts": "localhost"},
            "acmeExtraNames: 'localhost' is a single label",
        ),
        (
            {"acmeStaging": True, "acmeDirectory": "https://ca.internal/dir"},
            "acmeStaging: true, but acmeDirectory is https://ca.internal/dir",
        ),
        ({"acmeCaCertificate": "not a pem"}, "acmeCaCertificate: not a PEM certificate"),
        ({"acmeImage": "goacme/lego:v4"}, "acmeImage: 'v4' is not a pinned release"),
        ({"acmeImage": "certbot/certbot:v2.11.0"}, "acmeImage: 'certbot/certbot:v2.11.0' is not a lego image"),
        ({"target": "swarm"}, "tlsMode: acme needs target containers"),
    ],
)
def test_bad_acme_input_is_refused_in_one_line_naming_the_key(overrides, line):
    lines = refused(**{**ACME, **overrides})
    assert any(found.startswith(line) for found in lines), lines


def test_a_manual_certificate_and_acme_are_refused_together():
    certs = certificates_for("shop.dev")
    with pytest.raises(PlanError) as error:
        plan_prod(overrides=ACME, secrets={**PROD_SECRETS, "tlsCertificate": certs.cert_pem, "tlsKey": certs.key_pem})
    (line,) = [x for x in str(error.value).splitlines() if x.startswith("tlsMode:")]
    assert line.startswith("tlsMode: acme, but tlsCertificate/tlsKey are set too")
    assert certs.key_pem.splitlines()[1] not in str(error.value)


def test_acme_keys_without_tls_mode_acme_are_refused():
    assert refused(acmeEmail="ops@shop.dev") == [
        "acmeEmail: set, but tlsMode is manual; it means something only with tlsMode: acme"
    ]


def test_a_private_ca_may_issue_for_internal_names_and_staging_is_lets_encrypts():
    plan = plan_prod(overrides={**ACME, "serverName": "shop.internal", "acmeDirectory": "https://ca.internal/acme/dir"})
    assert "ACME_DIRECTORY=https://ca.internal/acme/dir" in plan.by_name("django-docker-acme", CONTAINER).inputs["envs"]
    staging = plan_prod(overrides={**ACME, "acmeStaging": True})
    assert (
        "ACME_DIRECTORY=https://acme-staging-v02.api.letsencrypt.org/directory"
        in staging.by_name("django-docker-acme", CONTAINER).inputs["envs"]
    )


def test_acme_plans_the_client_beside_nginx_sharing_its_pid_namespace_and_protects_its_volume():
    plan = plan_prod(overrides={**ACME, "acmeExtraNames": "www.shop.dev", "djangoAllowedHosts": "www.shop.dev"})
    assert plan.outputs["url"] == "https://shop.dev/"
    nginx = plan.container("django-docker-nginx")
    renewer = plan.by_name("django-docker-acme", CONTAINER)
    job = plan.by_name("django-docker-acme-certificate", JOB)
    for client in (renewer, job):
        assert client.inputs["pidMode"] == f"container:{nginx.id}"
        assert client.inputs["entrypoints"] == ["/bin/sh"] and client.inputs["command"][-1] in ("loop", "obtain")
        assert client.inputs["capabilities"] == {"drops": ["ALL"]} and client.inputs["readOnly"] is True
        assert "ACME_NAMES=shop.dev www.shop.dev" in client.inputs["envs"]
        assert not any(e.startswith(("ACME_KEY", "LEGO_", "ACME_ACCOUNT")) for e in client.inputs["envs"])
        assert {v["containerPath"] for v in client.inputs["volumes"]} == {"/acme", "/var/www/acme", "/etc/nginx/site"}
    assert job.inputs["timeoutSeconds"] == 300  # the first `pulumi up` waits for the CA, bounded
    assert job.urn in renewer.options["dependencies"]
    volumes = {v.label("django-docker.volume"): v for v in plan.of_type(VOLUME)}
    assert volumes["acme"].options["protect"] and volumes["acme"].options["retain_on_delete"]
    assert not volumes["acme-webroot"].options["protect"]
    assert [p["internal"] for p in nginx.inputs["ports"]] == [80, 443]
    assert "/var/www/acme" in {v["containerPath"] for v in nginx.inputs["volumes"]}
    (site,) = plan.of_type(NGINX_SITE)
    assert site.inputs["acmeNames"] == ["shop.dev", "www.shop.dev"]
    conf = plan.nginx_conf()
    assert "ssl_certificate /etc/nginx/site/acme/server.crt;" in conf
    assert "location ^~ /.well-known/acme-challenge/ {\n            root /var/www/acme;" in conf
    web = dict(e.split("=", 1) for e in plan.container("django-docker-web-1").inputs["envs"])
    assert web["DJANGO_SECURE_SSL_REDIRECT"] == "true"


def test_manual_tls_plans_no_acme_client():
    plan = plan_prod()
    assert not [r for r in plan.resources if "acme" in r.name]


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_the_acme_script_is_valid_shell_and_refuses_an_unknown_mode():
    assert subprocess.run(["sh", "-n", "-c", render.ACME_SCRIPT], capture_output=True).returncode == 0
    result = subprocess.run(
        ["sh", "-c", render.ACME_SCRIPT, "acme", "bogus"],
        env={
            "ACME_NAMES": "a.dev",
            "ACME_EMAIL": "e@a.dev",
            "ACME_DIRECTORY": "https://x/dir",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout.strip()) == (2, "acme: unknown mode bogus (obtain, renew, loop)")
    with pytest.raises(ValueError):
        render.acme_command("bogus")
