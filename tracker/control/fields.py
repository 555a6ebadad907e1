"""Checks on the free-text fields that several control-plane tables share (display names)."""

from __future__ import annotations

from tracker.errors import OdnosError


def clean_name(value: object, *, what: str, max_length: int) -> str:
    """Strip a display name and check it is a non-empty string that fits its column.

    ``what`` names the field in the error (``"site name"``), so the message says which one is wrong.
    Raises ``OdnosError`` with code ``bad_name``.
    """
    if not isinstance(value, str) or not value.strip():
        raise OdnosError(f"The {what} must be a non-empty text.", code="bad_name")
    name = value.strip()
    if len(name) > max_length:
        raise OdnosError(
            f"The {what} is {len(name)} characters long; at most {max_length} fit.", code="bad_name"
        )
    return name
