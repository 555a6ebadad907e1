"""One contact as it is now (effective consent included), and the site visitors linked to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tracker.crm.model import Contact
from tracker.queries.contacts.columns import CONTACT_COLUMNS, contact_from_row
from tracker.store.base import EventStore

PROFILE_SQL = f"""
SELECT {CONTACT_COLUMNS}
FROM contacts FINAL
WHERE contact_id = %(contact_id)s AND deleted = 0
"""  # noqa: S608 - our SQL fragments only; values are bound parameters

# Every (site, visitor) ever linked to the contact, when it was linked here, how, and whether that
# visitor's newest link still points here (a shared device may have been identified as someone else).
VISITORS_SQL = """
SELECT site_id, visitor_id, argMaxIf(method, ts, contact_id = %(contact_id)s) AS method,
       maxIf(ts, contact_id = %(contact_id)s) AS linked_at, argMax(contact_id, ts) = %(contact_id)s AS current
FROM identities
WHERE (site_id, visitor_id) IN (SELECT site_id, visitor_id FROM identities WHERE contact_id = %(contact_id)s)
GROUP BY site_id, visitor_id
ORDER BY linked_at, site_id, visitor_id
"""


@dataclass(frozen=True)
class LinkedVisitor:
    site_id: str
    visitor_id: str
    method: str
    linked_at: datetime
    current: bool


def contact_profile(store: EventStore, contact_id: str) -> Contact | None:
    """The contact's newest row, or None when there is none."""
    row = store.query(PROFILE_SQL, {"contact_id": contact_id}, name="contact profile").first()
    return None if row is None else contact_from_row(row)


def linked_visitors(store: EventStore, contact_id: str) -> list[LinkedVisitor]:
    """The visitors (per site) identified as this contact, oldest link first."""
    rows = store.query(VISITORS_SQL, {"contact_id": contact_id}, name="contact visitors").rows
    return [LinkedVisitor(site, visitor, method, linked_at.replace(tzinfo=UTC), bool(current))
            for site, visitor, method, linked_at, current in rows]
