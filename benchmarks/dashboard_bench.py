"""Dashboard benchmark: each panel's query time at 10 M (and 100 M) events, rollups against raw scans.

Everything runs here, against a ClickHouse server (Debian's 18.16) this script starts on free ports
in a temporary folder, as the tests start it. For each size it creates a database, applies the
migrations (so the rollups' materialized views are live), loads that many synthetic events for
one site with ``tracker.synthetic.load_synthetic`` (INSERT ... SELECT FROM numbers() inside the
server; the load time includes the views), finishes the old days' sessions (what the scheduler
does hourly; ``tracker.queries.finish_sessions``), waits for background merges to settle, then
times every panel function of ``tracker.queries`` (best of ``--repeat`` runs, in milliseconds):

- ``fast``: the function as the dashboard calls it (rollups where the filters and period allow);
- ``raw``: the same question with ``raw=True`` (raw events only: the no-rollup baseline), in the
  same run, so a busy machine slows both alike. Panels that have no rollup show ``-`` there.

Two periods: the last 30 days and the whole loaded range (``--days``, default 180). The machine's
load average is printed before and after, because the figures mean little on a shared machine
without it. Budget (shared/design.md, 2 cores): <= 300 ms per panel at 10 M events, <= 2 s at 100 M.

    .venv/bin/python benchmarks/dashboard_bench.py [--events 10M,100M] [--days 180] [--repeat 3]
        [--keep DIR]

``--keep DIR`` keeps the server's folder in DIR and reuses databases already loaded there, so a
second run skips loading. 100 M events take about 10 GB of disk (twice that while merges run): the
script checks free space first.

``--browser URL[,URL...]`` times whole pages instead, in headless Chromium signed in to running
dashboards (the password in ``ODNOS_BENCH_PASSWORD``): from navigation start until the callbacks
have answered and the page has stopped changing, ``--repeat`` times, the URLs taken in turn so a
busy machine slows each alike (two URLs: before and after a change).

    ODNOS_BENCH_PASSWORD=... .venv/bin/python benchmarks/dashboard_bench.py --browser \
        http://127.0.0.1:8000 --email demo@example.com --paths /,/behaviour --repeat 10
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.clickhouse import ClickHouseServer  # noqa: E402
from tracker.queries.campaigns.campaign_followups import campaign_followups  # noqa: E402
from tracker.queries.campaigns.campaign_list import campaign_list  # noqa: E402
from tracker.queries.campaigns.campaign_report import campaign_report  # noqa: E402
from tracker.queries.campaigns.click_map import click_map  # noqa: E402
from tracker.queries.filters import Filters  # noqa: E402
from tracker.queries.finish_sessions import finish_sessions  # noqa: E402
from tracker.queries.period import Period  # noqa: E402
from tracker.queries.site.bots_excluded import bots_excluded  # noqa: E402
from tracker.queries.site.countries import countries  # noqa: E402
from tracker.queries.site.custom_events import custom_events  # noqa: E402
from tracker.queries.site.devices import devices  # noqa: E402
from tracker.queries.site.entry_pages import entry_pages  # noqa: E402
from tracker.queries.site.event_properties import event_properties  # noqa: E402
from tracker.queries.site.exit_pages import exit_pages  # noqa: E402
from tracker.queries.site.funnel import funnel  # noqa: E402
from tracker.queries.site.goals import Goal, goals  # noqa: E402
from tracker.queries.site.overview_kpis import overview_kpis  # noqa: E402
from tracker.queries.site.realtime import realtime_visitors  # noqa: E402
from tracker.queries.site.retention import retention  # noqa: E402
from tracker.queries.site.sources import sources  # noqa: E402
from tracker.queries.site.timeseries import timeseries  # noqa: E402
from tracker.queries.site.top_pages import top_pages  # noqa: E402
from tracker.queries.site.utm import utm  # noqa: E402
from tracker.settings import ClickHouseTarget  # noqa: E402
from tracker.store.clickhouse_store import ClickHouseStore  # noqa: E402
from tracker.store.migrate import migrate  # noqa: E402
from tracker.synthetic import CAMPAIGN_IDS, load_synthetic  # noqa: E402

SITE = "bench"
BYTES_PER_EVENT = 200  # events and rollups on disk, with room for the merges that follow the load
FUNNEL = [Goal("page", "/"), Goal("page", "/products"), Goal("page", "/products/blue-shoes"),
          Goal("page", "/cart"), Goal("page", "/checkout")]
GOALS = [Goal("page", "/checkout"), Goal("event", "signup"), Goal("event", "purchase")]
CAMPAIGN = CAMPAIGN_IDS[0]


def panels(store: ClickHouseStore, now: datetime) -> dict[str, Callable[[Period, bool], object] | None]:
    """Panel name -> function of (period, raw); panels without a rollup ignore ``raw``."""
    search, germany = Filters(referrer_source="search"), Filters(country="DE")
    products = Filters(page="/products/*")
    return {
        "overview (6 numbers + previous period)": lambda p, raw: overview_kpis(store, SITE, p, raw=raw),
        "overview, country filter": lambda p, raw: overview_kpis(store, SITE, p, germany, raw=raw),
        "overview, source filter": lambda p, raw: overview_kpis(store, SITE, p, search, raw=raw),
        "series: visitors": lambda p, raw: timeseries(store, SITE, p, metric="visitors", raw=raw),
        "series: visits": lambda p, raw: timeseries(store, SITE, p, metric="visits", raw=raw),
        "top pages": lambda p, raw: top_pages(store, SITE, p, raw=raw),
        "top pages, page filter": lambda p, raw: top_pages(store, SITE, p, products, raw=raw),
        "entry pages": lambda p, raw: entry_pages(store, SITE, p, raw=raw),
        "exit pages": lambda p, raw: exit_pages(store, SITE, p, raw=raw),
        "sources": lambda p, raw: sources(store, SITE, p, raw=raw),
        "referrer domains": lambda p, raw: sources(store, SITE, p, dimension="referrer_domain", raw=raw),
        "UTM campaigns": lambda p, raw: utm(store, SITE, p, raw=raw),
        "countries": lambda p, raw: countries(store, SITE, p, raw=raw),
        "browsers": lambda p, raw: devices(store, SITE, p, dimension="browser", raw=raw),
        "custom events": lambda p, raw: custom_events(store, SITE, p, raw=raw),
        "goals (3)": lambda p, raw: goals(store, SITE, p, GOALS, raw=raw),
        "retention (weekly cohorts)": lambda p, raw: retention(store, SITE, p, raw=raw),
        "funnel (5 steps)": lambda p, raw: funnel(store, SITE, p, FUNNEL, raw=raw),
        "funnel (3 steps from a product page)": lambda p, raw: funnel(store, SITE, p, FUNNEL[2:], raw=raw),
        "event properties*": lambda p, raw: event_properties(store, SITE, p, "purchase"),
        "bots excluded": lambda p, raw: bots_excluded(store, SITE, p, raw=raw),
        "realtime visitors*": lambda p, raw: realtime_visitors(store, SITE, now=now),
        "campaign list": lambda p, raw: campaign_list(store, raw=raw),
        "campaign report": lambda p, raw: campaign_report(store, CAMPAIGN, raw=raw),
        "click map": lambda p, raw: click_map(store, CAMPAIGN, raw=raw),
        "campaign follow-ups*": lambda p, raw: campaign_followups(store, SITE, CAMPAIGN, GOALS),
    }


def best_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times) * 1000


def settle(store: ClickHouseStore, timeout: float = 900) -> float:
    """Wait until the server runs no merges; returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if not store.query("SELECT count() FROM system.merges").scalar():
            break
        time.sleep(1)
    return time.monotonic() - began


def load(server: ClickHouseServer, events: int, days: int, end: int) -> ClickHouseStore:
    database = f"bench_{events}"
    target = ClickHouseTarget(embedded=False, database=database, host="127.0.0.1", port=server.tcp_port,
                              http_port=server.http_port)
    store = ClickHouseStore(target)
    migrate(store)
    have = store.query("SELECT count() FROM events WHERE site_id = %(s)s", {"s": SITE}).scalar()
    if have:
        print(f"reusing {have:,} events in {database}", flush=True)
        began = time.monotonic()
        finished = finish_sessions(store)  # days a newer schema has not finished yet
        print(f"finished {len(finished)} days of sessions in {time.monotonic() - began:.0f} s", flush=True)
        return store
    free = shutil.disk_usage(server.root).free
    if free < events * BYTES_PER_EVENT:
        need = events * BYTES_PER_EVENT / 1e9
        raise SystemExit(f"dashboard_bench: error: {events:,} events need about {need:.0f} GB in "
                         f"{server.root}, and {free / 1e9:.0f} GB are free; pass --keep DIR on a bigger disk")
    loaded = load_synthetic(store, SITE, events, seed=1, days=days, end=end, finish=False)
    print(f"loaded {loaded.events:,} events in {loaded.seconds:.0f} s "
          f"({loaded.events / loaded.seconds:,.0f} events/s, rollup views included)", flush=True)
    began = time.monotonic()
    finished = finish_sessions(store)
    print(f"finished {len(finished)} days of sessions in {time.monotonic() - began:.0f} s", flush=True)
    print(f"merges settled after {settle(store):.0f} s more", flush=True)
    return store


def measure(store: ClickHouseStore, events: int, days: int, end: int, repeat: int) -> None:
    end_moment = datetime.fromtimestamp(end, UTC).replace(tzinfo=None)
    periods = {"last 30 days": Period(end_moment - timedelta(days=30), end_moment),
               f"all {days} days": Period(end_moment - timedelta(days=days), end_moment)}
    questions = panels(store, end_moment - timedelta(minutes=1))
    print(f"\n### {events:,} events for the site (load average {os.getloadavg()[0]:.1f})\n")
    header = " | ".join(f"{label} fast | {label} raw" for label in periods)
    print(f"| panel | {header} |")
    print("| --- |" + " ---: |" * (2 * len(periods)))
    for name, ask in questions.items():
        cells = []
        for period in periods.values():
            cells.append(f"{best_ms(lambda a=ask, p=period: a(p, False), repeat):,.0f}")
            raw = "-" if name.endswith("*") else f"{best_ms(lambda a=ask, p=period: a(p, True), repeat):,.0f}"
            cells.append(raw)
        print(f"| {name} | {' | '.join(cells)} |", flush=True)
    print(f"\n(* no rollup: always raw events. Load average after: {os.getloadavg()[0]:.1f})")


_PAGE_STATE = """
const ups = performance.getEntriesByType('resource').filter(e => e.name.includes('_dash-update-component'));
return [performance.now(), ups.length, Math.max(0, ...ups.map(e => e.responseEnd)),
        document.querySelector('[data-dash-is-loading="true"]') !== null,
        document.querySelector('#page > *') !== null,
        document.querySelectorAll('.main-svg').length, document.querySelectorAll('.ag-row').length];
"""


def page_ms(driver, url: str, quiet_ms: float = 600, timeout: float = 30) -> float:
    """Milliseconds from navigation until the last callback answered and the page stopped changing."""
    driver.get(url)
    seen: list[tuple[float, tuple]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now, count, answered, busy, drawn, *shapes = driver.execute_script(_PAGE_STATE)
        seen.append((now, (count, busy, drawn, *shapes)))
        settled = next(t for k, (t, state) in enumerate(seen) if all(s == seen[-1][1] for _, s in seen[k:]))
        if drawn and not busy and now - settled > quiet_ms:
            return max(answered, settled)
        time.sleep(0.05)
    raise SystemExit(f"dashboard_bench: error: {url} did not settle within {timeout:.0f} s")


def browse(bases: list[str], email: str, paths: list[str], repeat: int) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.fixtures.browser import CHROMEDRIVER, CHROMIUM, CHROMIUM_ARGS  # loopback only

    password = os.environ.get("ODNOS_BENCH_PASSWORD", "")
    drivers = []
    for base in bases:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (*CHROMIUM_ARGS, "--window-size=1280,900",
                    f"--user-data-dir={tempfile.mkdtemp(prefix='odnos-bench-chromium-')}"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.get(base + "/login")
        driver.find_element("id", "email").send_keys(email)
        driver.find_element("id", "password").send_keys(password)
        driver.find_element("css selector", "button[type=submit]").click()
        time.sleep(2)
        drivers.append(driver)
    times: dict[tuple[str, str], list[float]] = {(b, p): [] for b in bases for p in paths}
    loads = []
    try:
        for _ in range(repeat):
            for path in paths:
                for base, driver in zip(bases, drivers, strict=True):
                    times[(base, path)].append(page_ms(driver, base + path))
                    loads.append(os.getloadavg()[0])
    finally:
        for driver in drivers:
            driver.quit()
    print(f"| page | median ms | best ms | runs |  (load average {min(loads):.1f}-{max(loads):.1f})")
    print("| --- | ---: | ---: | ---: |")
    for (base, path), found in times.items():
        print(f"| {base}{path} | {statistics.median(found):,.0f} | {min(found):,.0f} | {len(found)} |")


def sizes(text: str) -> list[int]:
    found = []
    for part in text.split(","):
        part = part.strip().upper()
        scale = {"K": 1_000, "M": 1_000_000}.get(part[-1:], 1)
        found.append(int(float(part.rstrip("KM")) * scale))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=sizes, default=sizes("10M,100M"), help="sizes, e.g. 10M,100M")
    parser.add_argument("--days", type=int, default=180, help="days the events span (default 180)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per panel; the best counts (default 3)")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the server's folder here")
    parser.add_argument("--browser", help="time whole pages of these running dashboards (comma-separated)")
    parser.add_argument("--email", default="demo@example.com", help="who signs in with --browser")
    parser.add_argument("--paths", default="/,/behaviour,/campaigns", help="pages for --browser")
    args = parser.parse_args()
    if args.browser:
        browse(args.browser.split(","), args.email, args.paths.split(","), args.repeat)
        return
    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)  # it logs every refused poll at start
    root = args.keep or Path(tempfile.mkdtemp(prefix="odnos-dash-bench-"))
    server = ClickHouseServer(root)
    server.start()
    end = int(datetime.now(UTC).timestamp()) // 86400 * 86400  # today 00:00 UTC: whole days, as a date picker
    if args.keep and (root / "bench_end").exists():
        end = int((root / "bench_end").read_text())
    (root / "bench_end").write_text(str(end))
    try:
        print(f"ClickHouse 18.16 on 127.0.0.1:{server.tcp_port}, folder {root}, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        for events in args.events:
            store = load(server, events, args.days, end)
            measure(store, events, args.days, end, args.repeat)
            store.close()
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
