"""Spool writer: one thread that moves a spool's lines into the event store, in batches, exactly once.

It reads straight from the spool files beyond the committed position, so replay after a restart and
normal operation are one code path, and nothing the store has not confirmed is ever held only in
memory. The lines go to the sink as raw bytes (``INSERT ... FORMAT JSONEachRow``): no JSON is
parsed on the way.

Exactly once: each batch is recorded as in flight before the sink sees it and committed after the
sink returns. A batch whose fate is unknown (the process died or the sink raised after handing it
over: a timeout may hide a successful insert) is passed through ``dedupe`` before it is sent again.

Refused for good: when the store refuses the rows themselves (``RowsRejected``: a line that does
not parse or does not fit its column), retrying would stall everything behind them. The batch is
split, at the row the store named or else in halves, until each refused line stands alone; every
other line lands, the refused ones go to the dead-letter file beside the spool's segments with
the store's message, and the spool moves on. An outage during the split raises as any outage
does: the batch is in flight, so the retry dedupes what the split had landed already.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from tracker.errors import RowsRejected
from tracker.ingest.spool import Batch, Spool, SpoolLocked

log = logging.getLogger(__name__)

Sink = Callable[[str, bytes, int], None]
"""``sink(table, data, rows)``: insert ``rows`` JSONEachRow lines at once; raise on any failure,
``RowsRejected`` when the store refuses the data itself."""
Dedupe = Callable[[bytes], bytes]
"""``dedupe(data)``: return the lines of ``data`` whose ``event_id`` the store does not hold yet."""

DEAD_LETTERS = "dead-letters.jsonl"
"""In the spool's folder: one JSON object per refused line (``at``, ``table``, ``error``, ``line``)."""

BACKOFF_START = 0.2
BACKOFF_MAX = 5.0


def backoff_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failures: 0.2, 0.4, 0.8 ... capped at 5."""
    return min(BACKOFF_MAX, BACKOFF_START * 2 ** min(failures - 1, 32))  # no float overflow in long outages


class Writer:
    """Insert everything a spool holds, by size or every ``interval`` seconds, retrying forever.

    On a sink failure the data stays in the spool; the writer logs once per outage and retries
    with capped exponential backoff, never dropping lines. Lines the store refuses for good go to
    the dead-letter file (one error line in the log per batch that had some).
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
        self.dead_letters = spool.directory / DEAD_LETTERS
        self._dead_letter_count = DeadLetterCount(self.dead_letters)
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
        refused = self._insert(data, rows) if rows else []
        if refused:
            self._dead_letter(refused, rows)
        self.spool.commit(batch)
        self.inserted_rows += rows - len(refused)
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

    def _insert(self, data: bytes, rows: int) -> list[tuple[bytes, RowsRejected]]:
        return insert_or_refuse(self.sink, self.table, data, rows)

    def _dead_letter(self, refused: list[tuple[bytes, RowsRejected]], rows: int) -> None:
        """Append the refused lines to the dead-letter file, on disk before the spool moves past them."""
        append_dead_letters(self.dead_letters, self.table, refused)
        log.error(
            "%s refused %d of %d rows for good (first: %s); they are in the dead-letter file %s, "
            "every other row landed; land them with `odnos ingest replay-dead-letters` once fixed.",
            self.table,
            len(refused),
            rows,
            " ".join(refused[0][1].server_message.split())[:300],  # one log line
            self.dead_letters,
        )

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
            "dead_letter_rows": self._dead_letter_count.rows(),
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_insert_at": self.last_insert_at,
            "running": self._thread.is_alive(),
        }


def insert_or_refuse(sink: Sink, table: str, data: bytes, rows: int) -> list[tuple[bytes, RowsRejected]]:
    """Insert the lines; if the store refuses some for good, land all the others and return those.

    k refused lines among n cost about 3k inserts when the store names the row, about
    2k log2(n/k) when it does not. Any other error raises, whatever the split had landed.
    """
    try:
        sink(table, data, rows)
        return []
    except RowsRejected as exc:
        first = exc
    refused: list[tuple[bytes, RowsRejected]] = []
    lines = [line + b"\n" for line in data.split(b"\n")[:-1]]
    todo: list[tuple[list[bytes], RowsRejected | None]] = [(lines, first)]  # parts, and their refusal
    while todo:  # a stack, not recursion: a batch of 10,000 refused lines is 10,000 levels deep
        lines, error = todo.pop()
        if error is None:
            try:
                sink(table, b"".join(lines), len(lines))
                continue
            except RowsRejected as exc:
                error = exc
        if len(lines) == 1:
            refused.append((lines[0], error))
            continue
        todo.extend((part, None) for part in reversed(_split(lines, error.row)) if part)
    return refused


def append_dead_letters(path: Path, table: str, refused: list[tuple[bytes, RowsRejected]]) -> None:
    """Append one record per refused line (``DEAD_LETTERS`` has the fields), synced to disk."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    data = b"".join(orjson.dumps({"at": at, "table": table, "error": error.server_message,
                                  **_line_field(line)}) + b"\n" for line, error in refused)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def dead_letter_line(record: dict) -> bytes:
    """The refused line a dead-letter record holds, as it was spooled (with its newline)."""
    if "line_base64" in record:
        return base64.b64decode(record["line_base64"]) + b"\n"
    return record["line"].encode() + b"\n"


class DeadLetterCount:
    """How many records a dead-letter file holds, counted again only when the file changed.

    A replay (``tracker.ingest.dead_letters``) empties the file while the writer runs, so a count
    kept in memory would go stale; recounting on every health check would read the whole file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._rows = 0

    def rows(self) -> int:
        try:
            info = self.path.stat()
            seen = (info.st_ino, info.st_size, info.st_mtime_ns)
        except FileNotFoundError:
            seen = (0, 0, 0)
        if seen != self._seen:
            self._rows, self._seen = _count_lines(self.path), seen
        return self._rows


def _split(lines: list[bytes], row: int | None) -> list[list[bytes]]:
    """Parts of a refused insert to try apart: around the 1-based ``row`` the store named, else halves."""
    if row is not None and 1 <= row <= len(lines):
        return [lines[: row - 1], lines[row - 1 : row], lines[row:]]
    half = len(lines) // 2
    return [lines[:half], lines[half:]]


def _line_field(line: bytes) -> dict[str, str]:
    """A refused line for the dead-letter record: as text, or base64 when it is not UTF-8."""
    raw = line.removesuffix(b"\n")
    try:
        return {"line": raw.decode()}
    except UnicodeDecodeError:
        return {"line_base64": base64.b64encode(raw).decode()}


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as file:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


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
