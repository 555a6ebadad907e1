"""Derive a cookieless visitor id from a daily salt, the site, the IP and the user agent.

The id is a keyed BLAKE2b hash (the day's salt is the key) of site, IP and user agent, cut to 16 hex
characters. Without cookies or stored IPs a visitor is recognised for one UTC day at most: salts
rotate daily and the old ones are deleted by their keeper, after which yesterday's ids cannot be
recomputed from anything we hold. Including the site keeps one person's ids on two sites unlinkable.

Each hit gets two candidates, today's and yesterday's id, because a visit crossing midnight must stay
one visit: the session tracker keeps whichever candidate already has a live session.

While the salts' keeper (the control database) is down, hits are still counted: a day whose salt
cannot be had is hashed with the newest salt cached for a day up to it. At midnight during an outage
that is yesterday's salt, so visitors keep yesterday's ids (and their sessions) until the database
answers and today's salt is used; a process that never read any salt hashes with a random one of
its own meanwhile, so its ids do not match other processes' until then.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from functools import lru_cache
from typing import Protocol

from tracker.errors import StoreUnavailable

DAY_SECONDS = 86_400
ID_BYTES = 8  # 16 hex characters
_PERSON = b"odnos.visitor"  # BLAKE2b personalisation: these hashes mean nothing elsewhere
_EPOCH = dt.date(1970, 1, 1)


class SaltSource(Protocol):
    """Keeper of the daily salts; the database backs it in production."""

    def salt_for(self, day: dt.date) -> bytes:
        """The salt of ``day`` (UTC), created on first request; 16 to 64 random bytes.

        Raises ``StoreUnavailable`` when it cannot be had now (the caller uses a stand-in).
        """
        ...


class MemorySaltSource:
    """Salts kept in memory for ``keep_days`` days: for tests and single-process setups.

    Salts of older days are forgotten as new days are asked for, which is the point of rotating.
    """

    def __init__(self, keep_days: int = 2) -> None:
        self._keep_days = keep_days
        self._salts: dict[dt.date, bytes] = {}
        self._lock = threading.Lock()

    def salt_for(self, day: dt.date) -> bytes:
        with self._lock:
            salt = self._salts.get(day)
            if salt is None:
                salt = self._salts[day] = secrets.token_bytes(32)
                newest = max(self._salts)
                for old in [d for d in self._salts if (newest - d).days >= self._keep_days]:
                    del self._salts[old]
            return salt


def day_of(ts: float) -> dt.date:
    """The UTC day of a Unix timestamp."""
    return _today_and_yesterday(int(ts // DAY_SECONDS))[0]


@lru_cache(maxsize=8)
def _today_and_yesterday(days: int) -> tuple[dt.date, dt.date]:
    """Day number ``days`` since 1970 and the one before, as dates (every hit asks; a few days repeat)."""
    today = _EPOCH + dt.timedelta(days=days)
    return today, today - dt.timedelta(days=1)


class VisitorIds:
    """Computes visitor-id candidates; caches the last few days' salts so a hit does no I/O."""

    KEEP_DAYS = 3  # kept before the newest day: hits up to a day old ask for the day before that too

    def __init__(self, salts: SaltSource) -> None:
        self._source = salts
        self._salts: dict[dt.date, bytes] = {}
        self._lock = threading.Lock()
        self._own: bytes | None = None  # this process's stand-in while it has no real salt at all

    def _salt(self, day: dt.date) -> bytes:
        salt = self._salts.get(day)
        if salt is not None:
            return salt
        stand_in = self._stand_in(day)
        # With a stand-in at hand, a hit never queues behind another one asking the keeper.
        if stand_in is None:
            self._lock.acquire()
        elif not self._lock.acquire(blocking=False):
            return stand_in
        try:
            salt = self._salts.get(day)
            if salt is None:
                try:
                    salt = self._source.salt_for(day)
                except StoreUnavailable:
                    return stand_in or self._own_salt()
                if not 16 <= len(salt) <= 64:
                    raise ValueError(f"salt for {day} must be 16 to 64 bytes, got {len(salt)}")
                salts = {**self._salts, day: salt}
                newest = max(salts)
                self._salts = {d: s for d, s in salts.items() if (newest - d).days <= self.KEEP_DAYS}
            return salt
        finally:
            self._lock.release()

    def _stand_in(self, day: dt.date) -> bytes | None:
        """The salt to hash ``day`` with while its own cannot be had (see the module's docstring)."""
        salts = self._salts
        if salts:
            earlier = [d for d in salts if d <= day]
            return salts[max(earlier)] if earlier else salts[min(salts)]
        return self._own

    def _own_salt(self) -> bytes:
        if self._own is None:
            self._own = secrets.token_bytes(32)
        return self._own

    def visitor_id(self, day: dt.date, site_id: str | int, ip: str, user_agent: str) -> str:
        """The id of (site, IP, user agent) on ``day``."""
        digest = hashlib.blake2b(
            f"{site_id}\0{ip}\0{user_agent}".encode(),
            key=self._salt(day),
            digest_size=ID_BYTES,
            person=_PERSON,
        )
        return digest.hexdigest()

    def candidates(self, site_id: str | int, ip: str, user_agent: str, ts: float) -> tuple[str, str]:
        """(today's id, yesterday's id) for a hit at Unix time ``ts``; give both to SessionTracker."""
        today, yesterday = _today_and_yesterday(int(ts // DAY_SECONDS))
        return (
            self.visitor_id(today, site_id, ip, user_agent),
            self.visitor_id(yesterday, site_id, ip, user_agent),
        )
