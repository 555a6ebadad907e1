"""Segment benchmark: the seed segments evaluated live over 1 M contacts and 10-100 M events.

Starts its own ClickHouse server (Debian's, as the tests do) in a temporary folder, applies the
migrations, and generates the data server-side with ``INSERT ... SELECT ... FROM numbers(N)`` (fast:
no rows cross the wire):

- ``--contacts`` contacts (plan and city attributes, a tag on one in ten, 3 % not subscribed,
  created over 400 days), some unsubscribed through ``unsubscribe`` events as the collector writes;
- 1.5 visitors per contact linked in ``identities`` (site s1 or s2), as many again anonymous;
- ``--events`` events over 90 days: pageviews (5 % of them /pricing, 5 % bots), engagement, signups,
  purchases (item, value), add-to-cart, and for ten campaigns email sent / open (30 % machine) /
  click (10 % machine), email events carrying the contact id.

Then each seed segment (schemas/examples/segments) is evaluated through
``tracker.crm.segments``: its size (``segment_size``) and its first page of 1,000 members
(``segment_members``), best of ``--runs``, next to a raw-scan baseline in the same run: a
``SELECT count() FROM events WHERE ...`` over the events that segment's behaviour reads.

    .venv/bin/python benchmarks/segment_bench.py [--contacts 1000000] [--events 10000000] [--runs 3]
        [--keep DIR]

Budget (shared/design.md, 2 cores): a behavioural segment over 1 M contacts and 100 M events in
<= 5 s on the ClickHouse server.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.clickhouse import ClickHouseServer  # noqa: E402
from tracker.crm.segments import segment_members, segment_size  # noqa: E402
from tracker.settings import ClickHouseTarget  # noqa: E402
from tracker.store.clickhouse_store import ClickHouseStore  # noqa: E402
from tracker.store.migrate import migrate  # noqa: E402

# The contact id of contact number n: 16 hex chars, as tracker.contacts makes them (another hash,
# the same shape).
CID = "lower(substring(hex(MD5(toString({n}))), 1, 16))"

CONTACTS_SQL = f"""
INSERT INTO contacts (contact_id, email, first_name, last_name, status, source, created_at, updated_at,
                      version, deleted, `attrs.key`, `attrs.value`, tags)
SELECT {CID.format(n="number")}, concat('c', toString(number), '@example.com'),
       ['Ana', 'Marko', 'Sara', 'Luka', 'Emma'][1 + number %% 5], '',
       multiIf(number %% 100 = 1, 'unsubscribed', number %% 100 = 2, 'bounced',
               number %% 100 = 3, 'complained', 'subscribed'),
       'import', now() - intHash32(number) %% (400 * 86400), now(), 1099511627776, 0,
       ['plan', 'city'],
       [['free', 'free', 'pro'][1 + number %% 3], ['Paris', 'Berlin', 'Rome'][1 + number %% 3]],
       if(number %% 10 = 0, ['vip'], emptyArrayString())
FROM numbers(%(contacts)s)
"""  # noqa: S608 - constant fragments of the benchmark

IDENTITIES_SQL = f"""
INSERT INTO identities (site_id, visitor_id, contact_id, method, ts)
SELECT if(number %% 2 = 0, 's1', 's2'), concat('v', toString(number)),
       {CID.format(n="number %% %(contacts)s")}, 'email_link', now() - 100 * 86400 + number %% 86400
FROM numbers(%(linked)s)
"""  # noqa: S608 - constant fragments of the benchmark

# One chunk of events: ``kind`` picks the event from the hash's low digits; visitors are numbered
# so that the first 1.5 x contacts are the linked ones (see IDENTITIES_SQL).
EVENTS_SQL = f"""
INSERT INTO events (event_id, site_id, name, ts, received_at, source, visitor_id, contact_id, pathname,
                    hostname, is_bot, is_machine, campaign_id, message_id, link_id, `props.key`,
                    `props.value`)
SELECT generateUUIDv4(),
       if(email, '', if(visitor %% 2 = 0, 's1', 's2')),
       name, ts, ts, if(email, 'mailer', 'beacon'),
       if(email, '', concat('v', toString(visitor))),
       if(email, {CID.format(n="bitShiftRight(h, 12) %% %(contacts)s")}, ''),
       if(email, '', paths[1 + bitShiftRight(h, 24) %% length(paths)]),
       if(email, '', 'shop.example.com'),
       toUInt8(NOT email AND bitShiftRight(h, 50) %% 100 < 5),
       toUInt8(email AND bitShiftRight(h, 50) %% 100 < if(name = 'email_open', 30, 10)),
       if(email, toString(1 + bitShiftRight(h, 36) %% 10), ''),
       if(email, concat(toString(1 + bitShiftRight(h, 36) %% 10), '.',
                        toString(bitShiftRight(h, 12) %% %(contacts)s)), ''),
       if(name = 'email_click', toString(1 + bitShiftRight(h, 44) %% 3), ''),
       multiIf(name = 'purchase', ['item', 'value'], name = 'signup', ['plan'], emptyArrayString()),
       multiIf(name = 'purchase', [['shoe', 'hat', 'scarf'][1 + bitShiftRight(h, 44) %% 3],
                                   toString(bitShiftRight(h, 46) %% 200)],
               name = 'signup', [['free', 'pro'][1 + bitShiftRight(h, 44) %% 2]], emptyArrayString())
FROM (
    SELECT h, kind, visitor, ts, kind >= 900 AS email,
           multiIf(kind < 700, 'pageview', kind < 850, 'engagement', kind < 860, 'signup',
                   kind < 875, 'purchase', kind < 900, 'add_to_cart', kind < 930, 'email_sent',
                   kind < 975, 'email_open', 'email_click') AS name,
           ['/', '/products', '/products/blue-shoes', '/products/red-hat', '/blog/autumn', '/about',
            '/pricing', '/signup', '/cart', '/checkout', '/products/green-scarf', '/blog/shoes',
            '/contact', '/faq', '/careers', '/press', '/terms', '/privacy', '/login', '/account'] AS paths
    FROM (
        SELECT cityHash64(number, %(seed)s) AS h, h %% 1000 AS kind,
               -- skewed: a few visitors do much, most little (the linked ones come first)
               toUInt64(pow((bitShiftRight(h, 12) %% 1000000) / 1000000, 3) * %(visitors)s) AS visitor,
               toDateTime(now() - bitShiftRight(h, 28) %% (90 * 86400)) AS ts
        FROM numbers(%(start)s, %(rows)s)
    )
)
"""  # noqa: S608 - constant fragments of the benchmark

UNSUBSCRIBES_SQL = f"""
INSERT INTO events (event_id, name, ts, received_at, source, contact_id, `props.key`, `props.value`)
SELECT generateUUIDv4(), 'unsubscribe', now() - number %% (60 * 86400), now(), 'unsubscribe',
       {CID.format(n="number * 97 %% %(contacts)s")}, ['list', 'how'], ['', 'one_click']
FROM numbers(%(rows)s)
"""  # noqa: S608 - constant fragments of the benchmark

BASELINES = {  # the raw scan each segment's behaviour reads, as a plain count
    "pricing_no_signup": "SELECT count() FROM events WHERE name = 'pageview' AND pathname = '/pricing' "
                         "AND ts >= now() - 7 * 86400 AND is_bot = 0",
    "win_back": "SELECT count() FROM events WHERE ts >= now() - 60 * 86400 AND is_bot = 0 AND is_machine = 0 "
                "AND name NOT IN ('email_sent', 'consent')",
    "opened_not_clicked": "SELECT count() FROM events WHERE name IN ('email_open', 'email_click') "
                          "AND is_machine = 0",
    "new_this_week": "SELECT count() FROM contacts FINAL WHERE created_at >= now() - 7 * 86400",
}


def best(runs: int, work: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def generate(store: ClickHouseStore, contacts: int, events: int, chunk: int) -> None:
    started = time.perf_counter()
    store.command(CONTACTS_SQL, {"contacts": contacts})
    store.command(IDENTITIES_SQL, {"contacts": contacts, "linked": contacts * 3 // 2})
    print(f"contacts and identities: {time.perf_counter() - started:.1f} s", flush=True)
    for start in range(0, events, chunk):
        rows = min(chunk, events - start)
        began = time.perf_counter()
        store.command(EVENTS_SQL, {"contacts": contacts, "visitors": contacts * 3, "start": start,
                                   "rows": rows, "seed": 7})
        print(f"events {start + rows:,} of {events:,}: {time.perf_counter() - began:.1f} s", flush=True)
    store.command(UNSUBSCRIBES_SQL, {"contacts": contacts, "rows": max(1, contacts // 100)})
    print(f"generated in {time.perf_counter() - started:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=5_000_000, help="events per INSERT ... SELECT")
    parser.add_argument("--keep", type=Path, help="keep the server's folder here and reuse the data "
                                                  "it holds on the next run (time again without "
                                                  "generating again)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="odnos-segbench-"))
    server = ClickHouseServer(root / "ch")
    server.start()
    store = ClickHouseStore(ClickHouseTarget(embedded=False, database="bench", host="127.0.0.1",
                                             port=server.tcp_port, http_port=server.http_port))
    try:
        migrate(store)
        if not store.query("SELECT count() FROM events").scalar():
            generate(store, args.contacts, args.events, args.chunk)
            store.command("OPTIMIZE TABLE contacts FINAL")
        counts = store.query("SELECT (SELECT count() FROM events), (SELECT count() FROM contacts FINAL), "
                             "(SELECT count() FROM identities)").first()
        print(f"\n{counts[0]:,} events, {counts[1]:,} contacts, {counts[2]:,} identity links; "
              f"ClickHouse {store.query('SELECT version()').scalar()}, best of {args.runs}\n")
        folder = resources.files("schemas") / "examples" / "segments"
        print(f"{'segment':<20} {'members':>10} {'size s':>8} {'1st page s':>10} {'baseline s':>10}")
        for name, baseline in BASELINES.items():
            definition = json.loads((folder / f"{name}.json").read_text())
            size_s, size = best(args.runs, lambda d=definition: segment_size(store, d))
            page_s, _ = best(args.runs, lambda d=definition: segment_members(store, d, limit=1000))
            base_s, _ = best(args.runs, lambda q=baseline: store.query(q))
            print(f"{name:<20} {size:>10,} {size_s:>8.2f} {page_s:>10.2f} {base_s:>10.2f}", flush=True)
    finally:
        store.close()
        server.stop()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
