"""Slow down password guessing: failed sign-ins are counted per account and per address.

After ``free`` failures within ``window`` seconds, each further attempt for that account or from
that address must wait a delay that doubles with every failure (capped at ``max_delay``); an
attempt made too early is refused without checking the password, so guessing costs time whatever
the guesser does. A successful sign-in clears the account's count. Counts live in the process's
memory: with several dashboard workers each keeps its own, which multiplies the allowance by the
number of workers but never lets a guesser go fast.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _Count:
    failures: int
    first: float
    last: float


class SigninThrottle:
    def __init__(self, free: int = 5, window: float = 900.0, max_delay: float = 900.0,
                 max_keys: int = 100_000) -> None:
        self.free = free
        self.window = window
        self.max_delay = max_delay
        self.max_keys = max_keys
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def wait_for(self, keys: tuple[str, ...], now: float | None = None) -> float:
        """Seconds the caller must still wait before an attempt for ``keys`` is checked (0: go ahead)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return max((self._delay(self._counts.get(key), now) for key in keys), default=0.0)

    def failed(self, keys: tuple[str, ...], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._counts) >= self.max_keys:
                self._forget_old(now)
            for key in keys:
                count = self._counts.get(key)
                if count is None or now - count.first > self.window:
                    self._counts[key] = _Count(1, now, now)
                else:
                    count.failures += 1
                    count.last = now

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)

    def _delay(self, count: _Count | None, now: float) -> float:
        if count is None or count.failures < self.free or now - count.first > self.window:
            return 0.0
        delay = min(self.max_delay, 2.0 ** (count.failures - self.free))
        return max(0.0, count.last + delay - now)

    def _forget_old(self, now: float) -> None:
        for key in [k for k, c in self._counts.items() if now - c.first > self.window]:
            del self._counts[key]
