"""The stored rows of many contacts at once: what an upsert merges onto.

One query per chunk of ids rather than one per contact, so an import of 100,000 rows reads what
exists in a few dozen round trips. Erased-and-gone contacts simply are not found.
"""

from __future__ import annotations

from collections.abc import Iterable

from tracker.crm.model import Contact
from tracker.queries.contacts.columns import STORED_COLUMNS, contact_from_row
from tracker.store.base import EventStore

CURRENT_SQL = f"""
SELECT {STORED_COLUMNS}
FROM contacts FINAL
WHERE contact_id IN %(ids)s AND deleted = 0
"""  # noqa: S608 - our SQL fragments only; values are bound parameters

CHUNK = 5000


def current_contacts(store: EventStore, contact_ids: Iterable[str]) -> dict[str, Contact]:
    """contact id -> its newest stored row, for the ids that have one."""
    ids = sorted(set(contact_ids))
    found: dict[str, Contact] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = tuple(ids[start:start + CHUNK])
        for row in store.query(CURRENT_SQL, {"ids": chunk}, name="current contacts").rows:
            contact = contact_from_row(row)
            found[contact.contact_id] = contact
    return found
