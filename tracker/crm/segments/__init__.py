"""Segments: contacts defined as data (attributes and behaviour), compiled to SQL, computed live.

``validate_definition`` checks a definition against schemas/segment.schema.json;
``segment_members`` and ``segment_size`` evaluate one now; ``add_segment``, ``get_segment`` and
``list_segments`` keep named segments in the control database.
"""

from tracker.crm.segments.definition import SegmentDefinitionError, validate_definition
from tracker.crm.segments.members import segment_members, segment_size
from tracker.crm.segments.store import add_segment, get_segment, list_segments

__all__ = ["SegmentDefinitionError", "add_segment", "get_segment", "list_segments", "segment_members",
           "segment_size", "validate_definition"]
