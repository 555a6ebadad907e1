"""Visitors on the site right now: distinct visitors with any non-bot event in the last few minutes.

Any event counts, not only pageviews, so a visitor reading one long page (its engagement report
arrives when it leaves or switches tabs) is not lost. Always raw events: the window is minutes
wide and the primary key narrows it to today's rows of the site.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tracker.errors import OdnosError
from tracker.store.base import EventStore

SQL = ("SELECT uniq(visitor_id) FROM events WHERE site_id = %(site_id)s AND toDate(ts) >= %(first_day)s "
       "AND ts >= %(since)s AND ts <= %(now)s AND is_bot = 0 AND visitor_id != ''")


def realtime_visitors(store: EventStore, site_id: str, *, minutes: int = 5,
                      now: datetime | None = None) -> int:
    """Visitors seen in the ``minutes`` (1 to 60) before ``now`` (default: the clock)."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 60:
        raise OdnosError("realtime minutes must be a whole number from 1 to 60", code="bad_period")
    if not isinstance(site_id, str):
        raise OdnosError("the site id must be text", code="bad_site")
    moment = now.astimezone(UTC).replace(tzinfo=None) if now and now.tzinfo else now
    moment = (moment or datetime.now(UTC).replace(tzinfo=None)).replace(microsecond=0)
    since = moment - timedelta(minutes=minutes)
    return store.query(SQL, {"site_id": site_id, "since": since, "now": moment, "first_day": since.date()},
                       name="realtime").scalar() or 0
