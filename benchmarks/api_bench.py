"""API benchmark: contacts upserted per second through ``POST /api/v1/contacts/batch``.

Starts `odnos serve` in a temporary folder (embedded chDB, as out of the box; ``--server`` puts the
event store on a ClickHouse server this script starts, as the tests do), makes an API key with the
real CLI, and sends ``--contacts`` contacts in batches of 1,000 from ``--clients`` threads, each on
one kept-alive connection. Three passes over the same addresses:

- create: every contact new (name, two attributes, a tag);
- unchanged: the same batches again (idempotent: read, compare, nothing written);
- update: every contact with one attribute changed.

Baseline in the same run: the same batches given to ``tracker.crm.contacts.upsert_contacts`` in
this process (no HTTP, no JSON, no authentication) on a store of its own of the same kind (another
chDB folder, or another database on the same ClickHouse server), so the API's own cost shows.
Each figure is the best of ``--repeat`` runs (a fresh set of addresses each run).

Budget (issue 10): >= 5,000 contacts/s on 2 cores.

    .venv/bin/python benchmarks/api_bench.py [--contacts 20000] [--clients 2] [--repeat 2] [--server]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.api_clients import api_key, post_all  # noqa: E402
from tests.fixtures.clickhouse import ClickHouseServer  # noqa: E402
from tests.fixtures.processes import OdnosServer, odnos_env  # noqa: E402
from tracker.control.db import ControlPlane  # noqa: E402
from tracker.crm.contacts import ContactUpdate, upsert_contacts  # noqa: E402
from tracker.settings import ClickHouseTarget  # noqa: E402
from tracker.store.chdb_store import ChdbStore  # noqa: E402
from tracker.store.clickhouse_store import ClickHouseStore  # noqa: E402
from tracker.store.migrate import migrate  # noqa: E402

BATCH = 1000
KEYS = ("bench-baseline-key-0123456789",)


def batches(run: str, contacts: int, plan: str) -> list[list[dict]]:
    rows = [{"email": f"c{n}-{run}@bench.example.com", "first_name": f"Name{n % 997}",
             "attrs": {"plan": plan, "city": ("Oslo", "Rome", "Lima")[n % 3]}, "tags": ["bench"]}
            for n in range(contacts)]
    return [rows[i:i + BATCH] for i in range(0, len(rows), BATCH)]


def send_all(port: int, key: str, work: list[list[dict]], clients: int) -> tuple[float, dict[str, int]]:
    """Post every batch from ``clients`` threads; seconds taken and the outcome counts."""
    totals: dict[str, int] = {}

    def take(counts: dict) -> None:
        for outcome in ("created", "updated", "unchanged", "refused"):
            totals[outcome] = totals.get(outcome, 0) + counts[outcome]

    bodies = [json.dumps({"contacts": batch}).encode() for batch in work]
    return post_all(port, key, "/api/v1/contacts/batch", bodies, clients, take), totals


def direct(store, control: ControlPlane, work: list[list[dict]]) -> float:
    """The baseline: the same batches through tracker.crm in this process."""
    updates = [[ContactUpdate(r["email"], first_name=r["first_name"], attrs=r["attrs"], tags=tuple(r["tags"]))
                for r in batch] for batch in work]
    started = time.perf_counter()
    for batch in updates:
        upsert_contacts(store, control, KEYS, batch, source="api")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=2, help="concurrent connections")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--server", action="store_true", help="the event store on a ClickHouse server")
    args = parser.parse_args()
    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)  # its failed polls while starting
    root = Path(tempfile.mkdtemp(prefix="odnos-apibench-"))
    clickhouse = None
    extra = {"ODNOS_LOG_LEVEL": "WARNING", "ODNOS_API_RATE_PER_SECOND": "100000", "ODNOS_API_BURST": "100000"}
    if args.server:
        clickhouse = ClickHouseServer(root / "ch")
        clickhouse.start()
        extra["ODNOS_CLICKHOUSE_URL"] = clickhouse.url_for("apibench")
    env = odnos_env(root / "data", **extra)
    try:
        plaintext = api_key(env, "contacts:write")
        if clickhouse is not None:
            target = ClickHouseTarget(embedded=False, database="apibench_direct", host="127.0.0.1",
                                      port=clickhouse.tcp_port, http_port=clickhouse.http_port)
            store = ClickHouseStore(target)
        else:
            store = ChdbStore(ClickHouseTarget(embedded=True, database="odnos", path=root / "direct" / "ch"),
                              memory_limit=2 * 1024**3)
        store.ensure_database()
        migrate(store)
        control = ControlPlane(f"sqlite:///{root / 'direct.sqlite3'}")
        control.migrate()
        results: dict[str, list[float]] = {}
        with OdnosServer(env) as server:
            for _ in range(args.repeat):
                run = uuid.uuid4().hex[:8]
                for name, plan, expect in (("create", "free", "created"), ("unchanged", "free", "unchanged"),
                                           ("update", "pro", "updated")):
                    work = batches(run, args.contacts, plan)
                    elapsed, totals = send_all(server.port, plaintext, work, args.clients)
                    assert totals.get(expect) == args.contacts, (name, totals)
                    results.setdefault(f"api {name}", []).append(args.contacts / elapsed)
                    baseline = direct(store, control, work)
                    results.setdefault(f"direct {name}", []).append(args.contacts / baseline)
        store.close()
        control.dispose()
        engine = "ClickHouse server" if args.server else "embedded chDB"
        print(f"\n{args.contacts:,} contacts in batches of {BATCH:,}, {args.clients} client(s), {engine}, "
              f"{os.cpu_count()} CPUs, best of {args.repeat}\n")
        print(f"{'pass':<12} {'API contacts/s':>15} {'direct contacts/s':>18}")
        for name in ("create", "unchanged", "update"):
            api_rate, direct_rate = max(results[f"api {name}"]), max(results[f"direct {name}"])
            print(f"{name:<12} {api_rate:>15,.0f} {direct_rate:>18,.0f}")
    finally:
        if clickhouse is not None:
            clickhouse.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
