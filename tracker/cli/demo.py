"""`odnos demo`: fill the store with realistic demo data and print how to see it."""

from __future__ import annotations

import argparse

from tracker.cli.common import open_runtime
from tracker.demo import DEMO_USER, load_demo
from tracker.errors import OdnosError


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
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.visitors < 1 or args.days < 1:
        raise OdnosError("--visitors and --days must be at least 1 (for example: odnos demo --visitors 300 "
                         "--days 7)", code="bad_argument")
    with open_runtime() as runtime:
        result = load_demo(runtime, visitors=args.visitors, days=args.days)
    reset = f"odnos user add --email {DEMO_USER} --password - --reset"
    if result is None:
        print(f"demo data is already loaded; nothing to do. Its dashboard login is {DEMO_USER}, with the "
              f"password printed the first time; to set a new one: {reset}")
        return 0
    print(f"loaded {result.events:,} events and {result.contacts:,} contacts for the demo site")
    print(result.crm)
    if result.password:
        print(f"dashboard login: {DEMO_USER} / {result.password}  (to set another: {reset})")
    else:
        print(f"dashboard login: {DEMO_USER}, with the password it had already (to set a new one: {reset})")
    print(result.site_id)
    return 0
