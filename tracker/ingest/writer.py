"""Spool writer: one thread that moves a spool's lines into the event store, in batches, exactly once.

It reads straight from the spool files beyond the committed position, so replay after a restart and
normal operation are one code path, and nothing the store has not confirmed is ever held only in
memory. The lines go to the sink as raw bytes (``INSERT ... FORMAT JSONEachRow``): no JSON is
parsed on the way.

Exactly once: each batch is recorded as in flight before the sink sees it and committed after the
sink returns. A batch whose fate is unknown (the process died or the sink raised after handing it
over: a timeout may hide a successful insert) is passed through ``dedupe`` before it is sent again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tracker.ingest.spool import Batch, Spool, SpoolLocked

log = logging.getLogger(__name__)

Sink = Callable[[str, bytes, int], None]
"""``sink(table, data, rows)``: insert ``rows`` JSONEachRow lines; raise on any failure."""
Dedupe = Callable[[bytes], bytes]
"""``dedupe(data)``: return the lines of ``data`` whose ``event_id`` the store does not hold yet."""

BACKOFF_START = 0.2
BACKOFF_MAX = 5.0


def backoff_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failures: 0.2, 0.4, 0.8 ... capped at 5."""
    return min(BACKOFF_MAX, BACKOFF_START * 2 ** min(failures - 1, 32))  # no float overflow in long outages


class Writer:
    """Insert everything a spool holds, by size or every ``interval`` seconds, retrying forever.

    On a sink failure the data stays in the spool; the writer logs once per outage and retries
    with capped exponential backoff, never dropping or reordering lines.
    """

    def __init__(
        self,
        spool: Spool,
        sink: Sink,
        table: str = "events",
        max_batch_rows: int = 10_000,
        max_batch_bytes: int = 8 * 1024 * 1024,
        interval: float = 0.5,
        dedupe: Dedupe | None = None,
    ) -> None:
        self.spool = spool
        self.sink = sink
        self.table = table
        self.max_batch_rows = max_batch_rows
        self.max_batch_bytes = max_batch_bytes
        self.interval = interval
        self.dedupe = dedupe
        self.inserted_rows = 0
        self.inserted_batches = 0
        self.deduplicated_rows = 0
        self.failures = 0  # consecutive
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_insert_at: float | None = None
        self._outage_started: float | None = None
        self._warned_no_dedupe = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"odnos-writer-{spool.directory.name}")
        self._thread.daemon = True  # data is in the spool: dying with the process loses nothing
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set() and not self.spool.closed:
            self._wake.clear()  # before the step, so a flush() during the step is not missed
            try:
                batch = self._step()
            except Exception as exc:  # the store, dedupe or the disk: keep the data, retry later
                self._failed(exc)
                self._stopping.wait(backoff_delay(self.failures))
                continue
            if batch is None or not batch.more:  # a full batch is followed at once by the next
                self._wake.wait(self.interval)

    def _step(self) -> Batch | None:
        batch = self.spool.read_batch(self.max_batch_bytes, self.max_batch_rows)
        if batch is None:
            return None
        data, rows = batch.data, batch.rows
        if batch.replay:
            if self.dedupe is not None:
                data = self.dedupe(data)
                rows = data.count(b"\n")
                self.deduplicated_rows += batch.rows - rows
            elif not self._warned_no_dedupe:
                self._warned_no_dedupe = True
                log.warning(
                    "Spool %s: re-sending a batch that may already be in %s, with no dedupe hook: "
                    "up to %d rows may be duplicated.",
                    self.spool.directory,
                    self.table,
                    batch.rows,
                )
        self.spool.begin(batch)
        if rows:
            self.sink(self.table, data, rows)
        self.spool.commit(batch)
        self.inserted_rows += rows
        self.inserted_batches += 1
        self.last_insert_at = time.time()
        if self.failures:
            log.warning(
                "Inserts into %s work again after %d failed attempts over %.1f s.",
                self.table,
                self.failures,
                time.monotonic() - (self._outage_started or time.monotonic()),
            )
            self.failures = 0
            self._outage_started = None
        return batch

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.last_error_at = time.time()
        if self.failures == 1:
            self._outage_started = time.monotonic()
            log.error(
                "Insert into %s failed (%s); %d bytes stay in spool %s and are retried with backoff "
                "up to %g s. Nothing is dropped.",
                self.table,
                self.last_error,
                self.spool.pending_bytes,
                self.spool.directory,
                BACKOFF_MAX,
            )
        else:
            log.debug(
                "Insert into %s failed again (attempt %d): %s", self.table, self.failures, self.last_error
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything appended before this call is in the store; False on timeout."""
        target = self.spool.end_position()
        self._wake.set()
        return self.spool.wait_committed(target, timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """Flush (up to ``timeout``), then stop the thread; True if everything was inserted.

        What was not inserted stays in the spool for the next process.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        flushed = self.flush(timeout)
        self._stopping.set()
        self._wake.set()
        self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()) + 0.1)
        return flushed

    def stats(self) -> dict:
        """Counters for /healthz: what waits, what was inserted, the last error."""
        return {
            **self.spool.stats(),
            "table": self.table,
            "inserted_rows": self.inserted_rows,
            "inserted_batches": self.inserted_batches,
            "deduplicated_rows": self.deduplicated_rows,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_insert_at": self.last_insert_at,
            "running": self._thread.is_alive(),
        }


def drain_orphans(
    root: Path,
    sink: Sink,
    *,
    table: str = "events",
    dedupe: Dedupe | None = None,
    timeout: float = 60.0,
) -> int:
    """Insert what unlocked slots under ``root`` hold (left when fewer workers run); return the rows.

    Call it from a live worker, off the request path. Slots held by live workers are skipped; a
    slot whose data cannot be inserted within ``timeout`` keeps it for a later call.
    """
    root = Path(root)
    if not root.is_dir():
        return 0
    rows = 0
    for slot in sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
        try:
            spool = Spool(slot, max_bytes=0)  # drain only: refuses appends
        except SpoolLocked:
            continue
        try:
            if spool.pending_bytes:
                writer = Writer(spool, sink, table, dedupe=dedupe, interval=0.05)
                if not writer.stop(timeout):
                    log.warning("Orphan spool %s not fully drained within %.0f s; will retry.", slot, timeout)
                rows += writer.inserted_rows
        finally:
            spool.close()
    return rows
