"""Turn a User-Agent header into browser, OS, device class and bot verdict, once per distinct string.

Why ua-parser 1.x with the ``ua-parser-rs`` resolver rather than ``user-agents``: measured with
``benchmarks/enrich_bench.py`` on this 2-core machine, an unseen browser UA costs 0.7-1.0 ms through
``user-agents`` 2.2 (it drives ua-parser's legacy pure-Python API) and 15-30 us through the Rust
resolver over the same regex data; the whole ``parse_device`` of an unseen UA takes 20-30 us for a
browser, 45-55 us for a crawler, 0.08 us from the cache. ``user-agents``' desktop/mobile/tablet
rules are not reused either: importing it loads legacy regex tables we would never run (~0.12 s,
~9 MB), and on the 60 real browser UAs in ``tests/test_enrich_bots.py`` they get 3 wrong (Firefox
on an Android tablet, DuckDuckGo on Android, an Xbox). The rules below follow MDN's advice instead:
``Mobi`` means a phone, Android without ``Mobile`` a tablet; TVs and consoles are ``other``.

Results are cached by the exact header string (bounded LRU), so a header is parsed once. A full
cache (100,000 UAs) holds about 38 MB; version and family strings are interned to keep it there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tracker.enrich.bots import reason_for
from tracker.enrich.lazy import Once

CACHE_SIZE = 100_000
"""Distinct UA strings kept parsed; a site sees a few thousand a day, a busy collector tens of thousands."""

DEVICE_CLASSES = ("desktop", "mobile", "tablet", "bot", "other")

_DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Chrome OS",
        "Fedora",
        "Debian",
        "Linux Mint",
        "Arch Linux",
        "Red Hat",
        "SUSE",
        "FreeBSD",
        "OpenBSD",
        "Solaris",
    }
)
_MOBILE_OS = frozenset(
    {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Symbian OS", "Firefox OS", "HarmonyOS"}
)
# TVs, consoles and set-top boxes carry desktop or Android tokens too; they are neither.
_OTHER_MARKERS = (
    "SMART-TV",
    "SmartTV",
    "Web0S",
    "Tizen",
    "HbbTV",
    "Xbox",
    "PlayStation",
    "Nintendo",
    "CrKey",
    "BRAVIA",
    "GoogleTV",
    "Android TV",
    "AFTB",  # Fire TV models
    "AFTS",
    "AFTM",
    "AFTT",
    "Roku",
)
_TABLET_DEVICES = ("iPad", "Kindle", "Generic Tablet", "Generic_Android_Tablet")


@dataclass(frozen=True, slots=True)
class Device:
    """What a user agent says about its client. Empty strings mean unknown."""

    browser: str
    browser_version: str  # "major.minor", or "major"
    os: str
    os_version: str  # "major.minor", or "major"
    device: str  # one of DEVICE_CLASSES
    is_bot: bool
    bot_reason: str  # a BotReason value, '' for humans


def _build_parser() -> Callable[[str], Any]:
    from ua_parser import Domain, load_lazy_builtins
    from ua_parser.regex import Resolver

    resolver = Resolver(load_lazy_builtins())
    return lambda user_agent: resolver(user_agent, Domain.ALL)


_PARSER: Once[Callable[[str], Any]] = Once(_build_parser)


def _version(major: str | None, minor: str | None) -> str:
    if not major:
        return ""
    return sys.intern(f"{major}.{minor}" if minor else major)


def _family(parsed: Any) -> str:
    return "" if parsed is None or parsed.family == "Other" else sys.intern(parsed.family)


def device_class(user_agent: str, os_family: str, device_family: str) -> str:
    """desktop, mobile, tablet or other (bots are decided by the caller, before this)."""
    if any(marker in user_agent for marker in _OTHER_MARKERS):
        return "other"
    if device_family.startswith(_TABLET_DEVICES) or "Tablet" in user_agent:
        return "tablet"
    if os_family == "Android" and "Mobile" not in user_agent:
        return "tablet"
    if "Mobi" in user_agent or os_family in _MOBILE_OS or device_family in ("iPhone", "iPod"):
        return "mobile"
    if os_family in _DESKTOP_OS or os_family.startswith("Windows"):
        return "desktop"
    return "other"


@lru_cache(maxsize=CACHE_SIZE)
def parse_device(user_agent: str) -> Device:
    """Parse a User-Agent header (cached by the exact string)."""
    parsed = _PARSER.get()(user_agent)
    device_family = parsed.device.family if parsed.device is not None else "Other"
    os_family = _family(parsed.os)
    bot_reason = reason_for(user_agent, device_family)
    browser = parsed.user_agent
    return Device(
        browser=_family(browser),
        browser_version=_version(browser.major, browser.minor) if browser else "",
        os=os_family,
        os_version=_version(parsed.os.major, parsed.os.minor) if parsed.os else "",
        device="bot" if bot_reason else device_class(user_agent, os_family, device_family),
        is_bot=bool(bot_reason),
        bot_reason=bot_reason,
    )
