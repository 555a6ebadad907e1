"""Group a cookieless visitor's hits into sessions: 30 minutes of inactivity starts a new one.

The live sessions are kept in one table shared by every collector process on the machine: a
fixed-size open-addressing hash table in a memory-mapped file (``<data dir>/sessions.map``). The
collector's workers, forked by granian, each serve whichever connection reaches them; with a table
per process a visit whose hits reached two workers would show as two sessions. Through the file,
workers, a respawned worker and a collector started separately on the same data folder all see the
same sessions, and a restart keeps them.

Each call holds an ``flock`` on the file for a few microseconds: the kernel releases it when a
process dies holding it, which a lock word in shared memory would not (a ``kill -9`` would then
stall every worker). A threading lock serialises the threads of one process, which share the file
descriptor and so the ``flock``. Why not the events in ClickHouse: they land in batches, seconds
later, so the hit that continues a visit cannot wait for them; and a rule computed from the hit
alone (a time bucket) cannot tell inactivity from a bucket's edge.

Bounded: ``SLOTS`` entries; a key lives in the ``WINDOW`` slots after its hash, and when these are
all taken the stalest entry there is replaced. A replaced visitor's next hit merely starts a new
session, the same as after a long pause; with fewer live visitors than a third of the slots this
practically never happens to a live one.

The collector calls ``assign`` only for hits without ids of their own: when the snippet sends its
visitor and session ids (it keeps them in the page's storage), those are used as they are.
The table is one machine's: with collectors on several machines behind a load balancer, route a
client to the same machine (client-IP affinity), or one visit may show as several sessions.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tracker.entropy import RandomPool

SESSION_TIMEOUT = 30 * 60
FILE_NAME = "sessions.map"  # in the data folder
# 2^18 slots of 24 bytes: a 6 MB file, shared by every worker (the in-memory table it replaces cost
# each worker ~20 MB for 50,000 visitors); room for ~90,000 visitors active within 30 minutes.
SLOTS = 1 << 18
WINDOW = 16  # slots a key may take after its hash: the probes of a lookup, at most

# The header names the format and its geometry: a file that does not match is made anew.
_MAGIC = b"odnos-sessions/1"
_HEADER = struct.Struct("<16sQQ")  # magic, slots, window
_HEADER_BYTES = 64
# A slot: the key's hash (0: empty), the session id, when it was last seen (Unix time).
_SLOT = struct.Struct("<Q8sd")
_EMPTY = 0
_NEVER = float("inf")
_SESSION_IDS = RandomPool(8)


@dataclass(frozen=True, slots=True)
class Assignment:
    visitor_id: str
    session_id: str  # 16 hex characters
    new_session: bool


def _key(site_id: str | int, visitor_id: str) -> int:
    """A stable 64-bit hash of (site, visitor), never 0 (the empty slot); the same in every process."""
    digest = hashlib.blake2b(f"{site_id}\0{visitor_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


class SessionTracker:
    """The live sessions in the table at ``path``, shared with every process that opens it.

    A missing file is created; one of the wrong size or format (another program's, a torn
    creation) is made anew, empty. Every process on one file must use the same ``slots`` (the
    collector's all use ``SLOTS``): one of another size would make the file anew under the others.
    A tracker made before a fork keeps working in the child: it opens the file again there, so the
    child's lock excludes the parent's (a descriptor shared across a fork shares its ``flock``).
    """

    def __init__(self, path: Path, timeout: float = SESSION_TIMEOUT, slots: int = SLOTS) -> None:
        if slots <= 0 or slots & (slots - 1):
            raise ValueError(f"slots must be a power of two, got {slots}")
        self.path = Path(path)
        self._timeout = timeout
        self._slots = slots
        self._mask = slots - 1
        # WINDOW - 1 slots past the last: a window never wraps, so a probe is one straight scan.
        self._size = _HEADER_BYTES + (slots + WINDOW - 1) * _SLOT.size
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._open()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (tracker := ref()) is not None and tracker._reopen())

    def _open(self) -> None:
        """Open and map the file (checked, made anew if it is not a table of this geometry)."""
        self.close()
        self._lock = threading.Lock()  # a fresh one: a fork may copy another thread's held lock
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            header = _HEADER.pack(_MAGIC, self._slots, WINDOW)
            if os.fstat(fd).st_size != self._size or os.pread(fd, len(header), 0) != header:
                os.ftruncate(fd, 0)
                # Every byte written (not a sparse file): a full disk fails here, not as SIGBUS later.
                os.pwrite(fd, bytes(self._size), 0)
                os.pwrite(fd, header, 0)  # last: a creation cut short leaves no valid header
            self._map = mmap.mmap(fd, self._size)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _reopen(self) -> None:
        if self._map is not None:  # not once closed
            self._open()

    def close(self) -> None:
        """Unmap and close the file; the sessions stay in it for the other processes."""
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def assign(self, site_id: str | int, candidates: Sequence[str], ts: float) -> Assignment:
        """The session of a hit at ``ts`` from a visitor known by ``candidates`` (today's id first).

        The first candidate with a live session keeps it, so a visit that crosses midnight keeps
        yesterday's id and stays one visit; otherwise the first candidate starts a new session.
        A late hit (``ts`` before the last one seen) joins the session it falls in.
        """
        if not candidates:
            raise ValueError("assign needs at least one visitor id candidate")
        first = _key(site_id, candidates[0])  # outside the lock; the others rarely needed
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                return self._assign(first, site_id, candidates, ts)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _assign(self, first: int, site_id: str | int, candidates: Sequence[str], ts: float) -> Assignment:
        table = self._map
        found, place = self._probe(first)
        for n, visitor_id in enumerate(candidates):
            if n:
                found, _ = self._probe(_key(site_id, visitor_id))
            if found:
                key, session, last_seen = _SLOT.unpack_from(table, found)
                if ts - last_seen <= self._timeout:
                    if ts > last_seen:
                        _SLOT.pack_into(table, found, key, session, ts)
                    return Assignment(visitor_id, session.hex(), False)
        session = _SESSION_IDS.take()  # not os.urandom: see tracker.entropy
        _SLOT.pack_into(table, place, first, session, ts)
        return Assignment(candidates[0], session.hex(), True)

    def _probe(self, key: int) -> tuple[int, int]:
        """(offset of ``key``'s slot or 0, offset where ``key`` would be placed) in its window.

        Slots are never emptied, only replaced, so every slot between a key's hash and the key is
        taken: the scan stops at the first empty one. A key not found goes to its own window's
        first empty slot, or in a full window, in place of the stalest entry.
        """
        table = self._map
        start = _HEADER_BYTES + (key & self._mask) * _SLOT.size
        stalest, stalest_seen = start, _NEVER
        for offset in range(start, start + WINDOW * _SLOT.size, _SLOT.size):
            held, _, last_seen = _SLOT.unpack_from(table, offset)
            if held == key:
                return offset, offset
            if held == _EMPTY:
                return 0, offset
            if last_seen < stalest_seen:
                stalest, stalest_seen = offset, last_seen
        return 0, stalest
