"""Contacts over HTTP: upsert one or a batch, read one, list with filters and a cursor, consent, erase.

Routes only translate: the body is checked here (types, sizes; 422 naming the field), the work is
``tracker.crm`` (the same upsert, consent and erasure as the CLI and the dashboard). In a batch,
a row ``tracker.crm`` refuses for its value (a malformed address, a bad tag, an erased person) is
reported as ``refused`` with the reason and the other rows are stored; a row of the wrong shape
refuses the whole batch with a 422 and stores nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from flask import current_app, jsonify

from tracker import audit
from tracker.api import bp, query
from tracker.api.auth import actor, require
from tracker.api.body import API_MAX_BODY_BYTES, Unprocessable, field, json_object, no_unknown_fields
from tracker.contacts import contact_id_for, normalize_email
from tracker.control.models import Segment
from tracker.crm.consent import erasure_hash
from tracker.crm.contacts import (
    STATUSES,
    ContactUpdate,
    Outcome,
    clean_tags,
    profile,
    set_status,
    upsert_contacts,
)
from tracker.crm.erase import erase_contact
from tracker.crm.model import Contact
from tracker.crm.segments import get_segment
from tracker.crm.segments.members import compile_segment
from tracker.errors import OdnosError
from tracker.queries.contacts.changed_contacts import changed_contacts

MAX_BATCH = 1000
SINGLE_BODY_BYTES = 64 * 1024
MAX_NAME = 200
MAX_ATTRS = 100
MAX_ATTR_KEY = 128
MAX_ATTR_VALUE = 4096
MAX_TAGS = 100
MAX_PAGE = 1000
FIELDS = frozenset({"first_name", "last_name", "status", "attrs", "tags"})
SOURCE = "api"


def _runtime() -> Any:
    return current_app.extensions["odnos"]


def contact_json(contact: Contact) -> dict[str, Any]:
    """A contact as the API shows it (times in ISO 8601, UTC)."""
    return {"id": contact.contact_id, "email": contact.email, "first_name": contact.first_name,
            "last_name": contact.last_name, "status": contact.status, "attrs": contact.attrs,
            "tags": list(contact.tags), "source": contact.source,
            "created_at": iso_time(contact.created_at), "updated_at": iso_time(contact.updated_at)}


def iso_time(value: datetime | None) -> str | None:
    """An aware time as ISO 8601 in UTC with ``Z``; None stays None."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def _email(value: str, where: str) -> str:
    try:
        return normalize_email(value)
    except OdnosError as exc:
        raise Unprocessable(exc.message, field=where, code="bad_email") from None


def contact_update(obj: Any, where: str, email: str) -> ContactUpdate:
    """A ``ContactUpdate`` from one JSON object of the API (``FIELDS``); 422 naming the field at fault."""
    if not isinstance(obj, dict):
        raise Unprocessable(f"{where or 'The body'} must be a JSON object.", field=where)
    prefix = f"{where}." if where else ""
    first = field(obj, "first_name", str, where=where)
    last = field(obj, "last_name", str, where=where)
    for name, value in (("first_name", first), ("last_name", last)):
        if value is not None and len(value) > MAX_NAME:
            raise Unprocessable(f"{prefix}{name} is longer than {MAX_NAME} characters.", field=prefix + name)
    status = field(obj, "status", str, where=where)
    if status is not None and status not in STATUSES:
        raise Unprocessable(f"{prefix}status must be one of {', '.join(STATUSES)}.", field=prefix + "status",
                            code="bad_status")
    attrs = field(obj, "attrs", dict, where=where, default={})
    if len(attrs) > MAX_ATTRS:
        raise Unprocessable(f"{prefix}attrs has more than {MAX_ATTRS} keys.", field=prefix + "attrs")
    for key, value in attrs.items():
        if not 1 <= len(key) <= MAX_ATTR_KEY:
            raise Unprocessable(f"{prefix}attrs keys must be 1 to {MAX_ATTR_KEY} characters.",
                                field=prefix + "attrs")
        if not isinstance(value, str) or len(value) > MAX_ATTR_VALUE:
            raise Unprocessable(f"{prefix}attrs.{key} must be text of at most {MAX_ATTR_VALUE} characters.",
                                field=f"{prefix}attrs.{key}")
    tags = field(obj, "tags", list, where=where, default=[])
    if len(tags) > MAX_TAGS or not all(isinstance(tag, str) for tag in tags):
        raise Unprocessable(f"{prefix}tags must be an array of at most {MAX_TAGS} texts.",
                            field=prefix + "tags")
    return ContactUpdate(email=email, first_name=first, last_name=last, status=status, attrs=dict(attrs),
                         tags=tuple(tags))


def _stored(email: str) -> dict[str, Any]:
    runtime = _runtime()
    found = profile(runtime.store, runtime.control, email, limit=1)
    return contact_json(found.contact)


@bp.put("/contacts/<email>")
@require("contacts:write")
def put_contact(email: str) -> Any:
    """Create or update one contact; fields left out are kept, attributes merge, tags add up."""
    body = json_object(SINGLE_BODY_BYTES)
    no_unknown_fields(body, FIELDS)
    update = contact_update(body, "", _email(email, "email"))
    try:
        clean_tags(update.tags)
    except OdnosError as exc:
        raise Unprocessable(exc.message, field="tags", code="bad_tag") from None
    runtime = _runtime()
    [result] = upsert_contacts(runtime.store, runtime.control, runtime.keys, [update], source=SOURCE)
    if result.outcome is Outcome.refused:
        raise OdnosError(result.reason, code="erased", status=409, field="email")
    audit.record_done(runtime.control, actor(), "contacts_imported", contact_id_for(update.email),
                      {"outcome": str(result.outcome), "at": "api"})
    answer = {"outcome": str(result.outcome), "contact": _stored(update.email)}
    if result.reason:
        answer["note"] = result.reason
    return jsonify(answer), 201 if result.outcome is Outcome.created else 200


@bp.post("/contacts/batch")
@require("contacts:write")
def post_contacts_batch() -> Any:
    """Create or update up to ``MAX_BATCH`` contacts in one call, idempotent by email."""
    body = json_object(API_MAX_BODY_BYTES)
    no_unknown_fields(body, {"contacts"})
    rows = field(body, "contacts", list, required=True)
    if len(rows) > MAX_BATCH:
        raise OdnosError(f"contacts has {len(rows)} entries; at most {MAX_BATCH} fit in one batch.",
                         code="too_many", status=413, field="contacts")
    updates = []
    for index, row in enumerate(rows):
        where = f"contacts[{index}]"
        if not isinstance(row, dict):
            raise Unprocessable(f"{where} must be a JSON object.", field=where)
        no_unknown_fields(row, FIELDS | {"email"}, where=where)
        email = field(row, "email", str, where=where, required=True)
        updates.append(contact_update(row, where, email))
    runtime = _runtime()
    results = upsert_contacts(runtime.store, runtime.control, runtime.keys, updates, source=SOURCE)
    counts = {outcome.value: 0 for outcome in Outcome}
    listed = []
    for update, result in zip(updates, results, strict=True):
        counts[result.outcome.value] += 1
        entry = {"email": update.email, "outcome": str(result.outcome), "id": result.contact_id or None}
        if result.reason:
            entry["reason"] = result.reason
        listed.append(entry)
    audit.record_done(runtime.control, actor(), "contacts_imported", "batch", {**counts, "at": "api"})
    return jsonify({**counts, "results": listed})


@bp.get("/contacts/<email>")
@require("contacts:read")
def get_contact(email: str) -> Any:
    """One contact: the row, the lists it left, its linked visitors and its newest timeline entries."""
    query.only("timeline")
    limit = query.number("timeline", default=20, lowest=1, highest=200)
    runtime = _runtime()
    found = profile(runtime.store, runtime.control, _email(email, "email"), limit=limit)
    return jsonify({
        "contact": contact_json(found.contact), "suppressed": found.suppressed,
        "visitors": [{"site_id": v.site_id, "visitor_id": v.visitor_id, "method": v.method,
                      "linked_at": iso_time(v.linked_at), "current": v.current} for v in found.visitors],
        "timeline": {"total": found.timeline.total, "entries": [
            {**asdict(entry), "ts": iso_time(entry.ts)} for entry in found.timeline.entries]},
    })


@bp.get("/contacts")
@require("contacts:read")
def list_contacts() -> Any:
    """Contacts in id order, ``limit`` after ``cursor``, filtered by segment, tag, status, updated since."""
    query.only("segment", "tag", "status", "updated_since", "cursor", "limit")
    limit = query.number("limit", default=100, lowest=1, highest=MAX_PAGE)
    after = query.text("cursor", max_length=64) or ""
    conditions: list[dict[str, Any]] = []
    segment_name = query.text("segment")
    if segment_name is not None:
        conditions.append(_segment(segment_name).definition)
    tag = query.text("tag", max_length=128)
    if tag is not None:
        conditions.append({"type": "tag", "tag": tag})
    status = query.choice("status", STATUSES)
    if status is not None:
        conditions.append({"type": "consent", "status": status})
    since = query.moment("updated_since")
    runtime = _runtime()
    compiled = compile_segment(runtime.store, {"all": conditions}, None)
    page = changed_contacts(runtime.store, compiled.sql, compiled.params, updated_since=since, after=after,
                            limit=limit)
    cursor = page[-1].contact_id if len(page) == limit else None
    return jsonify({"contacts": [contact_json(c) for c in page], "next_cursor": cursor})


def _segment(name: str) -> Segment:
    with _runtime().control.session() as db:
        try:
            return get_segment(db, name)
        except OdnosError as exc:
            raise OdnosError(exc.message, code="unknown_segment", status=404, field="segment") from None


@bp.put("/contacts/<email>/consent")
@require("contacts:write")
def put_consent(email: str) -> Any:
    """Record a consent change; moving back to subscribed is refused (409), as everywhere in odnos."""
    body = json_object(SINGLE_BODY_BYTES)
    no_unknown_fields(body, {"status"})
    status = field(body, "status", str, required=True)
    if status not in STATUSES:
        raise Unprocessable(f"status must be one of {', '.join(STATUSES)}.", field="status",
                            code="bad_status")
    address = _email(email, "email")
    runtime = _runtime()
    result = set_status(runtime.store, runtime.control, runtime.keys, address, status, how=SOURCE)
    if result.outcome is Outcome.refused:
        raise OdnosError(result.reason, code="erased", status=409, field="email")
    if result.reason:
        raise OdnosError(result.reason, code="consent_kept", status=409, field="status")
    audit.record_done(runtime.control, actor(), "consent_changed", contact_id_for(address),
                      {"status": status, "at": "api"})
    return jsonify({"outcome": str(result.outcome), "contact": _stored(address)})


@bp.delete("/contacts/<email>")
@require("contacts:write")
def delete_contact(email: str) -> Any:
    """Erase the person everywhere (GDPR); only a keyed hash stays, so the address is never stored again."""
    runtime = _runtime()
    report = erase_contact(runtime.store, runtime.control, runtime.keys, _email(email, "email"))
    audit.record_done(runtime.control, actor(), "contact_erased", erasure_hash(runtime.keys[0], report.email),
                      {"rows": sum(report.rows.values()), "at": "api"})
    return jsonify({"erased": report.email, "id": report.contact_id, "rows": report.rows,
                    "ledger_rows": report.ledger_rows, "suppressions": report.suppressions})
