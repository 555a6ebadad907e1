"""Build an expensive value once, on first use, safely across threads.

The enrichment tables (ua-parser's regexes, the crawler list, the geo database) take 20-200 ms and
tens of MB to load. Loading them at import would slow every CLI command and test that never parses a
user agent, and ``functools.cache`` on a loader may run it twice when two request threads arrive
together, which for geoip2fast (it keeps its tables in module globals) is not just wasteful.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Once(Generic[T]):
    """Call ``build`` on the first ``get()``; every later call returns the same value.

    Double-checked locking: after the first load a call is one attribute read, no lock.
    """

    __slots__ = ("_build", "_lock", "_value", "_loaded")

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded = False

    def get(self) -> T:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._value = self._build()
                    self._loaded = True
        return self._value  # type: ignore[return-value]

    @property
    def loaded(self) -> bool:
        """Whether the value was built (lets tests check that import alone loads nothing)."""
        return self._loaded
