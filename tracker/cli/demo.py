"""`odnos demo`: fill the store with realistic demo data and print how to see it."""

from __future__ import annotations

import argparse

from tracker.cli.common import open_runtime
from tracker.control.sites import list_sites
from tracker.demo import DEMO_SITE_NAME, DEMO_USER, load_demo
from tracker.errors import OdnosError
from tracker.runtime import Runtime
from tracker.synthetic import load_synthetic


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="load demo data (a shop site, 30 days of visits, a campaign)",
                            description="Load demo data made by the collector's own pipeline: a shop "
                                        "site, a few thousand visitors over 30 days, 600 contacts and a "
                                        "sent campaign with opens, clicks, machine opens and scanner "
                                        "clicks, plus a dashboard user. Seeded: every run makes the same "
                                        "visitors, events and event ids, dated up to now. Does nothing "
                                        "if the demo is loaded. Prints the demo site id last.")
    parser.add_argument("--visitors", type=int, default=3000, help="people visiting the site (default 3000)")
    parser.add_argument("--days", type=int, default=30, help="days of history (default 30)")
    parser.add_argument("--events", type=int, default=0, metavar="N",
                        help="also add about N synthetic events to the demo site over the same days, to try "
                             "the dashboard at scale (10 M take a few minutes on a ClickHouse server). They "
                             "are generated inside ClickHouse and bulk-inserted, not played through the "
                             "collector like the rest of the demo; added once")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.visitors < 1 or args.days < 1 or args.events < 0:
        raise OdnosError("--visitors and --days must be at least 1 and --events at least 0 (for example: "
                         "odnos demo --visitors 300 --days 7 --events 100000)", code="bad_argument")
    with open_runtime() as runtime:
        result = load_demo(runtime, visitors=args.visitors, days=args.days)
        bulk = _bulk(runtime, args.events, args.days) if args.events else ""
    reset = f"odnos user add --email {DEMO_USER} --password - --reset"
    if result is None:
        print(f"demo data is already loaded; nothing to do. Its dashboard login is {DEMO_USER}, with the "
              f"password printed the first time; to set a new one: {reset}")
        if bulk:
            print(bulk)
        return 0
    print(f"loaded {result.events:,} events and {result.contacts:,} contacts for the demo site")
    if bulk:
        print(bulk)
    print(result.crm)
    if result.password:
        print(f"dashboard login: {DEMO_USER} / {result.password}  (to set another: {reset})")
    else:
        print(f"dashboard login: {DEMO_USER}, with the password it had already (to set a new one: {reset})")
    print(result.site_id)
    return 0


def _bulk(runtime: Runtime, events: int, days: int) -> str:
    """Add ``events`` synthetic events to the demo site unless a run added some; says what it did."""
    with runtime.control.session() as db:
        site_id = next(site.id for site in list_sites(db) if site.name == DEMO_SITE_NAME)
    have = runtime.store.query("SELECT count() FROM events WHERE site_id = %(site)s AND source = 'synthetic'",
                               {"site": site_id}, name="demo synthetic count").scalar()
    if have:
        return f"{have:,} synthetic events are already loaded for the demo site; --events added none"
    print(f"adding about {events:,} synthetic events to the demo site...", flush=True)
    loaded = load_synthetic(runtime.store, site_id, events, days=days)
    return (f"added {loaded.events:,} synthetic events in {loaded.seconds:.1f} s "
            f"(bulk insert inside ClickHouse, not through the collector)")
