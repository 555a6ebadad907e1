"""`odnos status`: what runs on this data folder (server, URL, store, ingestion queue, last errors).

It reads only what a running server publishes (the key file, the folder lock's note, ``/healthz``)
and the control database, which takes several processes: it never opens the event store, so it runs
the same whether or not a server holds the folder, and is never forwarded.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from tracker.cli.common import open_control
from tracker.control.models import Rule
from tracker.remote import keyfile
from tracker.remote.client import FORWARDED, running_jobs
from tracker.settings import Settings, load_settings
from tracker.store.lock import is_held

HEALTH_TIMEOUT_SECONDS = 3


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("status", help="what runs on this data folder: server, URL, queue, last error",
                            description="Say whether an odnos server runs on this data folder (or, in "
                                        "server mode, answers at ODNOS_HOST:ODNOS_PORT): its pid, URL, "
                                        "store, ingestion queue and the last errors. Exit 0 when it "
                                        "runs, 1 when it does not.")
    parser.set_defaults(run=run)


def _health(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=HEALTH_TIMEOUT_SECONDS) as response:  # noqa: S310
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def _when(epoch: float | None) -> str:
    return "never" if epoch is None else f"{datetime.fromtimestamp(epoch, UTC):%Y-%m-%d %H:%M:%S} UTC"


def _queue_lines(health: dict[str, Any]) -> list[str]:
    queue = health.get("ingestion")
    if not queue:
        return ["queue: none (no collector in this process)"]

    def count(key: str) -> str:
        return f"{queue.get(key) or 0:,}"

    state = "full: beacons get 503" if queue.get("full") else "replaying" if queue.get("replaying") else "ok"
    failures = queue.get("failures")
    return [f"queue: {count('pending_rows_estimate')} rows waiting ({count('pending_bytes')} bytes), "
            f"{state}; {count('inserted_rows')} rows inserted since start, last insert "
            f"{_when(queue.get('last_insert_at'))}",
            f"last ingestion error: {_when(queue.get('last_error_at'))}"
            + (f" ({failures} failures in a row; see the server log)" if failures else ""),
            f"dead-letter rows: {count('dead_letter_rows')}"]


def _rule_error(settings: Settings) -> str:
    control = open_control(settings)
    try:
        with control.session() as db:
            rule = db.scalars(select(Rule).where(Rule.last_error.is_not(None))
                              .order_by(Rule.last_run_at.desc()).limit(1)).first()
            if rule is None:
                return "last rule error: none"
            return (f"last rule error: rule {rule.name!r} at {rule.last_run_at:%Y-%m-%d %H:%M:%S} UTC: "
                    f"{rule.last_error}")
    finally:
        control.dispose()


def _forwarded() -> str:
    names = [name if actions is None else f"{name} {'/'.join(sorted(actions))}"
             for name, actions in FORWARDED.items()]
    return ", ".join(names)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    target = settings.clickhouse
    if not target.embedded:
        url = keyfile.loopback_url(settings.host, settings.port) or f"http://{settings.host}:{settings.port}"
        health = _health(url)
        if health is None:
            print(f"odnos is not answering at {url} (server mode, ClickHouse at {target.host}:{target.port})")
            return 1
        print(f"odnos {' '.join(health.get('parts', []))} is running at {url} (server mode, ClickHouse at "
              f"{target.host}:{target.port}); worker pid {health.get('worker')}")
        for line in _queue_lines(health):
            print(line)
        print(_rule_error(settings))
        return 0
    lock = target.path.with_name(target.path.name + ".lock")
    if not is_held(lock):
        print(f"odnos is not running on {settings.data_path} (embedded store in {target.path}); "
              "`odnos serve` starts it")
        return 1
    served = keyfile.running(settings)
    if served is None:  # held, but not by a server that takes commands: a command, or a foreign address
        print(f"the embedded store in {target.path} is held by {lock.read_text().strip()}; commands that "
              "need the store wait until it is free")
        return 0
    health = _health(served.url)
    print(f"odnos serve is running on {settings.data_path}")
    print(f"main process: pid {served.pid} (Ctrl+C in its terminal, or kill -INT {served.pid}, stops it); "
          f"worker pid {served.worker}")
    print(f"url: {served.url}" + ("" if health is not None else "  (not answering /healthz now)"))
    print(f"store: chdb, embedded in {target.path}")
    for line in _queue_lines(health) if health is not None else []:
        print(line)
    jobs = running_jobs(served)
    if jobs:
        print("commands running in it now:")
        for job in jobs:
            started = datetime.fromtimestamp(job["started_at"], UTC)
            print(f"  odnos {' '.join(job['argv'])}  (since {started:%H:%M:%S} UTC)")
    elif jobs is not None:
        print("commands running in it now: none")
    print(_rule_error(settings))
    print(f"commands that go through it: {_forwarded()}")
    return 0
