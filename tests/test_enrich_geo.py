"""country_of: countries for public addresses, '' for everything else."""

from __future__ import annotations

import pytest

from tracker.enrich.geo import country_of


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),
        ("81.2.69.142", "GB"),
        ("1.1.1.1", "AU"),
        ("2001:4860:4860::8888", "US"),
        ("::ffff:8.8.8.8", "US"),
        (" 8.8.8.8 ", "US"),
    ],
)
def test_public_addresses(ip, country):
    assert country_of(ip) == country


@pytest.mark.parametrize(
    "ip",
    ["10.1.2.3", "192.168.0.1", "172.16.5.4", "127.0.0.1", "100.64.0.1", "192.0.2.1", "::1", "fe80::1"],
)
def test_private_and_reserved_addresses_have_no_country(ip):
    assert country_of(ip) == ""


@pytest.mark.parametrize("ip", ["", "bogus", "999.1.1.1", "1.2.3", "::ffff:", "8.8.8.8:443", "8.8.8.8\x00"])
def test_malformed_addresses_have_no_country(ip):
    assert country_of(ip) == ""
