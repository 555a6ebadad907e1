"""Server-side events over HTTP (``POST /api/v1/events``): a purchase, a signup, from a site's backend.

Each event names its contact by email or id, so it counts for that contact exactly as a beacon
event carrying ``contact_id`` does: segments see it, and event rules answer it
(``tracker.queries.rules.rule_events``). Events go through this worker's spool (the app's
``odnos.queue``), written to disk before the answer like every beacon, so a ClickHouse outage
loses none. A batch is checked whole first: one malformed event refuses the request (422 naming
it) and nothing is queued. An ``id`` (a UUID) of the client's own makes a retried request
recognisable: the rule runner answers each event id once. Names odnos records itself
(``pageview``, ``email_open``, ...) are refused: they have their own routes.

Also here, for the other routes that record events (``tracking``, ``bounces``): the contact a
request names, times in requests, and the hand-over to the queue.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import uuid
from collections.abc import Sequence
from importlib import resources
from typing import Any

import fastjsonschema
import orjson
from flask import current_app, jsonify

from tracker.api import bp
from tracker.api.auth import require
from tracker.api.body import Unprocessable, events_of, field, json_body, no_unknown_fields
from tracker.contacts import contact_id_for, normalize_email
from tracker.enrich.email_machines import REVISION_EVENT
from tracker.errors import OdnosError, StoreUnavailable
from tracker.events import event_row
from tracker.queries.site.custom_events import NOT_CUSTOM

MAX_EVENTS = 1000
MAX_NAME = 120
MAX_URL = 2048
MAX_PAST = 400 * 24 * 3600  # a backfill may reach back a year; rules answer only the last day's
MAX_FUTURE = 300
# What odnos records itself: the collector's, the mailer's and the CRM's own events.
RESERVED = frozenset({*NOT_CUSTOM, REVISION_EVENT, "consent", "survey_comment"})
EVENT_FIELDS = frozenset({"name", "email", "contact_id", "site", "ts", "props", "url", "id"})
_HEX = frozenset("0123456789abcdef")
_check_props = fastjsonschema.compile(
    orjson.loads((resources.files("schemas") / "event.schema.json").read_bytes())["properties"]["props"])


def contact_of(obj: dict[str, Any], where: str) -> str:
    """The contact id an object names by ``email`` or ``contact_id`` (exactly one); 422 otherwise."""
    email = field(obj, "email", str, where=where)
    given = field(obj, "contact_id", str, where=where)
    if (email is None) == (given is None):
        raise Unprocessable(f"Give {at(where, 'email')} or {at(where, 'contact_id')} (one of them).",
                            field=at(where, "email"), code="missing_field")
    if email is not None:
        try:
            return contact_id_for(normalize_email(email))
        except OdnosError as exc:
            raise Unprocessable(exc.message, field=at(where, "email"), code="bad_email") from None
    if len(given) != 16 or not set(given) <= _HEX:
        raise Unprocessable(f"{at(where, 'contact_id')} must be a contact id (16 hex digits), as the API "
                            "returns it.", field=at(where, "contact_id"))
    return given


def seconds_of(value: Any, where: str, *, past: float = MAX_PAST, future: float = MAX_FUTURE) -> float:
    """A time in a request, as Unix seconds: a number of seconds, or ISO 8601 with a UTC offset.

    Refused (422 naming ``where``) when it is neither, or further than ``past`` / ``future`` from now.
    """
    how = "Unix seconds or ISO 8601 with a UTC offset (2026-03-10T09:00:00Z)"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Unprocessable(f"{where} must be {how}.", field=where)
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            raise Unprocessable(f"{where} is not a time; give {how}.", field=where) from None
        if when.tzinfo is None:
            raise Unprocessable(f"{where} has no UTC offset, so the hour is ambiguous; give {how}.",
                                field=where)
        try:
            seconds = when.timestamp()
        except OverflowError:  # year 1 or 9999 shifted by its offset past what datetime holds
            raise Unprocessable(f"{where} is too far from now.", field=where) from None
    else:
        try:
            seconds = float(value)
        except OverflowError:  # a whole number past what a float holds
            raise Unprocessable(f"{where} is too far from now.", field=where) from None
    now = time.time()
    if not math.isfinite(seconds) or not now - past <= seconds <= now + future:
        raise Unprocessable(f"{where} is too far from now ({int(past // 86400)} days back at most, "
                            f"{int(future)} s ahead).", field=where)
    return seconds


def text_only(body: Any) -> Any:
    """``body`` if every string in it is real text; a lone UTF-16 surrogate (``"\\ud800"``, which JSON
    allows and UTF-8 cannot hold) is refused here, before it reaches a token, a spool line or a row."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise OdnosError("The body holds a string with a lone UTF-16 surrogate (\\ud800-\\udfff); send "
                         "text as UTF-8.", code="bad_json") from None
    return body


def submit(rows: Sequence[dict[str, Any]]) -> None:
    """Hand rows to this worker's spool; 503 where the app runs without the collector (no queue)."""
    queue = current_app.extensions.get("odnos.queue")
    if queue is None:
        raise StoreUnavailable("This process runs without the collector, so it cannot record events; "
                               "send this to `odnos serve` or to a collector.")
    queue.submit(rows)


def props_of(value: Any, where: str) -> dict[str, str]:
    """Event props as the events table keeps them, within the beacon schema's limits (one source:
    ``schemas/event.schema.json``): an object of texts."""
    if value is None:
        return {}
    try:
        _check_props(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        detail = exc.message.removeprefix("data").lstrip(". ")
        raise Unprocessable(f"{where}: {detail} (props are an object of texts, as on beacons).",
                            field=where) from None
    return dict(value)


def at(where: str, name: str) -> str:
    """The path of field ``name`` inside the object at ``where`` ('' for the body itself)."""
    return f"{where}.{name}" if where else name


def _site(value: str | None, where: str) -> str:
    if value is None:
        return ""
    pipeline = current_app.extensions.get("odnos.pipeline")
    if pipeline is not None and pipeline.sites.get(value) is None:
        raise Unprocessable(f"{where}: there is no site {value[:40]!r}; the ids are those `odnos site add` "
                            "printed.", field=where, code="unknown_site")
    return value


def _row(obj: Any, where: str, now: float) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise Unprocessable(f"{where or 'The body'} must be an object.", field=where)
    no_unknown_fields(obj, EVENT_FIELDS, where=where)
    name = field(obj, "name", str, where=where, required=True).strip()
    if not name or len(name) > MAX_NAME:
        raise Unprocessable(f"{at(where, 'name')} must be 1 to {MAX_NAME} characters.",
                            field=at(where, "name"))
    if name in RESERVED:
        raise Unprocessable(f"{at(where, 'name')} {name!r} is an event odnos records itself; name the event "
                            "for what happened (purchase, signup).", field=at(where, "name"),
                            code="reserved_name")
    contact_id = contact_of(obj, where)
    ts = obj.get("ts")
    when = now if ts is None else seconds_of(ts, at(where, "ts"))
    event_id = field(obj, "id", str, where=where)
    if event_id is not None:
        try:
            event_id = str(uuid.UUID(event_id))
        except ValueError:
            raise Unprocessable(f"{at(where, 'id')} must be a UUID.", field=at(where, "id")) from None
    url = field(obj, "url", str, where=where, default="")
    if len(url) > MAX_URL:
        raise Unprocessable(f"{at(where, 'url')} is over {MAX_URL} characters.", field=at(where, "url"))
    site_id = _site(field(obj, "site", str, where=where), at(where, "site"))
    return event_row(name, when, props_of(obj.get("props"), at(where, "props")), received_at=int(now),
                     source="api", contact_id=contact_id, site_id=site_id, url=url, event_id=event_id or "")


@bp.post("/events")
@require("events:write")
def post_events() -> Any:
    """One event (an object) or up to ``MAX_EVENTS`` (an array, or ``{"events": [...]}``)."""
    now = time.time()
    rows = [_row(item, where, now) for where, item in events_of(text_only(json_body()), MAX_EVENTS)]
    submit(rows)
    return jsonify(accepted=len(rows),
                   events=[{"id": row["event_id"], "contact_id": row["contact_id"]} for row in rows]), 202
