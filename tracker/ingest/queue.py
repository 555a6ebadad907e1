"""The collector's event queue: rows in, durable on disk before the answer, in ClickHouse in batches.

``EventQueue.submit(rows)`` serialises the rows as JSONEachRow lines and appends them to this
worker's spool in one write; once it returns the events survive a crash of the process, and the
writer thread lands them in the ``events`` table. ``dedupe`` is what makes a replayed batch land
once: it asks the store which of the batch's event ids are there already.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

import orjson

from tracker.ingest.spool import Spool, claim_spool
from tracker.ingest.writer import Writer, drain_orphans
from tracker.settings import Settings
from tracker.store.base import EventStore

log = logging.getLogger(__name__)

ORPHAN_INTERVAL = 60.0

# Which of a replayed batch's ids the table holds already; the time range keeps the scan small.
# The bounds are epoch seconds: 18.16 reads a text date compared with a DateTime('UTC') column in the
# server's own time zone: on a server not in UTC a text range is shifted and misses rows at its ends.
EXISTING_IDS_SQL = """
SELECT toString(event_id) FROM events
WHERE ts BETWEEN toDateTime(%(first)s) AND toDateTime(%(last)s) AND event_id IN %(ids)s
"""


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MAX_DATETIME = 2**32 - 1


def _replay_key(line: bytes) -> tuple[str, int] | None:
    """The (event_id, ts) a spooled line can be looked up by, or None when it has no usable pair."""
    try:
        row = orjson.loads(line)
        event_id, ts = row["event_id"], row["ts"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return None
    if not (isinstance(event_id, str) and type(ts) is int and 0 <= ts <= _MAX_DATETIME):
        return None
    event_id = event_id.lower()  # the store answers toString(event_id) in lower case
    return (event_id, ts) if _UUID.fullmatch(event_id) else None


def drop_stored(store: EventStore, data: bytes) -> bytes:
    """Keep only the lines whose event_id the store does not hold (a replayed, uncertain batch).

    A line with no usable ``event_id`` and ``ts`` (damaged, or not written by ``submit``) is kept:
    the store judges it, and if it refuses the line the writer dead-letters it. Raising here
    instead would stall the replay, and everything behind it, for good.
    """
    lines = [line for line in data.split(b"\n") if line]
    keys = [_replay_key(line) for line in lines]
    known = [key for key in keys if key is not None]
    existing: set[str] = set()
    ids = [event_id for event_id, _ in known]
    for start in range(0, len(ids), 5000):
        result = store.query(
            EXISTING_IDS_SQL,
            {
                "first": min(ts for _, ts in known),
                "last": max(ts for _, ts in known),
                "ids": tuple(ids[start : start + 5000]),
            },
            name="dedupe replayed batch",
        )
        existing.update(row[0] for row in result.rows)
    kept = [line for line, key in zip(lines, keys, strict=True) if key is None or key[0] not in existing]
    if len(kept) != len(lines):
        log.info(
            "replay: %d of %d events were already stored; skipped them",
            len(lines) - len(kept),
            len(lines),
        )
    return b"".join(line + b"\n" for line in kept)


class EventQueue:
    """One worker's spool and writer for the ``events`` table."""

    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.store = store
        self.root = settings.data_path / "spool"
        self.spool: Spool = claim_spool(self.root, settings.spool_max_bytes)
        self.writer = Writer(
            self.spool,
            store.insert_json_lines,
            "events",
            max_batch_rows=settings.batch_rows,
            interval=settings.batch_interval,
            dedupe=self.dedupe,
        )
        self.accepted_rows = 0
        self._count_lock = threading.Lock()
        self._stopping = threading.Event()
        threading.Thread(target=self._adopt_orphans, name="odnos-orphans", daemon=True).start()

    def _adopt_orphans(self) -> None:
        """Every minute, land what spools of workers that no longer run left behind."""
        while not self._stopping.wait(ORPHAN_INTERVAL):
            try:
                landed = drain_orphans(self.root, self.store.insert_json_lines, dedupe=self.dedupe)
            except Exception:
                log.exception("could not drain orphan spools under %s; will retry", self.root)
                continue
            if landed:
                log.info("landed %d events left in the spools of stopped workers", landed)

    def submit(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append the rows to the spool; raises SpoolFull (503) when the disk budget is used up."""
        lines = [orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows]
        self.spool.append(b"".join(lines))
        with self._count_lock:  # for /metrics; a lock, since `+=` from several threads can lose counts
            self.accepted_rows += len(lines)

    def dedupe(self, data: bytes) -> bytes:
        """Keep only the lines whose event_id the store does not hold (a replayed, uncertain batch)."""
        return drop_stored(self.store, data)

    def flush(self, timeout: float = 30.0) -> bool:
        return self.writer.flush(timeout)

    def stats(self) -> dict[str, Any]:
        return {**self.spool.stats(), **self.writer.stats(), "accepted_rows": self.accepted_rows}

    def close(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.writer.stop(timeout)
        self.spool.close()
