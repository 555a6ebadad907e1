"""Each collector worker tells the control database how its spool is doing; the dashboard warns.

Self-hosters of analytics tools have lost weeks of events without noticing. ``/healthz`` and
``/metrics`` say how a worker's spool is doing, but only to whoever asks that worker; the dashboard
is where people look, and in server mode it runs in another process, often on another machine.
So every ``EVERY`` seconds each worker writes one row (``IngestionReport``: its host and spool
folder, the age of its oldest event not in ClickHouse yet, the bytes waiting, its dead-letter
rows) to the control database, which every process shares, and the dashboard reads the rows of
the workers that reported lately (``problems``). A control database that cannot be reached costs
a report, never an event: the reporter only logs it.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tracker.control.models import IngestionReport, utcnow

log = logging.getLogger(__name__)

EVERY = 5.0  # seconds between a worker's reports
RECENT = timedelta(minutes=2)  # a report older than this is a worker that stopped, not one lagging


class Reporter:
    """A worker's background thread writing its spool's state every ``EVERY`` seconds."""

    def __init__(self, sessions: sessionmaker[Session], stats: Callable[[], dict[str, Any]], *,
                 every: float = EVERY) -> None:
        self._sessions = sessions
        self._stats = stats
        self._every = every
        self._stopping = threading.Event()
        self._failing = False
        threading.Thread(target=self._run, name="odnos-ingestion-report", daemon=True).start()

    def close(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            try:
                report(self._sessions, self._stats())
            except Exception as exc:  # noqa: BLE001 - the control database down: only this report is lost
                if not self._failing:
                    log.warning("cannot write the ingestion report to the control database (%s)",
                                str(exc).strip())
                self._failing = True
                continue
            self._failing = False


def report(sessions: sessionmaker[Session], stats: dict[str, Any], *, now: datetime | None = None) -> None:
    """Write (or rewrite) this worker's row from its spool's ``stats``."""
    row = IngestionReport(reporter=f"{socket.gethostname()}:{stats['directory']}",
                          reported_at=now or utcnow(),
                          oldest_pending_seconds=stats.get("oldest_pending_seconds"),
                          pending_bytes=stats.get("pending_bytes") or 0,
                          dead_letter_rows=stats.get("dead_letter_rows") or 0)
    with sessions.begin() as session:
        session.merge(row)


def problems(session: Session, *, lag_seconds: float, now: datetime | None = None) -> list[str]:
    """What the dashboard should warn about, one sentence each; empty when ingestion is well."""
    now = now or utcnow()
    rows = session.scalars(select(IngestionReport).where(IngestionReport.reported_at >= now - RECENT)).all()
    said = []
    lagging = [row for row in rows if (row.oldest_pending_seconds or 0) > lag_seconds]
    if lagging:
        worst = max(row.oldest_pending_seconds or 0 for row in lagging)
        waiting = sum(row.pending_bytes for row in lagging)
        said.append(f"Events are waiting to be stored: the oldest arrived {_age(worst)} ago "
                    f"({_size(waiting)} waiting on {len(lagging)} collector worker"
                    f"{'s' if len(lagging) > 1 else ''}). Is ClickHouse up? Nothing is lost: they are "
                    "stored once it answers, and the figures here catch up then.")
    dead = sum(row.dead_letter_rows for row in rows)
    if dead:
        said.append(f"{dead:,} event{'s' if dead > 1 else ''} refused by ClickHouse wait in a dead-letter "
                    "file. Once the cause is fixed (the server log says it), `odnos ingest "
                    "replay-dead-letters` stores them.")
    return said


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def _size(count: int) -> str:
    if count < 1024:
        return f"{count:,} bytes"
    if count < 1024 ** 2:
        return f"{count / 1024:.1f} KB"
    return f"{count / 1024 ** 2:,.1f} MB"
