"""A segment's members and size: the compiled condition over the contacts that can be reached.

Members are contacts as they are now (``FINAL``), not erased, with an address (a hand-off row
whose address is still unknown cannot be mailed, so it is in no segment). They come in contact
id order after ``after``: a rule runner reads a large segment in batches and resumes from the last
id it handled, and the primary key (contact_id) makes each batch a range read.
"""

from __future__ import annotations

from typing import Any

from tracker.crm.model import Contact
from tracker.queries.contacts.columns import CONTACT_COLUMNS, contact_from_row
from tracker.store.base import EventStore

# Two steps: the condition picks the page's ids reading only the columns it needs, then the whole
# rows of just those ids are read (a primary-key look-up), instead of every column of every member.
MEMBERS_SQL = """
SELECT {columns}
FROM contacts FINAL
WHERE contact_id IN (
    SELECT contact_id FROM contacts FINAL
    WHERE deleted = 0 AND email != '' AND contact_id > %(after)s AND ({condition})
    ORDER BY contact_id
    LIMIT %(limit)s
)
ORDER BY contact_id
"""

SIZE_SQL = """
SELECT count()
FROM contacts FINAL
WHERE deleted = 0 AND email != '' AND ({condition})
"""


LAST_CAMPAIGN_SQL = "SELECT argMax(campaign_id, ts) FROM events WHERE name = 'email_sent'"


def last_campaign(store: EventStore) -> str:
    """The campaign of the newest email sent ('' when nothing was sent yet)."""
    return store.query(LAST_CAMPAIGN_SQL, name="last campaign").scalar() or ""


def members(store: EventStore, condition: str, params: dict[str, Any], *, after: str = "",
            limit: int = 1000) -> list[Contact]:
    """Up to ``limit`` members with a contact id above ``after``, in contact id order."""
    sql = MEMBERS_SQL.format(columns=CONTACT_COLUMNS, condition=condition)
    rows = store.query(sql, {**params, "after": after, "limit": limit}, name="segment members").rows
    return [contact_from_row(row) for row in rows]


def size(store: EventStore, condition: str, params: dict[str, Any]) -> int:
    """How many contacts the condition holds for now."""
    return store.query(SIZE_SQL.format(condition=condition), params, name="segment size").scalar() or 0
