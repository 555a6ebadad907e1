"""Segments kept in the control database (the ``segments`` table): add, replace, find, list.

A definition is validated before it is stored, so a stored segment always compiles; a segment is
found by name or by id, as the CLI and the API name them either way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.control.fields import clean_name
from tracker.control.models import Segment, utcnow
from tracker.crm.segments.definition import validate_definition
from tracker.errors import NotFound, OdnosError

MAX_NAME = 200


def add_segment(session: Session, name: str, definition: dict[str, Any], *, replace: bool = False) -> Segment:
    """Store a new segment (or, with ``replace``, a new definition for an existing one) and flush it."""
    name = clean_name(name, what="segment name", max_length=MAX_NAME)
    definition = validate_definition(definition)
    segment = session.scalar(select(Segment).where(Segment.name == name))
    if segment is not None:
        if not replace:
            raise OdnosError(f"a segment named {name!r} exists already (id {segment.id}); pass --replace "
                             "to give it this definition", code="segment_exists")
        segment.definition = definition
        segment.updated_at = utcnow()
    else:
        segment = Segment(name=name, definition=definition)
        session.add(segment)
    session.flush()
    return segment


def get_segment(session: Session, name_or_id: str) -> Segment:
    """The segment of that name, or of that id when no name matches; NotFound otherwise."""
    segment = session.scalar(select(Segment).where(Segment.name == name_or_id))
    if segment is None and name_or_id.isdigit():
        segment = session.get(Segment, int(name_or_id))
    if segment is None:
        raise NotFound(f"no segment {name_or_id!r}; `odnos segments list` shows them, "
                       "`odnos segments add NAME --file DEF.json` adds one")
    return segment


def list_segments(session: Session) -> list[Segment]:
    """Every segment, by name."""
    return list(session.scalars(select(Segment).order_by(Segment.name)))
