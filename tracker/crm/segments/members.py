"""Who is in a segment now, and how many: computed when asked, from the events as they are.

What the rule runner, ``odnos segments preview``, ``odnos contacts list`` and the dashboard call.
The definition is validated on every call (it may come from an API request as well as from the
control database), compiled, and run; nothing is cached or rebuilt on a schedule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tracker.crm.model import Contact
from tracker.crm.segments.compile import Compiled, compile_definition, uses_last_campaign
from tracker.crm.segments.definition import validate_definition
from tracker.queries.segments import segment_members as sql
from tracker.store.base import EventStore


def compile_segment(store: EventStore, definition: dict[str, Any], now: datetime | None = None) -> Compiled:
    """A definition checked and compiled to SQL (its "last campaign" resolved), for callers that add
    conditions of their own around the members (the API's contact list)."""
    definition = validate_definition(definition)
    last = sql.last_campaign(store) if uses_last_campaign(definition) else ""
    return compile_definition(definition, now=now, last_campaign=last)


def segment_members(store: EventStore, definition: dict[str, Any], *, after_contact_id: str = "",
                    limit: int = 1000, now: datetime | None = None) -> list[Contact]:
    """Up to ``limit`` members after ``after_contact_id``, in contact id order (resume from the last)."""
    compiled = compile_segment(store, definition, now)
    return sql.members(store, compiled.sql, compiled.params, after=after_contact_id, limit=limit)


def segment_size(store: EventStore, definition: dict[str, Any], *, now: datetime | None = None) -> int:
    """How many contacts are in the segment now."""
    compiled = compile_segment(store, definition, now)
    return sql.size(store, compiled.sql, compiled.params)
