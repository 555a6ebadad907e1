"""Decide whether a user agent is a bot, and say why, from a closed set of reasons.

Bots and headless browsers counted as people is a top complaint about today's trackers (Umami #3795,
Matomo #24406). ua-parser's "Spider" device family (what ``user-agents``' ``is_bot`` reads) misses
most of them, and any list misses the bots written since it was, so two maintained lists are combined
with rules on the shape of the agent that catch bots no list has seen:

- ``empty_ua``: no user agent at all (or ``-``); no browser sends that.
- ``headless``: automation engines that name themselves (HeadlessChrome, PhantomJS, Puppeteer,
  Playwright, Selenium, Lighthouse, Prerender, wkhtmltopdf, ...), and crawler-list entries tagged
  ``browser-automation``.
- ``http_client``: HTTP libraries and command-line tools (curl, Wget, python-requests, aiohttp,
  Go-http-client, axios, node-fetch, okhttp, Java, ...), and crawler-list entries tagged
  ``http-library``. Clients named by common words (got, node, Ruby, Bun, Java, ...) count only as
  a ``name/version`` product token or at the start of the agent, because real browsers carry those
  words too: in-app browser and Electron app names, Android device code names.
- ``crawler_list``: any other pattern of the maintained ``crawler-user-agents`` list (MIT).
- ``ua_library``: ua-parser's own "Spider" verdict (uap-core's regexes, Apache-2.0).
- ``self_declared``: the agent calls itself what it is: bot, crawler, spider, scanner, monitor,
  fetcher, checker, validator, preview, archiver, ... as a word of its own.
- ``contact``: a URL or an email address in the agent, which is how bot operators say who they are;
  no browser puts one there.
- ``compatible_other``: ``(compatible; X`` where X is no browser (MSIE, Konqueror and Outlook's
  ``ms-office`` are); a crawler's way to pass for Internet Explorer's family.
- ``tool_agent``: an agent that is product tokens alone (``name/version``, or a bare word), with no
  browser engine and no platform: browsers, in-app browsers, mail and media apps and feature phones
  all say which system they run on; tools and scripts do not.
- ``malformed``: template placeholders left in (``${...}``, ``{{...}}``, ``firefoxversion``),
  code injected into the header, or a bare ``Mozilla/5.0 (...)`` with nothing after it (unless
  it is Internet Explorer's, whose whole agent that is).
- ``datacenter``: not from the agent: a web hit from a cloud provider's or a mail gateway's network
  (``tracker.enrich.networks``), as Plausible drops datacentre traffic; the collector sets it on a
  beacon whose agent passed every rule above.

The lists come first, so a listed bot keeps the list's reason; the shape rules only name what no
list knew. The crawler list has ~1,500 regexes. Python's ``re`` tries an alternation branch by
branch (about 1 ms per browser UA for one combined pattern), so the lists' patterns and the regex
rules are compiled once into ``ua-parser-rs``' regex-set extractor (a Rust regex set with literal
prefilters, the engine that parses browsers), which checks them all in one pass. A pattern that
engine rejects (look-around, say, in a future list) falls back to one Python alternation of the
rejects, so a data update cannot break the build. The two rules that need a negative test
(``compatible_other``, ``tool_agent``) are plain Python, and run only for agents that do not open
like a browser's or that hold ``compatible``.

How well this does is measured by ``benchmarks/bots_eval.py`` on agents from sources the detector
does not use (Matomo's Device Detector fixtures, fake-useragent's browser share data), through the
real collector; ``tests/test_machines_eval.py`` holds it to its thresholds.

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
    SELF_DECLARED = "self_declared"
    CONTACT = "contact"
    COMPATIBLE_OTHER = "compatible_other"
    TOOL_AGENT = "tool_agent"
    MALFORMED = "malformed"
    DATACENTER = "datacenter"


# HTTP clients (regex fragments) whose names no browser or in-app agent carries as a word.
_CLIENT_NAMES = (
    "curl", "libcurl", "wget", "python-requests", "python-urllib", "python-httpx", "httpx", "aiohttp",
    r"urllib3?", "go-http-client", "axios", "node-fetch", "undici", "okhttp", "apache-httpclient",
    "libwww-perl", r"lwp-\w+", "faraday", "typhoeus", r"http\.rb", "guzzlehttp", "postmanruntime", "httpie",
    "scrapy", "restsharp", "reqwest", r"(?:windows)?powershell", "winhttp", "cpp-httplib", "libsoup",
    "request-promise", r"http-tiny", "grequests", r"symfony httpclient", "apachebench", "gobuster",
)
# HTTP clients named by words that real agents also hold: app names ("Ruby Rewards/3.4" in an Electron
# UA, "You Got Mail/4.2" in an iOS in-app browser), device code names ("ruby" in Instagram's Android UA).
_CLIENT_WORDS = (
    "python", "node", "got", "java", "jakarta", "ruby", "mechanize", "php", "insomnia", "dart", "deno",
    "bun", "wordpress", r"node\.js",
)
_WORDS = "|".join(_CLIENT_WORDS)
# Automation engines and page renderers that name themselves; no person's browser carries these.
_AUTOMATION = (
    "Headless", "PhantomJS", "SlimerJS", "Puppeteer", "Playwright", "Selenium", "WebDriver", "ChromeDriver",
    "geckodriver", "Lighthouse", "HtmlUnit", r"\bjsdom/", r"\bCypress/", r"\bNightmare/", r"\bZombie\.js",
    "CasperJS", "Prerender", "Rendertron", "wkhtmlto", r"\bSplash/", r"\bPTST/", "Page ?Speed",
    "GTmetrix", "DynatraceSynthetic", "Puppeteer", "browserless", "Apify",
)
# What bots call themselves, as a word of its own (``_`` and digits count as word ends: "foo_bot2").
# "bot" needs a word start (the phone brand "CUBOT" is no bot) and, when a space or a digit follows,
# is a phone's model name ("M bot 54", "VR BOT 552"); device names like "Discovery" are left out.
_SELF_NAMES = (
    "robot", r"crawl\w*", "spider", "scraper", r"scann?(?:er|ing)?", "checker", "check", r"monitor\w*",
    "uptime", r"fetch(?:er|ing)?", "validator", r"analy[sz]er", "probe", "harvester", "indexer", "archiver",
    "sitemap", "preview", "lookup", "audit", "survey", r"research\w*", "extractor", "finder",
    "screenshot", r"health ?check\w*", "linkchecker", "recon", "pinger", "ping", "tester", "benchmark",
    "parser", "aggregator", "observatory", r"prospect\w*",
)
_ENDS = r"(?:\b|_|\d)"

# Our own markers, written as crawler-list entries so the tags give the reason and one regex set
# checks them with the list. The set reports the first pattern that matches: the HTTP-client and
# automation markers come before the list, the shape rules after it.
_OWN_ENTRIES: list[dict] = [
    {  # automation markers that script-driven browsers leave; real browsers never carry them
        "pattern": "(?i)" + "|".join(_AUTOMATION),
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
_SHAPE_ENTRIES: list[dict] = [
    {"pattern": rf"(?i)(?:\b|_)(?:{'|'.join(_SELF_NAMES)}){_ENDS}|(?:\b|_)bots?(?:[/;),:+-]|$)",
     "tags": ["self-declared"]},
    {  # the same names closing a CamelCase product token ("CloudflareObservatory/1.0", "AcmeAgent")
        "pattern": r"[a-z](?:Bot|Crawler|Spider|Scanner|Checker|Monitor|Fetcher|Observatory|Prospecting"
        r"|Agent)(?:[A-Z]\w*)?(?:/|\s|$)",
        "tags": ["self-declared"],
    },
    {  # Google's fetchers name themselves X-Google or Google-X (AdsBot-Google, Google-InspectionTool),
        # or in words (Google Search Console); people's Google apps are GSA/ and GoogleApp, no dash
        "pattern": r"\b\w+-Google\b|\bGoogle-[A-Z]\w*|\bGoogle (?:Search Console|Web Preview|Page Renderer)",
        "tags": ["self-declared"],
    },
    {  # a URL, a bare domain of a common TLD, or an email address (also written "x at y dot com")
        "pattern": r"(?i)https?:/|\bwww\.\w|[\w.+-]@[a-z][\w-]*\.[a-z]|\bmailto\b|\w \bat\b [\w-]+ \bdot\b"
        r"|(?:^|[\s(;+])[a-z0-9][\w-]{2,}(?:\.[\w-]+)*\.(?:com|net|org|io|ai|co|app|dev|info|cloud|tech|xyz|site|ru|de|fr|eu|uk"
        r"|jp|cn|nl|ch)(?:[/);,:]|\s|$)",
        "tags": ["contact"],
    },
    {  # placeholders, injected code and bare Mozilla tokens
        "pattern": r"(?i)\$\{|\{\{|\}\}|<\?|<script|\b[WXYZ]\.[WXYZ]\.[WXYZ]"
        r"|(?:firefox|gecko|chrome)version|-SNAPSHOT\b|/\d{13}\b",
        "tags": ["malformed"],
    },
]
_TAG_REASONS = {
    "browser-automation": BotReason.HEADLESS, "http-library": BotReason.HTTP_CLIENT,
    "self-declared": BotReason.SELF_DECLARED, "contact": BotReason.CONTACT, "malformed": BotReason.MALFORMED,
}

# ``(compatible; X``: the X that real clients put there (Internet Explorer, Konqueror, Outlook's Word
# renderer, old mobile browsers).
_COMPATIBLE = re.compile(r"\(compatible(?:;\s*|\))(([^;)]*)[^)]*)")
_COMPATIBLE_BROWSERS = ("MSIE", "Konqueror", "ms-office", "MSOffice", "U", "Teleca", "IEMobile", "Windows",
                        "BlackBerry", "Opera", "Obigo", "NetFront", "Polaris", "IBrowse", "OffByOne",
                        "Tablet")
# Text browsers name no platform; every other person's agent names one, or a browser engine.
_TEXT_BROWSERS = ("Lynx/", "Links ", "ELinks", "w3m/")
_PLATFORM = (
    r"(?i)Windows|Win(?:32|64|NT|98|95|CE)|Macintosh|Mac ?OS|Mac_PowerPC|Darwin|CFNetwork|iPhone|iPad|iPod"
    r"|\biOS\b|iPadOS|watchOS|tvOS|Android|Linux|X11|CrOS|Ubuntu|BSD|SunOS|BlackBerry|BB10|Symbian|SymbOS"
    r"|Series ?[46]0|Nokia|MIDP|CLDC|J2ME|UP\.Browser|KaiOS|Tizen|Web0S|webOS|PlayStation|Nintendo|Xbox"
    r"|Roku|SMART-?TV|HbbTV|HarmonyOS|Fire ?OS|DoCoMo|KDDI|SoftBank|Vodafone|SAMSUNG|SonyEricsson|\bLG-"
    r"|\bMOT-|NetFront|Obigo|Opera Mini|UCWEB|Bada|Brew|Palm|Maemo|MeeGo|Sailfish|OS/2|Amiga|Haiku|BeOS"
    r"|RISC ?OS|Solaris|\bAIX\b|HP-UX|Apple ?TV|Apple Watch|AppleCoreMedia|Chromecast|CrKey|OpenVMS|\bwin\d"
    r"|browser|MAUI|\bMRE/|Mosaic|Xiino|\[FB|FBAN/|MSOffice|ms-office|Teleca|opera|OPR/|(?-i:[a-z]OS/|AFT[A-Z])"
    r"|CYGWIN|RIM |PlayBook|AppleWebKit|KHTML|Gecko/|Trident|Presto|WebTV|MSIE|Dillo/"
)


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


# crawler-user-agents patterns that match people's own devices and apps (a build number, phone models
# "Sonic", "Butterfly", "Fever", "Expanse", the Sogou and WhatsApp apps), found on the development half
# of the evaluation's real agents (``benchmarks/bots_eval.py``). The bots they were written for still
# show in their agents' shape (a URL, no platform), so the rules catch them.
LIST_EXCLUSIONS = frozenset({
    r"AP3A\.240617\.008", r"008\/", "Sogou", "Sonic", "Butterfly", "Fever", "Expanse", "Viber", "WhatsApp",
    "Podimo",
})


def _load_patterns() -> PatternMatcher:
    from crawleruseragents import CRAWLER_USER_AGENTS_DATA

    listed = [entry for entry in CRAWLER_USER_AGENTS_DATA if entry["pattern"] not in LIST_EXCLUSIONS]
    return compile_patterns(_OWN_ENTRIES + listed + _SHAPE_ENTRIES)


_PATTERNS: Once[PatternMatcher] = Once(_load_patterns)


def _load_platforms() -> object:
    import ua_parser_rs

    return ua_parser_rs.UserAgentExtractor([(_PLATFORM, "platform", None, None, None, None)])


_PLATFORMS: Once[object] = Once(_load_platforms)  # the same Rust engine: one pass, ~1 us
_SHAPE_REASONS = frozenset({BotReason.SELF_DECLARED, BotReason.CONTACT, BotReason.MALFORMED})


def reason_for(user_agent: str, device_family: str) -> str:
    """The bot reason for ``user_agent``, or '' for a human.

    ``device_family`` is ua-parser's device family for the same string ("Spider" for its bots);
    ``parse_device`` passes it so the string is parsed only once. Uncached: use ``parse_device``.
    """
    if not user_agent.strip() or user_agent == "-":
        return BotReason.EMPTY_UA
    matched = _PATTERNS.get().reason(user_agent)
    if device_family == "Spider" and (not matched or matched in _SHAPE_REASONS):
        return BotReason.UA_LIBRARY  # a list's verdict before a rule's
    if matched:
        return matched
    platforms = _PLATFORMS.get()
    if platforms.extract(user_agent) is None:  # type: ignore[attr-defined]
        return "" if user_agent.startswith(_TEXT_BROWSERS) else BotReason.TOOL_AGENT
    if "compatible" in user_agent:
        found = _COMPATIBLE.search(user_agent)
        comment = found.group(1) if found is not None else ""  # the rest of "(compatible; ...)"
        if (found is not None and not found.group(2).startswith(_COMPATIBLE_BROWSERS)
                and platforms.extract(comment) is None):  # type: ignore[attr-defined]
            return BotReason.COMPATIBLE_OTHER
    return ""
