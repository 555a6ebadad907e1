"""parse_device: fields, device classes, one parse per distinct header, lazy loading."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time

import pytest

from tracker.enrich import device
from tracker.enrich.device import CACHE_SIZE, DEVICE_CLASSES, Device, parse_device
from tracker.enrich.lazy import Once

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.86 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1.1 Mobile/15E148 Safari/604.1"
)


def test_fields_of_a_desktop_browser():
    assert parse_device(CHROME_WINDOWS) == Device(
        browser="Chrome",
        browser_version="131.0",
        os="Windows",
        os_version="10",
        device="desktop",
        is_bot=False,
        bot_reason="",
    )


def test_versions_are_major_minor():
    parsed = parse_device(SAFARI_IPHONE)
    assert (parsed.browser, parsed.browser_version) == ("Mobile Safari", "18.1")
    assert (parsed.os, parsed.os_version, parsed.device) == ("iOS", "18.1", "mobile")


def test_unknown_strings_are_empty_not_other():
    parsed = parse_device("Mozilla/5.0 (SomethingNobodyKnows) AppleWebKit/537.36")
    assert (parsed.browser, parsed.browser_version, parsed.os, parsed.os_version) == ("", "", "", "")
    assert (parsed.device, parsed.is_bot) == ("other", False)
    assert parsed.device in DEVICE_CLASSES


def test_a_bare_word_is_a_tool_not_a_person():
    parsed = parse_device("SomethingNobodyKnows")
    assert (parsed.device, parsed.bot_reason) == ("bot", "tool_agent")


def test_bots_get_the_bot_class():
    parsed = parse_device("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)")
    assert (parsed.device, parsed.is_bot, parsed.bot_reason) == ("bot", True, "crawler_list")


@pytest.mark.parametrize(
    ("ua", "os_family", "device_family", "expected"),
    [
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/131.0 Mobile Safari/537.36",
            "Android",
            "Pixel 8",
            "mobile",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-X710) Chrome/131.0 Safari/537.36",
            "Android",
            "Samsung",
            "tablet",
        ),
        (
            "Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0",
            "Android",
            "Generic",
            "tablet",
        ),
        ("Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X)", "iOS", "iPad", "tablet"),
        ("Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36", "Linux", "Other", "desktop"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) Edg/131.0", "Windows", "Xbox", "other"),
        ("Mozilla/5.0 (Linux; Android 9; AFTMM) Silk/130", "Android", "Kindle", "other"),
        ("Opera/9.80 (J2ME/MIDP; Opera Mini/9.80) Mobi", "", "Generic Feature Phone", "mobile"),
        ("Mozilla/5.0 (compatible)", "", "Other", "other"),
    ],
)
def test_device_class_rules(ua, os_family, device_family, expected):
    assert device.device_class(ua, os_family, device_family) == expected


def test_device_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse_device(CHROME_WINDOWS).browser = "Firefox"  # type: ignore[misc]


def test_the_same_header_is_never_parsed_twice(monkeypatch):
    real = device._PARSER.get()
    calls: list[str] = []

    def counting(ua: str):
        calls.append(ua)
        return real(ua)

    monkeypatch.setattr(device, "_PARSER", Once(lambda: counting))
    parse_device.cache_clear()
    ua = CHROME_WINDOWS + " odnos-cache-test"
    first = parse_device(ua)
    for _ in range(50):
        assert parse_device(ua) is first
    assert calls == [ua]
    parse_device.cache_clear()


def test_the_cache_is_bounded():
    assert parse_device.cache_info().maxsize == CACHE_SIZE


def test_once_builds_once_under_concurrent_first_use():
    builds: list[int] = []

    def slow_build() -> object:
        builds.append(1)
        time.sleep(0.05)
        return object()

    once = Once(slow_build)
    start = threading.Barrier(8)
    seen: list[object] = []

    def worker() -> None:
        start.wait()
        seen.append(once.get())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert len({id(v) for v in seen}) == 1
    assert once.loaded


def test_importing_the_package_loads_no_tables():
    """The collector's import must stay cheap: tables load on first use, not at import."""
    code = (
        "import sys\n"
        "import tracker.enrich.device as d, tracker.enrich.bots as b, tracker.enrich.geo as g\n"
        "import tracker.enrich.referrer, tracker.enrich.visitor, tracker.enrich.sessions\n"
        "import tracker.enrich.email_machines, tracker.enrich.networks as n\n"
        "assert not (d._PARSER.loaded or b._PATTERNS.loaded or g._DB.loaded or n._NETWORKS.loaded)\n"
        "heavy = {'ua_parser', 'ua_parser_rs', 'geoip2fast', 'crawleruseragents', 'user_agents'}\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
