"""The shape of one row of the ``events`` table, shared by the collector, the demo and imports.

``EVENT_DEFAULTS`` and ``UINT_MAX`` mirror ``schemas/clickhouse/0001_events.sql``; ``event_row``
fills every column so a batch always carries the same keys (both store backends insert whole rows),
and gives the event a fresh id, which is what makes a replayed spool batch detectable as already
written. It also gives every value its column's type, or raises ``ValueError``: ClickHouse refuses
a whole insert for one ``50.0`` in a UInt8 column, and silently wraps 300 to 44, so a row must be
right before it is spooled.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from tracker.entropy import RandomPool

EVENT_DEFAULTS: dict[str, Any] = {
    "event_id": "", "site_id": "", "name": "", "ts": 0, "ts_ms": 0, "received_at": 0, "source": "",
    "visitor_id": "", "session_id": "", "contact_id": "", "url": "", "hostname": "", "pathname": "",
    "referrer": "", "referrer_domain": "", "referrer_source": "", "utm_source": "", "utm_medium": "",
    "utm_campaign": "", "utm_term": "", "utm_content": "", "browser": "", "browser_version": "",
    "os": "", "os_version": "", "device": "", "country": "", "is_bot": 0, "bot_reason": "",
    "is_machine": 0, "machine_reason": "", "campaign_id": "", "message_id": "", "link_id": "",
    "target_url": "", "engaged_ms": 0, "scroll": 0, "props.key": [], "props.value": [],
}

# The unsigned columns and the largest value each holds (a DateTime is seconds in a UInt32). Every
# other column is a String (event_id a UUID's text) but props.key and props.value, arrays of them.
UINT_MAX: dict[str, int] = {"ts": 2**32 - 1, "ts_ms": 2**16 - 1, "received_at": 2**32 - 1, "is_bot": 2**8 - 1,
                            "is_machine": 2**8 - 1, "engaged_ms": 2**32 - 1, "scroll": 2**8 - 1}
_ARRAYS = ("props.key", "props.value")
_STRINGS = frozenset(EVENT_DEFAULTS.keys() - UINT_MAX.keys() - set(_ARRAYS))


_ID_BYTES = RandomPool(16)
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}  # RFC 9562: 0b10xx


def new_event_id() -> str:
    """A random event id (a version 4 UUID's text): what every row gets unless its maker passes a
    source of its own. Written out here rather than ``str(uuid.uuid4())``, which costs 2 us of a
    beacon's 30 and a system call (see ``tracker.entropy``); the same 122 random bits."""
    h = _ID_BYTES.take().hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def typed_row(name: str, ts: float, props: Mapping[str, str] | None, event_id: str,
              fields: Mapping[str, Any]) -> dict[str, Any]:
    """A complete row from values that already fit their columns: ``event_row`` without its checks.

    For the beacon path, whose values the JSON Schema and the enrichment have typed already (a
    string for every String column, whole numbers within their columns' ranges, string props):
    checking each of its 30 values again cost a sixth of a beacon's time in the collector.
    ``fields`` must name columns only.
    """
    row = {**EVENT_DEFAULTS, **fields, "event_id": event_id, "name": name, "ts": int(ts),
           "ts_ms": int(ts * 1000) % 1000}
    if props:
        row["props.key"] = list(props)
        row["props.value"] = list(props.values())
    return row


def event_row(name: str, ts: float | None = None, props: dict[str, str] | None = None, *,
              new_id: Callable[[], str] = new_event_id, **fields: Any) -> dict[str, Any]:
    """A complete events row: defaults, then ``fields``; ``ts`` in epoch seconds (float keeps ms).

    ``new_id`` makes the event id when ``fields`` has none: a seeded source gives repeatable rows.
    Whole-number floats and bools become ints; a value its column cannot hold (a fraction, a
    negative or too large number, a non-string in a String column) raises ``ValueError``.
    """
    now = time.time()
    when = now if ts is None else ts
    unknown = fields.keys() - EVENT_DEFAULTS.keys()
    if unknown:
        raise KeyError(f"not columns of events: {sorted(unknown)}")
    row = typed_row(name, when, None, fields.get("event_id", ""), fields)
    for column, limit in UINT_MAX.items():
        value = row[column]
        if type(value) is not int or not 0 <= value <= limit:
            row[column] = _typed(column, value)
    for column, value in fields.items():
        if type(value) is not str and column in _STRINGS:
            row[column] = _typed(column, value)
    if type(name) is not str:
        row["name"] = _typed("name", name)
    row["event_id"] = _uuid_text(row["event_id"]) if row["event_id"] else new_id()
    row["received_at"] = row["received_at"] or int(now)
    if props:
        row["props.key"] = list(props)
        row["props.value"] = [str(v) for v in props.values()]
    if props or "props.key" in fields or "props.value" in fields:
        for column in _ARRAYS:
            row[column] = _typed(column, row[column])
        if len(row["props.key"]) != len(row["props.value"]):  # the two arrays of one Nested column
            raise ValueError("events.props: props.key and props.value must have the same length")
    return row


def _typed(column: str, value: Any) -> Any:
    """``value`` as the type of ``column`` holds it; ValueError when it cannot be."""
    limit = UINT_MAX.get(column)
    if limit is not None:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and 0 <= value <= limit:
            return int(value)  # a bool or an IntEnum as a plain int
        raise ValueError(f"events.{column} must be a whole number from 0 to {limit}, not {value!r}")
    if column in _ARRAYS:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise ValueError(f"events.{column} must be a list of strings, not {value!r}")
    if isinstance(value, str):
        return value
    raise ValueError(f"events.{column} must be a string, not {type(value).__name__} {value!r}")


def _uuid_text(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"events.event_id must be a UUID, not {value!r}") from None
