"""The one-scheduler lock: a row in the control database naming which process acts, until when.

Several processes may run the scheduler (a second `odnos scheduler`, two `odnos serve` on one
PostgreSQL); only the holder of the ``scheduler_locks`` row evaluates the rules. Taking it is one
atomic statement on SQLite and PostgreSQL alike:

1. ``UPDATE ... SET holder = me, expires_at = now + ttl WHERE name = N AND (holder = me OR
   expires_at < now)``: one row changed means this process holds it (a renewal, or the takeover of
   a lock whose holder stopped renewing it, e.g. because it was killed);
2. otherwise ``INSERT`` the row; a unique violation means another process holds it.

The holder renews the lock at every round and between chunks of a long run; a holder that dies
stops renewing, and another process takes over once ``expires_at`` has passed. A clean shutdown
releases it at once. Each process compares with its own clock, so the hosts' clocks must agree to
well within the ttl (NTP does).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from tracker.control.db import ControlPlane
from tracker.control.models import SchedulerLock, utcnow


def holder_name() -> str:
    """``host:pid:random``: unique for this process, readable in the table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class DatabaseLock:
    """The lock ``name`` for this process, held ``ttl`` seconds past each ``acquire``."""

    def __init__(self, control: ControlPlane, name: str, ttl: float, holder: str | None = None) -> None:
        self.control = control
        self.name = name
        self.ttl = timedelta(seconds=ttl)
        self.holder = holder or holder_name()

    def acquire(self, now: datetime | None = None) -> bool:
        """Take or renew the lock; False while another live process holds it."""
        now = now or utcnow()
        expires = now + self.ttl
        with self.control.session() as session:
            taken = session.execute(update(SchedulerLock).where(
                SchedulerLock.name == self.name,
                or_(SchedulerLock.holder == self.holder, SchedulerLock.expires_at < now),
            ).values(holder=self.holder, expires_at=expires))
            if taken.rowcount == 1:
                return True
        try:
            with self.control.session() as session:
                session.add(SchedulerLock(name=self.name, holder=self.holder, expires_at=expires))
            return True
        except IntegrityError:
            return False

    def release(self) -> None:
        """Give the lock up now (if this process holds it), so another takes over without waiting."""
        with self.control.session() as session:
            session.execute(delete(SchedulerLock).where(SchedulerLock.name == self.name,
                                                        SchedulerLock.holder == self.holder))

    def current(self) -> tuple[str, datetime] | None:
        """(holder, expires at) of the lock as stored, or None."""
        with self.control.sessions() as session:
            row = session.execute(select(SchedulerLock.holder, SchedulerLock.expires_at).where(
                SchedulerLock.name == self.name)).first()
        return None if row is None else (row.holder, row.expires_at)
