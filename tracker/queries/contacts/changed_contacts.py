"""Contacts matching a compiled segment condition, optionally only those changed since a moment.

The HTTP API's contact list: a client syncing its own copy asks for what changed since its last
sync, in contact id order after a cursor. The rows come from the segment members query (one
reader of ``contacts FINAL`` for every caller); this adds only the time condition, on the row's
``updated_at`` (every upsert that changes a contact writes a new row with the time of the change).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tracker.crm.model import Contact
from tracker.queries.segments.segment_members import members
from tracker.store.base import EventStore

# Explicitly UTC: a bare literal would be read in the server's time zone on some versions.
UPDATED_SINCE_SQL = "updated_at >= toDateTime(%(updated_since)s, 'UTC')"


def changed_contacts(store: EventStore, condition: str, params: dict[str, Any], *,
                     updated_since: datetime | None = None, after: str = "",
                     limit: int = 100) -> list[Contact]:
    """Up to ``limit`` contacts after ``after`` (contact id order) for which ``condition`` holds,
    changed at or after ``updated_since`` when given."""
    if updated_since is not None:
        condition = f"({condition}) AND {UPDATED_SINCE_SQL}"
        moment = updated_since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        params = {**params, "updated_since": moment}
    return members(store, condition, params, after=after, limit=limit)
