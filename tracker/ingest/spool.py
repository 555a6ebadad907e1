"""Durable spool: the on-disk, append-only log of accepted events of one collector worker.

The collector acknowledges an event only once its line is in this spool, so what the spool holds
survives a ClickHouse outage and a ``kill -9`` of the collector; the writer (``writer.py``) inserts
it later, exactly once.

Layout of a spool directory::

    lock              flock-ed while a process owns the spool (released by the kernel on any death)
    00000007.jsonl    segments: JSONEachRow lines, appended with O_APPEND, deleted once consumed
    00000008.jsonl
    checkpoint.json   {"committed": [segment, offset], "inflight": [segment, offset] | null}

Why it is built this way:

- ``append`` is one ``os.write`` of whole lines to an O_APPEND descriptor: once it returns, the
  bytes are in the kernel, which is what survives ``kill -9``. fsync (for a crash of the machine)
  runs in a background thread every ``fsync_interval`` seconds, never per request.
- A process starts a new segment on its first append rather than appending to a segment left by
  a dead predecessor, so only the last segment at startup can end in a torn line.
- Before the writer hands a batch to the store it records the batch end as ``inflight``; after the
  store accepted it, it advances ``committed``. Data between the two may or may not be in the store,
  so it is replayed through a de-duplication hook (``Batch.replay``). Both steps are atomic
  (temporary file, fsync, rename, fsync of the directory).
- A torn final line (a write cut short by a crash; never acknowledged, because ``append`` returns
  only after the whole write) is cut off at startup, and only at the end of the last segment: a
  malformed line anywhere else would be a real error, not something to silently skip.
- After a crash of the machine the checkpoint may point past the data that reached the disk
  (data is fsync-ed lazily, checkpoints eagerly); such positions are clamped to the file size.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tracker.errors import OdnosError
from tracker.store.lock import FolderLock

log = logging.getLogger(__name__)

SEGMENT_BYTES = 8 * 1024 * 1024
FSYNC_INTERVAL = 0.2
MARK_SECONDS = 0.1  # appends this close together share one time mark (the oldest line's age)
CHECKPOINT = "checkpoint.json"
LOCK_FILE = "lock"
_SEGMENT_RE = re.compile(r"(\d{8,})\.jsonl")
_READ_CHUNK = 1024 * 1024

Position = tuple[int, int]  # (segment number, byte offset in it); compares in log order


class SpoolFull(OdnosError):
    """Too many bytes wait for the event store: refuse new events rather than fill the disk."""

    status = 503
    code = "spool_full"


class SpoolLocked(OdnosError):
    """Another live process owns this spool directory."""

    status = 503
    code = "spool_locked"


class SpoolError(OdnosError):
    """The spool cannot take the event (write error, disk full, spool closed)."""

    status = 503
    code = "spool_unavailable"


@dataclass(frozen=True, slots=True)
class Batch:
    """Whole lines ``[start, end)`` of one segment, read for one insert.

    ``replay`` is true when some of these lines may already be in the store (the process died, or
    the sink failed, after handing them over): pass them through de-duplication before inserting.
    ``more`` is true when the spool held more data beyond this batch when it was read.
    """

    segment: int
    start: int
    end: int
    data: bytes
    rows: int
    replay: bool
    more: bool


def _segment_name(number: int) -> str:
    return f"{number:08d}.jsonl"


def _spool_busy(lock_file: Path, other: str) -> Exception:
    return SpoolLocked(f"Spool {lock_file.parent} is in use by another process ({other}).")


def _cut_torn_tail(path: Path) -> int:
    """Truncate ``path`` after its last newline; return how many bytes were cut."""
    size = path.stat().st_size
    with open(path, "rb+") as f:
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            chunk = f.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        if end < size:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    return size - end


class Spool:
    """One worker's durable event log; see the module docstring for the format and guarantees.

    ``append`` is safe from any number of threads. ``read_batch``, ``begin`` and ``commit`` belong
    to one writer thread. ``max_bytes`` bounds the bytes not yet inserted (disk use may exceed it by
    up to one segment of consumed data not yet deleted).
    """

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        segment_bytes: int = SEGMENT_BYTES,
        *,
        fsync_interval: float = FSYNC_INTERVAL,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._owner = FolderLock(self.directory / LOCK_FILE, busy=_spool_busy)
        self._owner.acquire()
        self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self._recover()
        except BaseException:
            os.close(self._dir_fd)
            self._owner.release()
            raise
        self._lock = threading.Lock()
        self._committed_cv = threading.Condition(self._lock)
        self._active: int | None = None  # segment this process appends to; created on first append
        self._active_fd: int | None = None
        self._to_close: list[int] = []  # descriptors of sealed segments, fsync-ed then closed
        self._dirty = False
        self._dir_dirty = False
        self._full = False
        self._closed = False
        self._read_fd: tuple[int, int] | None = None  # (segment, fd) the writer reads from
        self._bytes_seen = 0  # for the rows estimate in stats()
        self._rows_seen = 0
        self._marks = self._recovered_marks()  # for the oldest pending line's age in stats()
        self._stop_sync = threading.Event()
        self._sync_failing = False
        self._syncer = threading.Thread(
            target=self._sync_loop, args=(fsync_interval,), name=f"odnos-spool-sync-{self.directory.name}"
        )
        self._syncer.daemon = True
        self._syncer.start()

    # -- startup ----------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Rebuild the state from the files a previous process left (or nothing)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.directory / (CHECKPOINT + ".tmp"))
        numbers = sorted(
            int(m.group(1)) for p in self.directory.iterdir() if (m := _SEGMENT_RE.fullmatch(p.name))
        )
        committed, inflight = self._read_checkpoint(numbers)
        for number in [n for n in numbers if n < committed[0]]:
            os.unlink(self.directory / _segment_name(number))  # consumed; the delete was cut short
        numbers = [n for n in numbers if n >= committed[0]]
        if numbers and committed[0] != numbers[0]:
            committed, inflight = (numbers[0], 0), None  # its segment was consumed and deleted
        if numbers:
            cut = _cut_torn_tail(self.directory / _segment_name(numbers[-1]))
            if cut:
                log.warning(
                    "Spool %s: cut a torn trailing fragment of %d bytes from segment %s (a write "
                    "interrupted by a crash; it was never acknowledged).",
                    self.directory,
                    cut,
                    _segment_name(numbers[-1]),
                )
        self._sizes = {n: (self.directory / _segment_name(n)).stat().st_size for n in numbers}
        if committed[0] in self._sizes:
            committed = (committed[0], min(committed[1], self._sizes[committed[0]]))
        if inflight is not None:
            inflight = (inflight[0], min(inflight[1], self._sizes.get(inflight[0], 0)))
            if inflight <= committed:
                inflight = None
        self._committed: Position = committed
        self._inflight: Position | None = inflight
        self._pending = sum(self._sizes.values()) - (committed[1] if numbers else 0)
        self._next_segment = max([committed[0], *(n + 1 for n in numbers)])
        if self._pending:
            log.info(
                "Spool %s: %d bytes left by a previous process will be inserted%s.",
                self.directory,
                self._pending,
                " (the last batch through de-duplication)" if inflight else "",
            )

    def _read_checkpoint(self, numbers: list[int]) -> tuple[Position, Position | None]:
        path = self.directory / CHECKPOINT
        first = numbers[0] if numbers else 1
        try:
            state = json.loads(path.read_bytes())
            committed = (int(state["committed"][0]), int(state["committed"][1]))
            inflight = state["inflight"]
            return committed, None if inflight is None else (int(inflight[0]), int(inflight[1]))
        except FileNotFoundError:
            return (first, 0), None  # nothing was ever handed to the store
        except (ValueError, KeyError, TypeError, IndexError):
            # Unreadable (it is written atomically, so this means outside damage): we do not know
            # what was inserted, so everything goes through de-duplication.
            log.error(
                "Spool %s: %s is unreadable; replaying all data through de-duplication.", path.parent, path
            )
            last = (
                (numbers[-1], (self.directory / _segment_name(numbers[-1])).stat().st_size)
                if numbers
                else None
            )
            return (first, 0), last

    # -- appending (any thread) -------------------------------------------------------------------

    def _recovered_marks(self) -> collections.deque[tuple[Position, float]]:
        """A mark for what a previous process left: its oldest segment's last write, so at least that old."""
        marks: collections.deque[tuple[Position, float]] = collections.deque()
        if self._pending and self._sizes:
            first, last = min(self._sizes), max(self._sizes)
            written = (self.directory / _segment_name(first)).stat().st_mtime
            marks.append(((last, self._sizes[last]), written))
        return marks

    def _mark(self, end: Position) -> None:
        """Under the lock: note when the data before ``end`` was appended, one mark per MARK_SECONDS."""
        now = time.time()
        if self._marks and now - self._marks[-1][1] < MARK_SECONDS:
            self._marks[-1] = (end, self._marks[-1][1])  # the group keeps its first append's time
        else:
            self._marks.append((end, now))

    def append(self, data: bytes) -> None:
        """Add whole lines (``data`` ends with ``\\n``); return once they are in the kernel.

        Raises ``SpoolFull`` when the bytes waiting for the store would exceed ``max_bytes``,
        ``SpoolError`` when the write fails (the partial write is undone).
        """
        if not data:
            return
        if not data.endswith(b"\n"):
            raise ValueError("spool data must be whole lines, each ending with a newline")
        size = len(data)
        with self._lock:
            if self._closed:
                raise SpoolError(f"Spool {self.directory} is closed.")
            if self._pending + size > self.max_bytes:
                if not self._full:
                    self._full = True
                    log.error(
                        "Spool %s is full: %d bytes wait for the event store (limit %d); refusing new "
                        "events with 503 until inserts catch up. Is ClickHouse reachable?",
                        self.directory,
                        self._pending,
                        self.max_bytes,
                    )
                raise SpoolFull(
                    "The event buffer is full because the event store is not keeping up; retry later."
                )
            if self._active_fd is None:
                self._open_segment()
            fd, number = self._active_fd, self._active
            offset = self._sizes[number]
            try:
                done = os.write(fd, data)
                while done < size:  # a short write to a regular file: only on a nearly full disk
                    done += os.write(fd, memoryview(data)[done:])
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, offset)  # never leave half a line for the next one to glue onto
                raise SpoolError(f"Cannot write to spool {self.directory}: {exc}.") from exc
            self._sizes[number] = offset + size
            self._pending += size
            self._bytes_seen += size
            self._mark((number, offset + size))
            self._dirty = True
            if offset + size >= self.segment_bytes:
                self._to_close.append(fd)  # sealed; the next append starts a new segment
                self._active_fd = self._active = None
        self._rows_seen += data.count(b"\n")  # statistics only; a lost race costs nothing

    def _open_segment(self) -> None:
        number = self._next_segment
        path = self.directory / _segment_name(number)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise SpoolError(f"Cannot create spool segment {path}: {exc}.") from exc
        self._next_segment += 1
        self._sizes[number] = 0
        self._active, self._active_fd = number, fd
        self._dir_dirty = True

    # -- background fsync -------------------------------------------------------------------------

    def _sync_loop(self, interval: float) -> None:
        while not self._stop_sync.wait(interval):
            self._sync()

    def _sync(self) -> None:
        """Group commit: one fsync covers every append since the last one."""
        with self._lock:
            fd = self._active_fd if self._dirty else None
            sealed, self._to_close = self._to_close, []
            dir_dirty, self._dir_dirty, self._dirty = self._dir_dirty, False, False
        try:
            for old in sealed:
                try:
                    os.fsync(old)
                finally:
                    os.close(old)
            if fd is not None:
                os.fsync(fd)
            if dir_dirty:
                os.fsync(self._dir_fd)
        except OSError as exc:
            if not self._sync_failing:
                log.error(
                    "Spool %s: fsync failed (%s); data is safe from a process crash only.",
                    self.directory,
                    exc,
                )
            self._sync_failing = True
        else:
            self._sync_failing = False

    # -- reading and committing (the writer thread) ------------------------------------------------

    def read_batch(self, max_bytes: int, max_rows: int) -> Batch | None:
        """Read the next whole lines after the committed position, or None if there are none.

        A batch never spans two segments. A single line longer than ``max_bytes`` forms a batch
        alone. A segment is deleted once it is sealed and fully inserted (here or in ``commit``).
        """
        while True:
            with self._lock:
                if self._closed:
                    raise SpoolError(f"Spool {self.directory} is closed.")
                number, start = self._committed
                if number not in self._sizes:
                    return None
                size = self._sizes[number]
                sealed = number != self._active
                last = number == max(self._sizes)
                inflight = self._inflight
            if start < size:
                break
            if not sealed:
                return None
            with self._lock:  # sealed after it was consumed: move on, then delete it
                self._step_past(number)
            self._write_checkpoint()
            self._delete_segment(number)
        stop = size
        replay = inflight is not None and inflight > (number, start)
        if replay and inflight[0] == number:
            stop = min(stop, inflight[1])  # keep the replayed range apart from data never sent
        data, rows = self._read_lines(number, start, stop, max_bytes, max_rows)
        end = start + len(data)
        return Batch(number, start, end, data, rows, replay, more=end < size or not last)

    def _read_lines(
        self, number: int, start: int, stop: int, max_bytes: int, max_rows: int
    ) -> tuple[bytes, int]:
        if self._read_fd is None or self._read_fd[0] != number:
            self._close_read_fd()
            self._read_fd = (number, os.open(self.directory / _segment_name(number), os.O_RDONLY))
        fd = self._read_fd[1]
        chunks, rows, pos = [], 0, start
        limit = min(stop, start + max(max_bytes, 1))
        while pos < limit and rows < max_rows:
            chunk = os.pread(fd, min(_READ_CHUNK, limit - pos), pos)
            if not chunk:
                raise SpoolError(f"Spool segment {_segment_name(number)} is shorter than recorded.")
            chunks.append(chunk)
            rows += chunk.count(b"\n")
            pos += len(chunk)
        data = b"".join(chunks)
        if rows > max_rows:
            cut = 0
            for _ in range(max_rows):
                cut = data.index(b"\n", cut) + 1
            return data[:cut], max_rows
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # one line longer than max_bytes: send it alone rather than never
            rest = os.pread(fd, stop - start, start)
            cut = rest.index(b"\n") + 1
            return rest[:cut], 1
        return data[:cut], data.count(b"\n", 0, cut)

    def _close_read_fd(self) -> None:
        if self._read_fd is not None:
            os.close(self._read_fd[1])
            self._read_fd = None

    def _step_past(self, number: int) -> bool:
        """Under the lock: if ``number`` is sealed and committed to its end, commit to the next one."""
        if self._committed != (number, self._sizes[number]) or number == self._active:
            return False
        later = [n for n in self._sizes if n > number]
        self._committed = (min(later) if later else self._next_segment, 0)
        return True

    def _delete_segment(self, number: int) -> None:
        """Delete a consumed segment; called after the checkpoint that moved past it."""
        if self._read_fd is not None and self._read_fd[0] == number:
            self._close_read_fd()
        os.unlink(self.directory / _segment_name(number))
        with self._lock:
            del self._sizes[number]

    def begin(self, batch: Batch) -> None:
        """Record ``batch`` as in flight before it goes to the store (the crash-time question mark)."""
        with self._lock:
            if self._inflight is not None and self._inflight >= (batch.segment, batch.end):
                return  # a replayed batch: already recorded
            self._inflight = (batch.segment, batch.end)
        self._write_checkpoint()

    def commit(self, batch: Batch) -> None:
        """Record that the store holds ``batch``; its bytes stop counting against ``max_bytes``."""
        with self._lock:
            if self._committed != (batch.segment, batch.start):
                raise RuntimeError(
                    f"commit of {batch.segment}:{batch.start} but committed is {self._committed}"
                )
            self._committed = (batch.segment, batch.end)
            while self._marks and self._marks[0][0] <= self._committed:
                self._marks.popleft()
            finished = self._step_past(batch.segment)
            if self._inflight is not None and self._inflight <= self._committed:
                self._inflight = None
            self._pending -= batch.end - batch.start
            if self._full and self._pending < self.max_bytes:
                self._full = False
                log.warning(
                    "Spool %s accepts events again (%d bytes waiting).", self.directory, self._pending
                )
        self._write_checkpoint()
        if finished:
            self._delete_segment(batch.segment)
        with self._committed_cv:
            self._committed_cv.notify_all()

    def _write_checkpoint(self) -> None:
        with self._lock:
            if self._closed:
                raise SpoolError(f"Spool {self.directory} is closed.")
            state = {"committed": list(self._committed), "inflight": self._inflight and list(self._inflight)}
        tmp = self.directory / (CHECKPOINT + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, json.dumps(state).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.directory / CHECKPOINT)
        os.fsync(self._dir_fd)

    # -- waiting, stats, closing ------------------------------------------------------------------

    def end_position(self) -> Position:
        """Position just after the last appended line (what ``wait_committed`` can wait for)."""
        with self._lock:
            if not self._sizes:
                return self._committed
            last = max(self._sizes)
            return (last, self._sizes[last])

    def wait_committed(self, position: Position, timeout: float | None = None) -> bool:
        """Wait until everything before ``position`` is in the store; False on timeout or close."""
        with self._committed_cv:
            self._committed_cv.wait_for(lambda: self._closed or self._committed >= position, timeout)
            return self._committed >= position

    @property
    def pending_bytes(self) -> int:
        return self._pending

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> dict:
        with self._lock:
            pending = self._pending
            estimate = round(pending * self._rows_seen / self._bytes_seen) if self._bytes_seen else None
            oldest = self._marks[0][1] if pending and self._marks else None
            return {
                "oldest_pending_seconds": None if oldest is None else round(max(0.0, time.time() - oldest),
                                                                                3),
                "directory": str(self.directory),
                "pending_bytes": pending,
                "pending_rows_estimate": 0 if pending == 0 else estimate,
                "max_bytes": self.max_bytes,
                "full": self._full,
                "segments": len(self._sizes),
                "committed": list(self._committed),
                "replaying": self._inflight is not None,
            }

    def close(self) -> None:
        """fsync, close the files and release the directory for the next process."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._active_fd is not None:
                self._to_close.append(self._active_fd)
                self._active_fd = self._active = None
            self._dirty = False
        self._stop_sync.set()
        self._syncer.join()
        self._sync()
        self._close_read_fd()
        os.close(self._dir_fd)
        self._owner.release()
        with self._committed_cv:
            self._committed_cv.notify_all()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def claim_spool(
    root: Path,
    max_bytes: int,
    segment_bytes: int = SEGMENT_BYTES,
    *,
    fsync_interval: float = FSYNC_INTERVAL,
) -> Spool:
    """Open the lowest-numbered slot ``root/<n>`` no live process holds.

    A restarted worker thus takes over a slot its dead predecessor left, with its data. Slots
    left over when fewer workers run are drained by ``writer.drain_orphans``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        try:
            return Spool(root / str(slot), max_bytes, segment_bytes, fsync_interval=fsync_interval)
        except SpoolLocked:
            slot += 1
