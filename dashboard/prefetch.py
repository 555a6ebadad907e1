"""The page a browser is about to ask for, drawn while the browser starts Dash's scripts.

Opening a dashboard URL costs two waits in a row: the browser loads and starts the scripts (a few
hundred milliseconds), and only then asks the router's callback for the page, whose queries take
the rest. ``Prefetch`` overlaps them: the HTML request for a page starts drawing it in a worker
thread (in a copy of that request's context, so the same user and role draw it), and the router's
callback, arriving moments later for the same user and URL, takes the drawing instead of starting
again. A drawing nobody takes expires; any other request draws as before. The dashboard runs in
one process (`odnos serve`, `odnos dashboard`); spread over several behind a balancer, a drawing
could be made where its callback does not arrive: wasted work, never a wrong page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from flask import copy_current_request_context

Key = tuple[str, str, str]
"""(user id, path, query string with its "?"): the router's inputs, for one user."""


class Prefetch:
    """Drawings started by HTML requests, waiting for the router's callback that asks for them."""

    def __init__(self, draw: Callable[[str, str], Any], *, ttl: float = 10.0, workers: int = 2,
                 most: int = 64) -> None:
        self._draw = draw
        self._ttl = ttl
        self._most = most
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="odnos-prefetch")
        self._waiting: dict[Key, tuple[float, Future]] = {}
        self._lock = threading.Lock()
        self.taken = 0

    def start(self, key: Key) -> None:
        """Start drawing ``key``'s page; call it inside the HTML request (its context is copied)."""
        _, pathname, search = key
        work = copy_current_request_context(lambda: self._draw(pathname, search))
        now = time.monotonic()
        with self._lock:
            for old in [k for k, (at, _) in self._waiting.items() if now - at > self._ttl]:
                del self._waiting[old]
            if len(self._waiting) >= self._most or key in self._waiting:
                return
            self._waiting[key] = (now, self._pool.submit(work))

    def take(self, key: Key) -> Future | None:
        """The drawing started for ``key``, once, if it is fresh; else None (draw it now)."""
        with self._lock:
            found = self._waiting.pop(key, None)
        if found is None or time.monotonic() - found[0] > self._ttl:
            return None
        self.taken += 1
        return found[1]
