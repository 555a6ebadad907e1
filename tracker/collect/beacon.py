"""Parse and validate beacon bodies: one JSON event or an array of them, as JSON or text/plain.

Validation is the JSON Schema in ``schemas/event.schema.json`` (compiled once with
fastjsonschema), so the contract the snippet is written against is the one enforced here. Every
refusal is a ``BadBeacon`` (400, JSON reason); a batch is accepted whole or not at all, so a client
never has to guess which of its events landed. Numbers leave here as Python ints: the schema counts
``50.0`` as an integer, and ClickHouse refuses a whole insert over one such float; on the GIF route
only ASCII digits are numbers, and their length is checked before ``int`` reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

import fastjsonschema
import orjson

from tracker.errors import OdnosError

_SCHEMA = orjson.loads((resources.files("schemas") / "event.schema.json").read_bytes())
_validate = fastjsonschema.compile(_SCHEMA)
_FIELDS = frozenset(_SCHEMA["properties"])
_INTEGERS = {k: v["maximum"] for k, v in _SCHEMA["properties"].items() if v.get("type") == "integer"}


class BadBeacon(OdnosError):
    code = "bad_event"


def parse_body(body: bytes, max_events: int) -> list[dict[str, Any]]:
    """The events in a POST body (JSON object or array); BadBeacon for anything else."""
    if not body or body.isspace():
        raise BadBeacon("the body is empty; send a JSON event or an array of events", code="empty_body")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadBeacon(f"the body is not valid JSON (UTF-8): {exc}", code="bad_json") from None
    events = data if isinstance(data, list) else [data]
    if not events:
        raise BadBeacon("the array holds no event", code="empty_body")
    if len(events) > max_events:
        raise BadBeacon(f"{len(events)} events in one request; at most {max_events}", code="too_many_events",
                        status=413)
    for index, event in enumerate(events):
        check_event(event, index)
    return events


def parse_query(args: Mapping[str, str] | str) -> dict[str, Any]:
    """One event from query parameters (the ``/e.gif`` fallback); ``props`` is a JSON object string."""
    pairs = parse_qsl(args, keep_blank_values=True) if isinstance(args, str) else list(args.items())
    event: dict[str, Any] = {}
    for key, value in pairs:
        if key not in _FIELDS:
            raise BadBeacon(f"unknown parameter {key!r}", code="bad_event")
        if key in _INTEGERS:
            event[key] = _whole_number(key, value)
        elif key == "props":
            try:
                event[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise BadBeacon("parameter 'props' must be a JSON object", code="bad_event") from None
        else:
            event[key] = value
    check_event(event, 0)
    return event


def _whole_number(key: str, value: str) -> int:
    """A query parameter as a count: ASCII digits (``"²"`` passes ``isdigit``), no longer than its maximum."""
    maximum = _INTEGERS[key]
    if not (value.isascii() and value.isdigit()):
        raise BadBeacon(f"parameter {key!r} must be a whole number written in the digits 0-9",
                        code="bad_event")
    if len(value.lstrip("0")) > len(str(maximum)):  # before int(): 5,000 digits would raise there
        raise BadBeacon(f"parameter {key!r} must be at most {maximum}", code="bad_event")
    return int(value)


def check_event(event: Any, index: int) -> None:
    """Validate one event against the schema; the message names the event and the field.

    Whole-number floats the schema lets through as integers (``50.0``) become ints, in place.
    """
    try:
        _validate(event)
    except fastjsonschema.JsonSchemaValueException as exc:
        where = f"event {index}" if index else "the event"
        field = exc.name.removeprefix("data").lstrip(".") or "body"
        raise BadBeacon(f"{where}: {field}: {exc.message.removeprefix('data').lstrip('. ')}",
                        code="bad_event") from None
    for key in _INTEGERS:
        if type(event.get(key)) is float:
            event[key] = int(event[key])
