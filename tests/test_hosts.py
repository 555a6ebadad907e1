"""Host matching: one normalisation and one suffix rule, shared by site checks and referrer classification."""

from __future__ import annotations

import pytest

from tracker.control.models import Site, SiteDomain
from tracker.control.sites import site_allows_host
from tracker.enrich.referrer import classify_referrer
from tracker.hosts import host_in_domains, normalize_host


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("example.com", "example.com"),
        ("EXAMPLE.Com", "example.com"),
        ("example.com.", "example.com"),
        ("example.com:8080", "example.com"),
        ("example.com.:443", "example.com"),
        ("www.example.com", "example.com"),
        ("WWW.Example.COM.:8443", "example.com"),
        ("www.www.example.com", "www.example.com"),  # only one leading www. is the site's alias
        ("wwwexample.com", "wwwexample.com"),
        ("  example.com  ", "example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("www.BÜCHER.de:80", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[::1]", "::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("192.0.2.7:80", "192.0.2.7"),
        ("", ""),
    ],
)
def test_normalize_host(given: str, expected: str) -> None:
    assert normalize_host(given) == expected


DOMAINS = ("example.com", "xn--bcher-kva.de")


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "www.example.com",
        "shop.example.com",
        "a.b.example.com",
        "EXAMPLE.COM",
        "example.com.",
        "example.com:8443",
        "Shop.Example.com.:443",
        "bücher.de",
        "www.bücher.de",
        "xn--bcher-kva.de",
        "shop.xn--bcher-kva.de",
    ],
)
def test_a_domain_and_its_subdomains_match(host: str) -> None:
    assert host_in_domains(host, DOMAINS)


@pytest.mark.parametrize(
    "host",
    [
        "evilexample.com",
        "evil-example.com",
        "example.com.evil.net",
        "example.co",
        "com",
        "bucher.de",
        "evil.com/.example.com",
        "evil.com#.example.com",
        "user@example.com",
        ".example.com",
        "evil..example.com",
        "exa mple.com",
        "[::1]",
        "",
    ],
)
def test_other_hosts_and_crafted_values_do_not_match(host: str) -> None:
    assert not host_in_domains(host, DOMAINS)


def test_domains_are_normalised_too() -> None:
    assert host_in_domains("shop.example.com", ["WWW.Example.com.:443"])
    assert host_in_domains("www.bücher.de", ["BÜCHER.de"])
    assert not host_in_domains("example.com", ["", "www."])


SITE = Site(name="Shop", domains=[SiteDomain(domain=d) for d in DOMAINS])


@pytest.mark.parametrize(
    "host",
    ["example.com", "www.example.com", "shop.example.com:8080", "EXAMPLE.com.", "www.bücher.de",
     "evilexample.com", "example.com.evil.net", "bucher.de", "other.org"],
)
def test_site_checks_and_referrer_classification_agree(host: str) -> None:
    """A host a site accepts pages from is exactly a host whose referrals count as internal."""
    referral = classify_referrer(f"https://{host}/page", "unrelated.example.org", DOMAINS)
    internal = referral.source == "internal"
    assert site_allows_host(SITE, host) == internal == host_in_domains(host, DOMAINS)
