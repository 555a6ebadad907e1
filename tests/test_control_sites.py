"""Sites: domain normalisation, add/get/list, and which hosts a site accepts."""

from __future__ import annotations

import re

import pytest

from tracker.control.db import ControlPlane
from tracker.control.models import DEFAULT_SITE_OPTIONS, Site, SiteDomain
from tracker.control.sites import add_site, get_site, list_sites, normalize_domain, site_allows_host
from tracker.errors import NotFound, OdnosError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("example.com", "example.com"),
        ("https://www.example.com/", "example.com"),
        ("HTTP://Example.COM:8080/path?q=1#top", "example.com"),
        ("  shop.example.co.uk.  ", "shop.example.co.uk"),
        ("//cdn.example.com", "cdn.example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("www.blog.example.com", "blog.example.com"),
    ],
)
def test_domains_are_normalised(given: str, expected: str) -> None:
    assert normalize_domain(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "   ",
        "localhost",
        "not a domain",
        "ftp://example.com",
        "javascript:alert(1)",
        "user:pw@example.com",
        "ann@example.com",
        "-bad.example.com",
        "exa_mple.com",
        "example..com",
        "[::1]",
        "example.com:port",
        "a" * 64 + ".com",
        ".".join(["abc"] * 70),
        123,
    ],
)
def test_garbage_domains_are_refused(given: str) -> None:
    with pytest.raises(OdnosError) as caught:
        normalize_domain(given)
    assert caught.value.code == "bad_domain"


def test_add_site_normalises_and_merges_domains(control: ControlPlane) -> None:
    with control.session() as session:
        site = add_site(session, " Blog ", ["https://www.example.com/", "example.com", "Shop.Example.org"])
    with control.session() as session:
        stored = get_site(session, site.id)
    assert re.fullmatch(r"s_[a-z0-9]{10}", stored.id)
    assert stored.name == "Blog"
    assert [d.domain for d in stored.domains] == ["example.com", "shop.example.org"]
    assert stored.options == DEFAULT_SITE_OPTIONS
    assert re.fullmatch(r"[0-9a-f]{64}", stored.identify_secret)


def test_sites_get_distinct_ids_and_secrets(control: ControlPlane) -> None:
    with control.session() as session:
        sites = [add_site(session, f"Site {n}", ["example.com"]) for n in range(5)]
    assert len({s.id for s in sites}) == len({s.identify_secret for s in sites}) == 5


def test_add_site_takes_options(control: ControlPlane) -> None:
    with control.session() as session:
        site = add_site(session, "Blog", ["example.com"], options={"respect_dnt": True})
    with control.session() as session:
        assert get_site(session, site.id).options == {**DEFAULT_SITE_OPTIONS, "respect_dnt": True}


@pytest.mark.parametrize(
    ("name", "domains", "options", "code"),
    [
        ("Blog", [], None, "bad_domain"),
        ("Blog", "example.com", None, "bad_domain"),
        ("Blog", ["example.com", "garbage"], None, "bad_domain"),
        ("", ["example.com"], None, "bad_name"),
        ("x" * 201, ["example.com"], None, "bad_name"),
        ("Blog", ["example.com"], {"cookies": True}, "bad_option"),
        ("Blog", ["example.com"], {"cookieless": "yes"}, "bad_option"),
    ],
)
def test_add_site_refuses_bad_input(
    control: ControlPlane, name: str, domains: list[str], options: dict | None, code: str
) -> None:
    with pytest.raises(OdnosError) as caught, control.session() as session:
        add_site(session, name, domains, options)
    assert caught.value.code == code
    with control.session() as session:
        assert list_sites(session) == []


@pytest.mark.parametrize("site_id", ["s_0000000000", "", None])
def test_get_unknown_site_is_not_found(control: ControlPlane, site_id: str) -> None:
    with pytest.raises(NotFound) as caught, control.session() as session:
        get_site(session, site_id)
    assert (caught.value.code, caught.value.status) == ("unknown_site", 404)


def test_list_sites_in_the_order_they_were_added(control: ControlPlane) -> None:
    names = ["Zeta", "Alpha", "Mid"]
    for name in names:
        with control.session() as session:
            add_site(session, name, [f"{name.lower()}.example.com"])
    with control.session() as session:
        listed = list_sites(session)
    assert [s.name for s in listed] == names
    assert [d.domain for d in listed[0].domains] == ["zeta.example.com"]  # usable after the session


SITE = Site(name="Blog", domains=[SiteDomain(domain="example.com"), SiteDomain(domain="shop.example.org")])


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "www.example.com",
        "blog.example.com",
        "EXAMPLE.com:443",
        "https://www.example.com/page?x=1",
        "example.com.",
        "shop.example.org",
        "www.shop.example.org",
        "eu.shop.example.org",
    ],
)
def test_site_allows_its_domains_and_their_subdomains(host: str) -> None:
    assert site_allows_host(SITE, host)


@pytest.mark.parametrize(
    "host",
    [
        "evil-example.com",
        "example.com.evil.net",
        "notexample.com",
        "example.org",
        "other.example.org",
        "localhost",
        "",
        "not a host",
        None,
    ],
)
def test_site_refuses_other_hosts(host: str) -> None:
    assert not site_allows_host(SITE, host)
