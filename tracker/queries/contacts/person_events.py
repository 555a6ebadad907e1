"""Every stored event of one person, whole rows, for a data access request (``tracker.crm.export``).

A contact's events follow the timeline's rule (``contact_timeline.LINKED_VISITORS_SQL``): those that
carry the contact id, and those without one from a visitor whose newest link is the contact; a
visitor linked to someone else since, or an event of another contact, is never included. Unlike the
timeline, nothing is left out (engagement pings, revisions, bots): the person gets what is stored.
A visitor's events are those with that visitor id (on one site, or on all).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tracker.events import EVENT_DEFAULTS
from tracker.queries.contacts.contact_timeline import LINKED_VISITORS_SQL
from tracker.store.base import EventStore

COLUMNS = ", ".join("toString(event_id) AS event_id" if c == "event_id" else f"`{c}`" for c in EVENT_DEFAULTS)

CONTACT_EVENTS_SQL = f"""
SELECT {COLUMNS}
FROM events
WHERE contact_id = %(contact_id)s
   OR (contact_id = '' AND (site_id, visitor_id) IN ({LINKED_VISITORS_SQL}))
ORDER BY ts, ts_ms, event_id
"""  # noqa: S608 - constant fragments (columns from EVENT_DEFAULTS); values bound

VISITOR_EVENTS_SQL = f"""
SELECT {COLUMNS}
FROM events
WHERE visitor_id = %(visitor_id)s AND (%(site_id)s = '' OR site_id = %(site_id)s)
ORDER BY ts, ts_ms, event_id
"""  # noqa: S608 - constant fragments (columns from EVENT_DEFAULTS); values bound

VISITOR_LINKS_SQL = """
SELECT DISTINCT site_id, contact_id, method, ts
FROM identities
WHERE visitor_id = %(visitor_id)s AND (%(site_id)s = '' OR site_id = %(site_id)s)
ORDER BY ts, site_id, contact_id
"""


def contact_events(store: EventStore, contact_id: str) -> list[dict[str, Any]]:
    """The contact's events, oldest first, as JSON-ready dicts (props as one object)."""
    rows = store.query(CONTACT_EVENTS_SQL, {"contact_id": contact_id}, name="export: contact events")
    return [_event(row) for row in rows.dicts()]


def visitor_events(store: EventStore, visitor_id: str, site_id: str = "") -> list[dict[str, Any]]:
    """The visitor's events (on ``site_id``, or every site when ''), oldest first."""
    rows = store.query(VISITOR_EVENTS_SQL, {"visitor_id": visitor_id, "site_id": site_id},
                       name="export: visitor events")
    return [_event(row) for row in rows.dicts()]


def visitor_links(store: EventStore, visitor_id: str, site_id: str = "") -> list[dict[str, Any]]:
    """The identity links stored for the visitor: which contact, how and when."""
    rows = store.query(VISITOR_LINKS_SQL, {"visitor_id": visitor_id, "site_id": site_id},
                       name="export: visitor links")
    return [{"site_id": site, "contact_id": contact, "method": method, "linked_at": _iso(ts)}
            for site, contact, method, ts in rows.rows]


def _event(row: dict[str, Any]) -> dict[str, Any]:
    keys, values = row.pop("props.key"), row.pop("props.value")
    row["ts"] = _iso(row["ts"].replace(microsecond=row.pop("ts_ms") * 1000))
    row["received_at"] = _iso(row["received_at"])
    row["props"] = dict(zip(keys, values, strict=True))
    return row


def _iso(value: datetime) -> str:
    return value.replace(tzinfo=UTC).isoformat()
