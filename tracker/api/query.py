"""Reading an API request's query string: whole numbers in a range, times, dates, cursors, choices.

Each reader names the parameter in its 422, so a client sees which one to fix. Unknown parameters
are refused too (``only``): a misspelt filter must not silently return everything.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import request

from tracker.api.body import Unprocessable


def only(*known: str) -> None:
    """Refuse query parameters the route does not take."""
    for name in request.args:
        if name not in known:
            listed = ", ".join(known) if known else "none"
            raise Unprocessable(f"Unknown query parameter {name!r}; this route takes: {listed}.",
                                field=name, code="unknown_parameter")


def text(name: str, *, max_length: int = 200) -> str | None:
    """The parameter as text, or None when absent; at most ``max_length`` characters."""
    value = request.args.get(name)
    if value is None:
        return None
    if not value or len(value) > max_length:
        raise Unprocessable(f"{name} must be 1 to {max_length} characters.", field=name)
    return value


def number(name: str, *, default: int, lowest: int, highest: int) -> int:
    """A whole number from ``lowest`` to ``highest``; ``default`` when absent."""
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or not lowest <= int(value) <= highest:
        raise Unprocessable(f"{name} must be a whole number from {lowest} to {highest}.", field=name)
    return int(value)


def choice(name: str, allowed: tuple[str, ...], *, default: str | None = None) -> str | None:
    """One of ``allowed``; ``default`` when absent."""
    value = request.args.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise Unprocessable(f"{name} must be one of {', '.join(allowed)}.", field=name)
    return value


def moment(name: str) -> datetime | None:
    """An ISO 8601 time (``2026-11-30T12:00:00Z``; no zone means UTC) or date (its midnight, UTC)."""
    value = request.args.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Unprocessable(f"{name} must be an ISO 8601 time such as 2026-11-30T12:00:00Z or a date "
                            "such as 2026-11-30.", field=name) from None
    if not 1971 <= parsed.year <= 2105:  # a year inside on either side of any time zone
        raise Unprocessable(f"{name} must lie between 1971 and 2105.", field=name)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def day(name: str) -> date | None:
    """A date ``YYYY-MM-DD``, or None when absent."""
    value = request.args.get(name)
    if value is None:
        return None
    try:
        parsed = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise Unprocessable(f"{name} must be a date such as 2026-11-30.", field=name)
    return parsed
