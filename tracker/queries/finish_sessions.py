"""Finish old days' sessions: write them to ``rollup_sessions_final`` so queries scan instead of group.

A session that began on day D can only grow until D+1 is over (a longer one is cut, as
``tracker.queries.sessions`` says). So once D+1 has ended, plus ``SETTLE`` for events still on
their way through the spool, D's sessions are final: this job writes them, one plain row each,
for every site at once (schema: ``schemas/clickhouse/0017_rollup_sessions_final.sql``).

Safe to run any time, from any one process (the scheduler runs it hourly; bulk loads run it when
they finish): a day is marked not-done before it is rewritten and done after, so queries read it
from ``rollup_sessions`` meanwhile, and a crash leaves it to the next run. Late events (a spool
replayed after an outage, an import of old data) stamp their days in ``rollup_session_changes``;
a finished day whose day, day before or day after changed since its finishing began is finished
again. Days run oldest first, at most ``limit`` per call.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tracker.queries.filters import NO_FILTERS
from tracker.queries.period import Period
from tracker.queries.sessions import COLUMNS, session_rows
from tracker.store.base import EventStore

SETTLE = timedelta(hours=1)
_OUTPUTS = [name for name in COLUMNS if name not in ("began", "views")]
_DAYS = """
SELECT day, maxMerge(changed) AS changed FROM rollup_session_changes GROUP BY day
"""
_LEDGER = """
SELECT day, argMax(done, started * 2 + done) AS last_done, max(started) AS last_started
FROM rollup_sessions_final_days GROUP BY day
"""
_NAMES = ["site_id", "day", "session", "visitor", "began", "views", "engaged_time", "actions", "entry",
          "exit", *(name for name in COLUMNS if name.startswith("session_"))]
# The day a session began is the day being finished: written as the `day` of its partition.
_SELECT = ", ".join("toDate(%(first_day)s)" if name == "day" else name for name in _NAMES)


def _due(store: EventStore, now: datetime) -> list[date]:
    changes = dict(store.query(_DAYS, name="session changes").rows)
    ledger = {day: (done, started)
              for day, done, started in store.query(_LEDGER, name="sessions ledger").rows}
    last = (now - SETTLE).date() - timedelta(days=2)  # D+1 must be over, and settled
    due = []
    for day in sorted(changes):
        if day > last:
            break
        done, started = ledger.get(day, (0, 0))
        latest = max(changes.get(day + timedelta(days=n), 0) for n in (-1, 0, 1))
        if not done or latest >= started:
            due.append(day)
    return due


def finish_day(store: EventStore, day: date) -> None:
    """Rewrite the finished sessions of ``day`` (every site)."""
    started = store.query("SELECT toUInt32(now())", name="server clock").scalar()
    store.insert("rollup_sessions_final_days", [{"day": day.isoformat(), "started": started, "done": 0}])
    for node in store.nodes():  # one shard's part of the day on each node of a cluster
        node.command(f"ALTER TABLE {store.local('rollup_sessions_final')} DROP PARTITION %(day)s",
                     {"day": day})
    rows = session_rows(_OUTPUTS, NO_FILTERS, all_sites=True)
    store.command(f"INSERT INTO rollup_sessions_final ({', '.join(_NAMES)}) SELECT {_SELECT} FROM ({rows})",  # noqa: S608 - our SQL fragments only; values are bound parameters
                  Period.days(day, day).params())
    store.insert("rollup_sessions_final_days", [{"day": day.isoformat(), "started": started, "done": 1}])


def finish_sessions(store: EventStore, now: datetime | None = None, limit: int = 400) -> list[date]:
    """Finish every day that is due (oldest first, at most ``limit``); returns the days finished."""
    moment = now.astimezone(UTC).replace(tzinfo=None) if now and now.tzinfo else now
    due = _due(store, moment or datetime.now(UTC).replace(tzinfo=None))[:limit]
    for day in due:
        finish_day(store, day)
    return due
