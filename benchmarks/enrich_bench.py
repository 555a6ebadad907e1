"""Micro-benchmark of the enrichment hot path: per-call cost of each step, cold and cached.

Run: .venv/bin/python benchmarks/enrich_bench.py [--memory]

"Cold" means a user agent never seen before (a cache miss), "cached" a repeat. Load times are the
one-off cost of the first call. --memory also fills the parse cache to its bound and reports RSS.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

TEMPLATES = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.{b}.{c} Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{d} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{d} Mobile/15E{c} Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S91{d}B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.{b}.{c} Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.{d} Safari/605.1.{c}",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{a}.0) Gecko/20100101 Firefox/{a}.{d}.{c}",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.0.0 Safari/537.36 Edg/{a}.0.{b}.{c}",
)


def browser_uas(n: int, seed: int) -> list[str]:
    """n distinct, realistic browser UAs (random versions make each string new to every cache)."""
    rnd = random.Random(seed)  # noqa: S311 (test data, not secrets)
    seen: set[str] = set()
    while len(seen) < n:
        template = rnd.choice(TEMPLATES)
        seen.add(
            template.format(
                a=rnd.randint(100, 131), b=rnd.randint(0, 9999), c=rnd.randint(0, 999), d=rnd.randint(0, 9)
            )
        )
    return sorted(seen)


def crawler_instances() -> list[str]:
    from crawleruseragents import CRAWLER_USER_AGENTS_DATA

    return [ua for entry in CRAWLER_USER_AGENTS_DATA for ua in entry["instances"]]


def per_call(name: str, fn: Callable[[str], object], inputs: Sequence[str], repeat: int = 1) -> None:
    start = time.perf_counter()
    for _ in range(repeat):
        for item in inputs:
            fn(item)
    elapsed = time.perf_counter() - start
    calls = repeat * len(inputs)
    print(f"{name:58} {elapsed / calls * 1e6:10.2f} us/call  (n={calls})")


def once(name: str, fn: Callable[[], object]) -> None:
    start = time.perf_counter()
    fn()
    print(f"{name:58} {(time.perf_counter() - start) * 1e3:10.1f} ms")


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) / 1024


def main() -> None:
    args_parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args_parser.add_argument("--memory", action="store_true", help="fill the UA cache and report RSS")
    args = args_parser.parse_args()

    from tracker.enrich import bots, device, email_machines, geo, referrer, sessions, visitor

    crawlers = crawler_instances()
    humans = browser_uas(5_000, seed=1)
    mixed = humans + crawlers

    print("== user agents ==")
    once("load ua-parser-rs resolver + crawler list (first parse)", lambda: device.parse_device("warm-up"))
    device.parse_device.cache_clear()
    per_call("parse_device, cold, 5,000 browser UAs (first sight)", device.parse_device, humans)
    per_call("parse_device, cold, 2,123 crawler instances", device.parse_device, crawlers)
    per_call("parse_device, cached", device.parse_device, mixed, repeat=5)
    per_call("  of which ua-parser-rs Domain.ALL, cold", device._PARSER.get(), browser_uas(3_000, seed=2))
    per_call("  of which bots.reason_for, browsers", lambda ua: bots.reason_for(ua, "Other"), humans)
    per_call("  of which bots.reason_for, crawlers", lambda ua: bots.reason_for(ua, "Other"), crawlers)

    import user_agents  # the alternative named in the issue, for comparison

    per_call(
        "user_agents.parse 2.2 (legacy ua-parser API), cold", user_agents.parse, browser_uas(1_000, seed=3)
    )

    from crawleruseragents import CRAWLER_USER_AGENTS_DATA

    patterns = [entry["pattern"] for entry in CRAWLER_USER_AGENTS_DATA]
    combined = re.compile("|".join(patterns))
    chunks = [re.compile("|".join(patterns[i : i + 25])) for i in range(0, len(patterns), 25)]
    rust = bots._PATTERNS.get()
    print("-- crawler list strategies, per browser UA (no match: the worst case) --")
    per_call("  one combined Python re alternation", combined.search, humans[:300])
    per_call(
        "  Python re in chunks of 25 (crawleruseragents.is_crawler)",
        lambda ua: any(c.search(ua) for c in chunks),
        humans[:1000],
    )
    per_call("  ua-parser-rs regex set, with our markers (used)", rust.reason, humans)

    print("== referrer ==")
    refs = [
        "https://www.google.com/",
        "https://www.google.co.uk/search?q=x",
        "https://l.facebook.com/l.php?u=x",
        "https://t.co/abc",
        "https://mail.google.com/mail/u/0/",
        "https://blog.someone.org/post/1",
        "https://www.example.com/pricing",
        "",
    ] * 500
    per_call(
        "classify_referrer (hosts cached)",
        lambda r: referrer.classify_referrer(r, "www.example.com", ("example.com",)),
        refs,
    )
    pages = [
        f"https://www.example.com/p/{i}?utm_source=news&utm_medium=email&utm_campaign=c{i}"
        for i in range(4000)
    ]
    per_call("utm_params", referrer.utm_params, pages)
    per_call("split_url", referrer.split_url, pages)

    print("== geo ==")
    once("load geoip2fast IPv6+IPv4 data (first lookup)", lambda: geo.country_of("8.8.8.8"))
    rnd = random.Random(4)  # noqa: S311 (test data, not secrets)
    ips = [
        f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
        for _ in range(20_000)
    ]
    ips += [
        f"2a0{rnd.randint(0, 9)}:{rnd.randint(0, 65535):x}::{rnd.randint(1, 65535):x}" for _ in range(5_000)
    ]
    per_call("country_of", geo.country_of, ips)

    print("== visitor, sessions, email ==")
    ids = visitor.VisitorIds(visitor.MemorySaltSource())
    now = time.time()
    per_call("VisitorIds.candidates", lambda ip: ids.candidates(1, ip, humans[0], now), ips)
    table = tempfile.TemporaryDirectory()  # the collector's is <data dir>/sessions.map
    tracker = sessions.SessionTracker(Path(table.name) / sessions.FILE_NAME)
    pairs = [ids.candidates(1, ip, humans[0], now) for ip in ips[:5000]]
    per_call("SessionTracker.assign", lambda _: tracker.assign(1, pairs[rnd.randrange(5000)], now), ips)
    per_call(
        "classify_click (UA cached)",
        lambda ua: email_machines.classify_click(ua, "GET", now - 600, now, ua[-12:], "l1", "c1"),
        mixed,
    )

    if args.memory:
        print("== memory ==")
        before = rss_mb()
        device.parse_device.cache_clear()
        for ua in browser_uas(device.CACHE_SIZE, seed=5):
            device.parse_device(ua)
        added = rss_mb() - before
        print(f"RSS {rss_mb():.0f} MB; a full parse cache ({device.CACHE_SIZE:,} UAs) adds {added:.0f} MB")


if __name__ == "__main__":
    main()
