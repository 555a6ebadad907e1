"""Group a cookieless visitor's hits into sessions: 30 minutes of inactivity starts a new one.

In memory, bounded (least recently seen visitors are dropped first) and thread-safe. A dropped
visitor's next hit merely starts a new session, the same as after a long pause.

The collector calls ``assign`` only for hits without ids of their own: when the snippet sends its
visitor and session ids (it keeps them in the page's storage), those are used as they are.
Sessions live in one process: with several collectors behind a load balancer, route a client to the
same collector (IP affinity), or one visit may show as several sessions.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

SESSION_TIMEOUT = 30 * 60
# About 400 bytes a visitor: 50,000 visitors active within 30 minutes cost a worker ~20 MB.
MAX_VISITORS = 50_000


@dataclass(frozen=True, slots=True)
class Assignment:
    visitor_id: str
    session_id: str  # 16 hex characters
    new_session: bool


class SessionTracker:
    """Live sessions by (site, visitor id), least recently seen evicted past ``max_visitors``."""

    def __init__(self, timeout: float = SESSION_TIMEOUT, max_visitors: int = MAX_VISITORS) -> None:
        self._timeout = timeout
        self._max = max_visitors
        # (site_id, visitor_id) -> [session_id, last_seen]
        self._live: OrderedDict[tuple[str | int, str], list] = OrderedDict()
        self._lock = threading.Lock()

    def assign(self, site_id: str | int, candidates: Sequence[str], ts: float) -> Assignment:
        """The session of a hit at ``ts`` from a visitor known by ``candidates`` (today's id first).

        The first candidate with a live session keeps it, so a visit that crosses midnight keeps
        yesterday's id and stays one visit; otherwise the first candidate starts a new session.
        A late hit (``ts`` before the last one seen) joins the session it falls in.
        """
        if not candidates:
            raise ValueError("assign needs at least one visitor id candidate")
        with self._lock:
            for visitor_id in candidates:
                key = (site_id, visitor_id)
                entry = self._live.get(key)
                if entry is not None and ts - entry[1] <= self._timeout:
                    entry[1] = max(entry[1], ts)
                    self._live.move_to_end(key)
                    return Assignment(visitor_id, entry[0], False)
            visitor_id = candidates[0]
            session_id = secrets.token_hex(8)
            key = (site_id, visitor_id)
            self._live[key] = [session_id, ts]
            self._live.move_to_end(key)
            while len(self._live) > self._max:
                self._live.popitem(last=False)
            return Assignment(visitor_id, session_id, True)

    def __len__(self) -> int:
        return len(self._live)
