"""How much data the store holds: the status page's and `odnos serve`'s one-line summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracker.store.base import EventStore

# One pass over events; contacts counted apart (latest version wins, erased ones excluded).
EVENTS_SQL = """
SELECT
    count() AS events,
    countIf(name = 'pageview') AS pageviews,
    uniqIf(visitor_id, is_bot = 0 AND visitor_id != '') AS visitors,
    countIf(name = 'email_open') AS opens,
    countIf(name = 'email_click') AS clicks,
    min(ts) AS first_ts,
    max(ts) AS last_ts
FROM events
"""

CONTACTS_SQL = "SELECT count() FROM contacts FINAL WHERE deleted = 0"


@dataclass(frozen=True)
class Overview:
    events: int
    pageviews: int
    visitors: int
    opens: int
    clicks: int
    contacts: int
    first: datetime | None
    last: datetime | None


def store_overview(store: EventStore) -> Overview:
    """Totals over all sites, for the status page."""
    row = store.query(EVENTS_SQL, name="overview").first()
    contacts = store.query(CONTACTS_SQL, name="overview contacts").scalar() or 0
    events, pageviews, visitors, opens, clicks, first, last = row
    if not events:
        first = last = None
    return Overview(events, pageviews, visitors, opens, clicks, contacts, first, last)
