"""Random bytes for the hot path's ids (event ids, session ids), read from the OS 4 KiB at a time.

Why not ``os.urandom`` (or ``uuid.uuid4``, ``secrets``) per id: each is one ``getrandom`` system call
(with the GIL released around it, and for a new session while the sessions table is locked for every
worker), and ``str(uuid.uuid4())`` cost 2.1 us of a beacon's 32. A pool reads the same kernel
randomness in bulk, so an id costs no system call in 255 of 256 cases (an event id 0.4 us); the
bytes are as unpredictable as ``secrets``' are.

A pool is safe across threads (each chunk comes from ``next`` on an iterator written in C, which
holds the GIL while it runs, so two threads never get the same chunk) and across ``fork``: the
child starts empty, so it never hands out bytes its parent has read.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

READ_BYTES = 4096


class RandomPool:
    """Chunks of ``size`` random bytes; ``take()`` gives a new one each call."""

    def __init__(self, size: int) -> None:
        self._format = f"{size}s"
        self._read = READ_BYTES - READ_BYTES % size
        self._chunks: Iterator[tuple[bytes]] = iter(())
        os.register_at_fork(after_in_child=self._empty)

    def _empty(self) -> None:
        self._chunks = iter(())

    def take(self) -> bytes:
        chunk = next(self._chunks, None)
        if chunk is None:  # two threads may both refill: each takes from its own fresh bytes
            self._chunks = chunks = struct.iter_unpack(self._format, os.urandom(self._read))
            chunk = next(chunks)
        return chunk[0]
