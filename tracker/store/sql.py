"""Render ``%(name)s`` placeholders into SQL text, the one way values enter a query.

ClickHouse 18.16 has no server-side ``{name:Type}`` parameters, so values are escaped client-side
with ``clickhouse_driver``'s escaper and the statement is sent as plain text. On chDB several
statements in one string all run, so an escaping bug would be a full injection: this renderer
accepts only value types it knows how to quote and refuses everything else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

from clickhouse_driver.util.escape import escape_param


class _UTCContext:
    """The escaper asks its context for the server time zone: odnos keeps every DateTime in UTC."""

    class server_info:  # noqa: N801 - shape the escaper expects
        @staticmethod
        def get_timezone() -> str:
            return "UTC"


_CONTEXT = _UTCContext()
_SCALARS = (str, int, float, datetime, date, UUID)


def _check(value: Any, name: str) -> None:
    if isinstance(value, list | tuple):
        for item in value:
            _check(item, name)
        return
    if value is None or isinstance(value, bool):
        return
    if not isinstance(value, _SCALARS):
        raise TypeError(f"parameter {name!r}: cannot put a {type(value).__name__} into SQL")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"parameter {name!r}: {value} is not a finite number")


def _escape(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | tuple):
        inner = ", ".join(_escape(item) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return str(escape_param(value, _CONTEXT))


def render(sql: str, params: Mapping[str, Any] | None = None) -> str:
    """Return ``sql`` with every ``%(name)s`` replaced by the escaped value; ``%%`` is a literal ``%``.

    Raises KeyError for a missing parameter and TypeError for a value of a type that cannot be
    quoted safely (bytes, dicts, arbitrary objects).
    """
    if not params:
        return sql.replace("%%", "%")
    escaped = {}
    for name, value in params.items():
        _check(value, name)
        escaped[name] = _escape(value)
    return sql % escaped
