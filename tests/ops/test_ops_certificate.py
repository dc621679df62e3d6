"""`make status`'s certificate lines: the served chain parsed, days left, the warning below 14."""

from __future__ import annotations

import datetime

from ops.certificate import WARN_DAYS, certificate_lines, parse_served
from rehearsal.checks.tls import certificates_for

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)


def curl_certs(cert_pem: str) -> str:
    """What curl's --write-out %{certs} prints: fields, then each certificate's PEM."""
    return f"Subject:CN = shop.dev\nIssuer:CN = rehearsal CA\nVersion:2\n{cert_pem}\n"


def served(days: int, names=("shop.dev", "www.shop.dev")):
    certs = certificates_for(
        "shop.dev",
        names=list(names),
        valid_from=NOW - datetime.timedelta(days=1),
        valid_until=NOW + datetime.timedelta(days=days, hours=1),
    )
    return parse_served(curl_certs(certs.cert_pem))


def test_names_expiry_and_days_left():
    found = served(60)
    assert found is not None and found.names == ("shop.dev", "www.shop.dev")
    (line,) = certificate_lines(found, NOW)
    assert line.startswith("certificate: shop.dev, www.shop.dev, expires 2027-02-05 13:00 UTC (60 days left)")
    assert line.endswith("issued by django-docker rehearsal CA")


def test_a_warning_below_fourteen_days():
    assert len(certificate_lines(served(WARN_DAYS), NOW)) == 1
    line, warning = certificate_lines(served(WARN_DAYS - 1), NOW)
    assert "(13 days left)" in line
    assert warning.startswith("WARNING: the certificate expires in 13 days (renewal starts 30 days before)")


def test_no_certificate_in_the_answer():
    assert parse_served("curl: (7) Failed to connect") is None
    assert certificate_lines(None, NOW, error="exec failed") == [
        "certificate: none read from nginx's port 443 (exec failed)"
    ]
