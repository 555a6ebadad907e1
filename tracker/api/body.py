"""Reading an API request's JSON body: a size limit, then the JSON, then checks that name the field.

The app-wide body limit is the beacon's (``max_body_bytes``, small); API routes that take batches
pass their own limit. Refusals: 413 above the limit, 415 for a body that is not JSON, 400 for
malformed JSON, 422 for JSON of the wrong shape (``field`` names where: ``contacts[3].email``).
"""

from __future__ import annotations

import json
from typing import Any

from flask import request

from tracker.errors import OdnosError

# Large enough for a batch of 1,000 contacts with attributes; small enough to bound one request's memory.
API_MAX_BODY_BYTES = 4 * 1024 * 1024


class Unprocessable(OdnosError):
    """Well-formed JSON that does not say what the route needs; ``field`` names the part at fault."""

    status = 422
    code = "invalid"


def json_body(max_bytes: int = API_MAX_BODY_BYTES) -> Any:
    """The request's JSON value, after the size and media-type checks."""
    request.max_content_length = max_bytes
    if request.content_length is not None and request.content_length > max_bytes:
        raise OdnosError(f"The body is {request.content_length} bytes; at most {max_bytes} are accepted.",
                         code="too_large", status=413)
    if request.mimetype != "application/json":
        raise OdnosError("Send the body as JSON with `Content-Type: application/json`.",
                         code="unsupported_media_type", status=415)
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise OdnosError("The body is not valid UTF-8.", code="bad_json") from None
    except json.JSONDecodeError as exc:
        raise OdnosError(f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.",
                         code="bad_json") from None


def json_object(max_bytes: int = API_MAX_BODY_BYTES) -> dict[str, Any]:
    """The body, which must be a JSON object."""
    body = json_body(max_bytes)
    if not isinstance(body, dict):
        raise Unprocessable("The body must be a JSON object.", field="")
    return body


def field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], *, where: str = "",
          required: bool = False, default: Any = None) -> Any:
    """``obj[name]`` checked to be of ``kind`` (``bool`` never passes for ``int``); 422 naming the field."""
    path = f"{where}.{name}" if where else name
    if name not in obj or obj[name] is None:
        if required:
            raise Unprocessable(f"{path} is required.", field=path, code="missing_field")
        return default
    value = obj[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise Unprocessable(f"{path} must be {_kind_names(kinds)}.", field=path)
    return value


def no_unknown_fields(obj: dict[str, Any], known: set[str] | frozenset[str], *, where: str = "") -> None:
    """Refuse a field the route does not know (a typo must not be silently ignored)."""
    for name in obj:
        if name not in known:
            path = f"{where}.{name}" if where else name
            raise Unprocessable(f"Unknown field {path}; known fields are {', '.join(sorted(known))}.",
                                field=path, code="unknown_field")


def events_of(body: Any, limit: int) -> list[tuple[str, Any]]:
    """The items of a body that is one event, an array of them, or ``{"events": [...]}``, each with
    the field path that names it in a refusal (``events[3]``, or '' for a lone object)."""
    if isinstance(body, dict) and "events" in body:
        no_unknown_fields(body, {"events"})
        body = body["events"]
    if not isinstance(body, list):
        return [("", body)]
    if not body:
        raise Unprocessable("events is empty; send at least one event.", field="events")
    if len(body) > limit:
        raise OdnosError(f"{len(body)} events in one request; at most {limit}.", code="too_many_events",
                         status=413)
    return [(f"events[{index}]", item) for index, item in enumerate(body)]


def objects_of(items: list[Any], name: str, known: set[str] | frozenset[str]) -> list[tuple[str, dict]]:
    """The entries of the array field ``name``, each an object of ``known`` fields, with its path
    (``contacts[3]``) for the refusals that follow."""
    found = []
    for index, item in enumerate(items):
        where = f"{name}[{index}]"
        if not isinstance(item, dict):
            raise Unprocessable(f"{where} must be an object.", field=where)
        no_unknown_fields(item, known, where=where)
        found.append((where, item))
    return found


_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
          dict: "an object", list: "an array"}


def _kind_names(kinds: tuple[type, ...]) -> str:
    return " or ".join(_NAMES.get(k, k.__name__) for k in kinds)
