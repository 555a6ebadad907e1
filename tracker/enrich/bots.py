"""Decide whether a user agent is a bot, and say why, from a closed set of reasons.

Bots and headless browsers counted as people is a top complaint about today's trackers (Umami #3795,
Matomo #24406). ua-parser's "Spider" device family (what ``user-agents``' ``is_bot`` reads) misses
most of them, so this module combines five signals:

- ``empty_ua``: no user agent at all (or ``-``); no browser sends that.
- ``headless``: automation markers (HeadlessChrome, PhantomJS, Puppeteer, Playwright, Selenium,
  Lighthouse, ...), and crawler-list entries tagged ``browser-automation``.
- ``http_client``: HTTP libraries and command-line tools (curl, Wget, python-requests, aiohttp,
  Go-http-client, axios, node-fetch, okhttp, Java, ...), and crawler-list entries tagged
  ``http-library``. Clients named by common words (got, node, Ruby, Bun, Java, ...) count only as
  a ``name/version`` product token or at the start of the agent, because real browsers carry those
  words too: in-app browser and Electron app names, Android device code names.
- ``crawler_list``: any other pattern of the maintained ``crawler-user-agents`` list.
- ``ua_library``: ua-parser's own "Spider" verdict, i.e. ``user-agents``' ``is_bot``.

The crawler list has ~1,500 regexes. Python's ``re`` tries an alternation branch by branch: one
combined pattern costs ~1,160 us per browser UA, the package's own chunks of 25 ~230 us. They are
instead compiled once, with our headless and HTTP-client markers, into ``ua-parser-rs``' regex-set
extractor (a Rust regex set with literal prefilters, the engine that parses browsers): ~3 us per
UA, identical matches on all 2,123 example instances. A pattern that engine rejects (look-around,
say, in a future list) falls back to one Python alternation of the rejects, so a data update cannot
break the build.

Measured on crawler-user-agents 1.67 (2,123 example ``instances`` over 1,504 patterns) and a list of
67 current real browser, in-app, app, TV and console UAs (``tests/test_enrich_bots.py``):

- ``user-agents`` 2.2 ``is_bot`` alone flags 1,266 of 2,123 instances (59.6 %); ua-parser 1.0.2's
  newer built-in regexes (the ``ua_library`` signal here) flag 1,324 (62.4 %);
- this detector flags 2,123 of 2,123 (100 %): crawler_list 1,975, http_client 119, headless 29;
- false positives on the 67 real browser UAs: 0 (0 for user-agents alone too).

Call ``tracker.enrich.device.parse_device(ua)`` on the hot path: it parses once, caches by UA string,
and carries ``is_bot`` and ``bot_reason`` computed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from tracker.enrich.lazy import Once


class BotReason(StrEnum):
    """Why a user agent counts as a bot; stored with the event, so reports can split by it."""

    EMPTY_UA = "empty_ua"
    HEADLESS = "headless"
    HTTP_CLIENT = "http_client"
    CRAWLER_LIST = "crawler_list"
    UA_LIBRARY = "ua_library"


# HTTP clients (regex fragments) whose names no browser or in-app agent carries as a word.
_CLIENT_NAMES = (
    "curl", "libcurl", "wget", "python-requests", "python-urllib", "python-httpx", "httpx", "aiohttp",
    r"urllib3?", "go-http-client", "axios", "node-fetch", "undici", "okhttp", "apache-httpclient",
    "libwww-perl", r"lwp-\w+", "faraday", "typhoeus", r"http\.rb", "guzzlehttp", "postmanruntime", "httpie",
    "scrapy", "restsharp", "reqwest", r"(?:windows)?powershell", "winhttp", "cpp-httplib",
)
# HTTP clients named by words that real agents also hold: app names ("Ruby Rewards/3.4" in an Electron
# UA, "You Got Mail/4.2" in an iOS in-app browser), device code names ("ruby" in Instagram's Android UA).
_CLIENT_WORDS = (
    "python", "node", "got", "java", "jakarta", "ruby", "mechanize", "php", "insomnia", "dart", "deno",
    "bun", "wordpress",
)
_WORDS = "|".join(_CLIENT_WORDS)

# Our own markers, written as crawler-list entries so the tags give the reason and one regex set
# checks them with the list. They come first: the set reports the first pattern that matches.
_OWN_ENTRIES: list[dict] = [
    {  # automation markers that script-driven browsers leave; real browsers never carry them
        "pattern": r"(?i)Headless|PhantomJS|SlimerJS|Puppeteer|Playwright|Selenium|WebDriver|Lighthouse"
        r"|HtmlUnit|\bjsdom/|\bCypress/|\bNightmare/",
        "tags": ["browser-automation"],
    },
    {  # HTTP libraries and tools: the name opens the UA or follows a space ("Python/3.12 aiohttp/3.9")
        "pattern": rf"(?i)(?:^|\s)(?:{'|'.join(_CLIENT_NAMES)})(?:[/\s;(]|$)",
        "tags": ["http-library"],
    },
    {  # clients named by common words: only as a product token ("got/11.8", "ruby/3.2") anywhere, or
        # opening the UA ("Ruby", "got (https://...)", "Jakarta Commons-HttpClient/3.1")
        "pattern": rf"(?i)(?:^|\s)(?:{_WORDS})/\d|^(?:{_WORDS})(?:[\s;(]|$)",
        "tags": ["http-library"],
    },
]
_TAG_REASONS = {"browser-automation": BotReason.HEADLESS, "http-library": BotReason.HTTP_CLIENT}


@dataclass(frozen=True, slots=True)
class PatternMatcher:
    """Patterns compiled once: a Rust regex set, plus Python ``re`` for what it rejects."""

    rust: object  # ua_parser_rs.UserAgentExtractor; its "family" is the pattern's index
    fallback: re.Pattern[str] | None  # the patterns the Rust engine rejected, tags not kept
    reasons: tuple[BotReason, ...]

    def reason(self, user_agent: str) -> str:
        hit = self.rust.extract(user_agent)  # type: ignore[attr-defined]
        if hit is not None:
            return self.reasons[int(hit.family)]
        if self.fallback is not None and self.fallback.search(user_agent):
            return BotReason.CRAWLER_LIST
        return ""


def compile_patterns(entries: list[dict]) -> PatternMatcher:
    """Compile entries shaped like crawler-user-agents' (``pattern``, ``tags``) into one matcher.

    The reason of a match comes from the entry's tags; the first entry that matches wins.
    """
    import ua_parser_rs

    def extractor(indexed: list[tuple[int, str]]) -> object:
        return ua_parser_rs.UserAgentExtractor([(p, str(i), None, None, None, None) for i, p in indexed])

    indexed = [(i, e["pattern"]) for i, e in enumerate(entries)]
    rejected: list[str] = []
    try:
        rust = extractor(indexed)
    except ValueError:
        accepted = []
        for i, pattern in indexed:
            try:
                extractor([(i, pattern)])
                accepted.append((i, pattern))
            except ValueError:
                rejected.append(pattern)
        rust = extractor(accepted)
    reasons = tuple(
        next((_TAG_REASONS[t] for t in e.get("tags", ()) if t in _TAG_REASONS), BotReason.CRAWLER_LIST)
        for e in entries
    )
    fallback = re.compile("|".join(f"(?:{p})" for p in rejected)) if rejected else None
    return PatternMatcher(rust, fallback, reasons)


def _load_patterns() -> PatternMatcher:
    from crawleruseragents import CRAWLER_USER_AGENTS_DATA

    return compile_patterns(_OWN_ENTRIES + CRAWLER_USER_AGENTS_DATA)


_PATTERNS: Once[PatternMatcher] = Once(_load_patterns)


def reason_for(user_agent: str, device_family: str) -> str:
    """The bot reason for ``user_agent``, or '' for a human.

    ``device_family`` is ua-parser's device family for the same string ("Spider" for its bots);
    ``parse_device`` passes it so the string is parsed only once. Uncached: use ``parse_device``.
    """
    if not user_agent.strip() or user_agent == "-":
        return BotReason.EMPTY_UA
    listed = _PATTERNS.get().reason(user_agent)
    if listed:
        return listed
    if device_family == "Spider":
        return BotReason.UA_LIBRARY
    return ""
