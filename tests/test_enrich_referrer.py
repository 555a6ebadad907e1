"""Referrer classification, UTM parameters and URL splitting."""

from __future__ import annotations

import pytest

from tracker.enrich import referrer as ref
from tracker.enrich.referrer import UTM_KEYS, Referrer, classify_referrer, split_url, utm_params

SITE = ("example.com", "example.net")


def classify(url: str, utm_medium: str = "") -> Referrer:
    return classify_referrer(url, "www.example.com", SITE, utm_medium=utm_medium)


@pytest.mark.parametrize(
    ("url", "domain", "name"),
    [
        ("https://www.google.com/", "google.com", "Google"),
        ("https://www.google.co.uk/", "google.co.uk", "Google"),
        ("https://www.google.com.br/search?q=x", "google.com.br", "Google"),
        ("https://google.de/", "google.de", "Google"),
        (
            "android-app://com.google.android.googlequicksearchbox/",
            "com.google.android.googlequicksearchbox",
            "Google",
        ),
        ("https://www.bing.com/search?q=x", "bing.com", "Bing"),
        ("https://duckduckgo.com/", "duckduckgo.com", "DuckDuckGo"),
        ("https://r.search.yahoo.com/_ylt=x", "r.search.yahoo.com", "Yahoo"),
        ("https://yandex.ru/search/?text=x", "yandex.ru", "Yandex"),
        ("https://yandex.com.tr/", "yandex.com.tr", "Yandex"),
        ("https://www.baidu.com/link?url=x", "baidu.com", "Baidu"),
        ("https://www.ecosia.org/search?q=x", "ecosia.org", "Ecosia"),
        ("https://search.brave.com/search?q=x", "search.brave.com", "Brave"),
        ("https://m.search.naver.com/search.naver?query=x", "m.search.naver.com", "Naver"),
        ("https://search.seznam.cz/?q=x", "search.seznam.cz", "Seznam"),
    ],
)
def test_search_engines(url, domain, name):
    assert classify(url) == Referrer(domain, "search", name)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://l.facebook.com/l.php?u=x", "Facebook"),
        ("https://m.facebook.com/", "Facebook"),
        ("https://l.instagram.com/?u=x", "Instagram"),
        ("https://t.co/abc", "X"),
        ("https://x.com/someone/status/1", "X"),
        ("https://twitter.com/", "X"),
        ("https://www.linkedin.com/feed/", "LinkedIn"),
        ("https://lnkd.in/abc", "LinkedIn"),
        ("https://old.reddit.com/r/python/", "Reddit"),
        ("https://www.youtube.com/watch?v=x", "YouTube"),
        ("https://www.pinterest.com/pin/1/", "Pinterest"),
        ("https://www.tiktok.com/@x", "TikTok"),
        ("https://news.ycombinator.com/item?id=1", "Hacker News"),
    ],
)
def test_social_networks(url, name):
    result = classify(url)
    assert (result.source, result.name) == ("social", name)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://mail.google.com/mail/u/0/", "Gmail"),
        ("android-app://com.google.android.gm/", "Gmail"),
        ("https://outlook.live.com/mail/0/", "Outlook"),
        ("https://outlook.office.com/mail/", "Outlook"),
        ("https://nam10.safelinks.protection.outlook.com/?url=x", "Outlook"),
        ("https://mail.yahoo.com/d/folders/1", "Yahoo Mail"),
        ("https://mail.yandex.ru/", "Yandex Mail"),
    ],
)
def test_webmail_is_email(url, name):
    result = classify(url)
    assert (result.source, result.name) == ("email", name)


def test_utm_medium_email_wins_over_the_referrer():
    assert classify("", utm_medium="email") == Referrer("", "email", "")
    assert classify("https://blog.example.org/", utm_medium="Newsletter").source == "email"


def test_empty_or_unparseable_referrer_is_direct():
    assert classify("") == Referrer("", "direct", "")
    assert classify("http://[::1") == Referrer("", "direct", "")


@pytest.mark.parametrize(
    "url",
    [
        "https://www.example.com/pricing",
        "https://example.com/",
        "https://shop.example.com/cart",
        "https://EXAMPLE.NET:8443/x",
    ],
)
def test_the_site_itself_is_internal(url):
    assert classify(url).source == "internal"


def test_internal_matching_normalises_the_site_domains_like_the_site_check():
    """Trailing dots, ports, case, www. and international names, on the referrer and the domain side."""
    domains = ["WWW.Bücher.de.", "shop.example.org:8443"]
    for url in ("https://xn--bcher-kva.de./a", "https://www.BÜCHER.de:8080/", "https://eu.shop.example.org/"):
        assert classify_referrer(url, "cdn.example.net", domains).source == "internal", url
    for url in ("https://bucher.de/", "https://evilbücher.de/", "https://example.org/"):
        assert classify_referrer(url, "cdn.example.net", domains).source == "other", url


def test_an_international_referrer_domain_is_stored_in_punycode():
    assert classify("https://www.bücher.de/x") == Referrer("xn--bcher-kva.de", "other", "")


def test_internal_beats_utm_email():
    assert classify("https://example.com/a", utm_medium="email").source == "internal"


def test_page_host_alone_makes_internal_even_if_not_listed():
    assert classify_referrer("https://preview.odnos.dev/", "preview.odnos.dev", []).source == "internal"


def test_lookalike_domains_are_not_internal():
    assert classify("https://notexample.com/").source == "other"
    assert classify("https://example.com.evil.io/").source == "other"


def test_unknown_sites_are_other_with_their_domain():
    assert classify("https://www.someblog.org/post") == Referrer("someblog.org", "other", "")
    assert classify("https://mastodon.social/@x") == Referrer("mastodon.social", "other", "Mastodon")


def test_google_services_are_not_search():
    assert classify("https://accounts.google.com/").source == "other"
    assert classify("https://www.google.someblog.org/").source == "other"


def test_host_lookups_are_cached():
    ref._classify.cache_clear()
    ref._classify_host.cache_clear()
    for _ in range(3):
        classify("https://www.bing.com/search?q=x")
    info = ref._classify.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    classify("https://www.bing.com/search?q=other")  # another URL, the same host: one host lookup
    assert ref._classify_host.cache_info().misses == 1


def test_utm_params():
    url = "https://example.com/?utm_source=news%20letter&utm_medium=email&utm_campaign=spring&utm_source=dup"
    assert utm_params(url) == {
        "utm_source": "news letter",
        "utm_medium": "email",
        "utm_campaign": "spring",
        "utm_term": "",
        "utm_content": "",
    }


def test_utm_params_absent():
    assert utm_params("https://example.com/a?x=1") == dict.fromkeys(UTM_KEYS, "")
    assert utm_params("not a url") == dict.fromkeys(UTM_KEYS, "")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://WWW.Example.COM:8443/a/b?x=1#frag", ("www.example.com", "/a/b")),
        ("https://example.com", ("example.com", "/")),
        ("https://example.com./docs/", ("example.com", "/docs/")),
        ("http://[2001:db8::1]:8080/p", ("2001:db8::1", "/p")),
        ("http://[::1", ("", "")),
        ("", ("", "")),
    ],
)
def test_split_url(url, expected):
    assert split_url(url) == expected
