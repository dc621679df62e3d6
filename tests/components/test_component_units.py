"""Unit tests of the components' own logic: promotion checks, argument invariants, options."""

import pytest

from components.image import ImagePromotionError, check_promotable
from components.settings import NginxSettings, SettingsError, WebSettings, is_digest_ref, parse_image_ref

DIGEST = "ghcr.io/acme/web@sha256:" + "a" * 64


def test_promotable_digest_passes_through():
    assert check_promotable("org/p/dev", DIGEST, True) == DIGEST


@pytest.mark.parametrize(
    "ref, pushed, fragment",
    [
        (None, True, "has no imageRef output"),
        ("", True, "has no imageRef output"),
        ("acme/web:1.0", True, "not a repo@sha256:<64 hex> digest"),
        (42, True, "not a repo@sha256:<64 hex> digest"),
        ("sha256:" + "b" * 64, False, "is local to its Docker host"),
        (DIGEST, False, "is local to its Docker host"),
        (DIGEST, None, "is local to its Docker host"),
    ],
)
def test_unpromotable_outputs_are_refused(ref, pushed, fragment):
    with pytest.raises(ImagePromotionError) as error:
        check_promotable("org/p/dev", ref, pushed)
    assert fragment in str(error.value)
    assert str(error.value).startswith("imageSourceStack: org/p/dev")


def test_image_reference_parsing():
    assert parse_image_ref("k", "postgres:15.14-bookworm").tag == "15.14-bookworm"
    assert (
        parse_image_ref("k", "registry.example.com:5000/team/nginx:1.28.0").repository
        == "registry.example.com:5000/team/nginx"
    )
    assert parse_image_ref("k", "redis@sha256:" + "c" * 64).digest == "sha256:" + "c" * 64
    with pytest.raises(SettingsError):
        parse_image_ref("k", "acme/Web:1")  # path components are lowercase
    assert is_digest_ref(DIGEST)
    assert not is_digest_ref("acme/web:1")
    assert not is_digest_ref("sha256:" + "a" * 64)  # a local id is not promotable


def test_settings_sections_invariants():
    with pytest.raises(ValueError, match="replicas"):
        WebSettings(replicas=0, memory_mb=1, concurrency=1, timeout=1, threads=1, max_requests=0, max_requests_jitter=0)
    with pytest.raises(ValueError, match="go together"):
        NginxSettings(
            image=parse_image_ref("k", "nginx:1.28.0"),
            memory_mb=64,
            server_name="x",
            bind_address="127.0.0.1",
            http_port=80,
            https_port=443,
            client_max_body_size="1m",
            tls_certificate="cert",
            tls_key=None,
            hsts_seconds=0,
        )


def test_healthcheck_wait_covers_the_start_period_and_two_probe_cycles():
    from components.settings import Healthcheck

    assert Healthcheck(interval="10s", timeout="10s", retries=3, start_period="30s").wait_seconds == 70
    assert Healthcheck(interval="1m30s", timeout="1.5s", retries=1, start_period="0s").wait_seconds == 183


def test_container_options_state_the_replacement_order_and_replace_on_any_change():
    import pulumi

    from components.common import REPLACE_ON_ANY_CHANGE, container_options

    parent = object.__new__(pulumi.ComponentResource)
    for order in (True, False):
        options = container_options(parent, pulumi.ResourceOptions(depends_on=[parent]), delete_before_replace=order)
        assert options.delete_before_replace is order
        assert options.replace_on_changes == REPLACE_ON_ANY_CHANGE == ["*"]
        assert options.depends_on == [parent] and options.parent is parent
