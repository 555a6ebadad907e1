"""Bounces and complaints from the tool that sent the mail: ``POST /api/v1/bounces`` (``contacts:write``).

A hard bounce marks the contact ``bounced``, a complaint ``complained``, through the CRM's own
upsert (``tracker.crm.contacts.upsert_contacts``, what ``set_status`` does for one address): the
contact row, a ``consent`` event and the suppression the mailer obeys, so rules stop mailing them
at once. A bounce also records an ``email_bounce`` event, counted by campaign reports when the
message is known. Soft (transient) bounces change nothing and are listed as skipped.

Three bodies are understood, told apart by their fields:

- generic: ``{"email", "type": "bounce" | "complaint", "message"?}`` or ``{"events": [...]}`` of
  them (``message`` is the odnos message id, ``<campaign>`` or ``<campaign>.<message>``);
- Amazon SES through SNS: the SNS envelope (``Type``, ``TopicArn``, ``Message``) whose ``Message``
  is SES's notification JSON (``notificationType`` or ``eventType`` ``Bounce`` with
  ``bounce.bounceType`` ``Permanent`` and ``bounce.bouncedRecipients[].emailAddress``, or
  ``Complaint`` with ``complaint.complainedRecipients[].emailAddress``); SNS posts it as
  ``text/plain``. A ``SubscriptionConfirmation`` is answered 200 with its ``SubscribeURL``, which
  is logged: open it once (or confirm in the AWS console); odnos fetches no URL a request names.
- Postmark's bounce and spam-complaint webhooks: ``RecordType`` ``Bounce`` (``Type``
  ``HardBounce``, or any bounce that made Postmark deactivate the address, ``Inactive: true``) or
  ``SpamComplaint``, with ``Email``; a ``Tag`` set to the odnos message id names the campaign.

The key may come as ``Authorization: Bearer odn_...`` or, for providers that cannot set headers
(an SNS subscription, a webhook URL), as ``?key=odn_...`` in the URL; such a URL is a secret, and
it shows in proxies' access logs, so give that key the ``contacts:write`` scope alone.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app, jsonify, request

from tracker import audit
from tracker.api import bp
from tracker.api.auth import actor, require
from tracker.api.body import API_MAX_BODY_BYTES, Unprocessable, events_of, field, no_unknown_fields
from tracker.api.events import at, submit, text_only
from tracker.collect.pipeline import campaign_of
from tracker.contacts import contact_id_for, normalize_email
from tracker.crm.contacts import ContactUpdate, Outcome, upsert_contacts
from tracker.crm.model import ConsentStatus
from tracker.errors import OdnosError
from tracker.events import event_row

log = logging.getLogger(__name__)

MAX_EVENTS = 1000
TYPES = {"bounce": ConsentStatus.bounced.value, "complaint": ConsentStatus.complained.value}
GENERIC_FIELDS = frozenset({"email", "type", "message"})
_MEDIA = ("application/json", "text/plain")


@dataclass(frozen=True)
class Report:
    """One address a provider reported: its new status, or None (skipped) with the reason."""

    email: str
    status: str | None
    how: str
    reason: str = ""
    message_id: str = ""


def key_in_query(view: Callable) -> Callable:
    """Let ``?key=`` stand for the Bearer header ``require`` reads, when no header was sent."""

    @functools.wraps(view)
    def with_query_key(*args: Any, **kwargs: Any) -> Any:
        key = request.args.get("key", "")
        if key and "HTTP_AUTHORIZATION" not in request.environ:
            request.environ["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        return view(*args, **kwargs)

    return with_query_key


def _payload() -> Any:
    """The body as JSON: ``application/json``, or ``text/plain`` as SNS sends it."""
    if request.content_length is not None and request.content_length > API_MAX_BODY_BYTES:
        raise OdnosError(f"The body is {request.content_length} bytes; at most {API_MAX_BODY_BYTES}.",
                         code="too_large", status=413)
    if request.mimetype not in _MEDIA:
        raise OdnosError("Send the body as JSON (application/json, or text/plain as SNS does).",
                         code="unsupported_media_type", status=415)
    raw = request.get_data(cache=True)
    if len(raw) > API_MAX_BODY_BYTES:
        raise OdnosError(f"The body is over {API_MAX_BODY_BYTES} bytes.", code="too_large", status=413)
    try:
        return text_only(json.loads(raw))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise OdnosError("The body is not valid JSON (UTF-8).", code="bad_json") from None


@bp.post("/bounces")
@key_in_query
@require("contacts:write")
def post_bounces() -> Any:
    body = _payload()
    if isinstance(body, dict) and "TopicArn" in body and "Type" in body:
        if body["Type"] == "SubscriptionConfirmation":
            url = field(body, "SubscribeURL", str, required=True)
            log.warning("SNS asks to confirm the subscription of %s to odnos's bounce webhook: open %s",
                        body.get("TopicArn"), url)
            return jsonify(subscription="pending", subscribe_url=url,
                           message="Open subscribe_url once to confirm (odnos fetches no URL a request "
                                   "names), or confirm the subscription in the AWS console.")
        reports = _ses(body)
    elif isinstance(body, dict) and "RecordType" in body:
        reports = _postmark(body)
    else:
        reports = _generic(body)
    return jsonify(_apply(reports))


def _generic(body: Any) -> list[Report]:
    reports = []
    for where, item in events_of(body, MAX_EVENTS):
        if not isinstance(item, dict):
            raise Unprocessable(f"{where or 'The body'} must be an object.", field=where)
        no_unknown_fields(item, GENERIC_FIELDS, where=where)
        kind = field(item, "type", str, where=where, required=True)
        if kind not in TYPES:
            raise Unprocessable(f"{at(where, 'type')} must be bounce or complaint.", field=at(where, "type"))
        message = field(item, "message", str, where=where, default="")
        email = _email(field(item, "email", str, where=where, required=True), at(where, "email"))
        reports.append(Report(email, TYPES[kind], "api", message_id=message[:200]))
    return reports


def _ses(envelope: dict[str, Any]) -> list[Report]:
    if envelope["Type"] != "Notification":
        return []  # UnsubscribeConfirmation: nothing to record
    raw = field(envelope, "Message", str, required=True)
    try:
        note = json.loads(raw)
    except json.JSONDecodeError:
        raise Unprocessable("Message must be SES's notification as JSON text.", field="Message") from None
    if not isinstance(note, dict):
        raise Unprocessable("Message must be SES's notification as JSON text.", field="Message")
    kind = note.get("notificationType") or note.get("eventType")
    if kind == "Bounce":
        bounce = _object(note, "bounce")
        permanent = bounce.get("bounceType") == "Permanent"
        status = ConsentStatus.bounced.value if permanent else None
        reason = "" if permanent else f"{bounce.get('bounceType', 'unknown')} bounce: not permanent"
        recipients = _recipients(bounce, "bouncedRecipients", "Message.bounce")
    elif kind == "Complaint":
        status, reason = ConsentStatus.complained.value, ""
        recipients = _recipients(_object(note, "complaint"), "complainedRecipients", "Message.complaint")
    else:
        return []  # Delivery, Send, Open...: SES tells more than bounces; odnos tracks those itself
    return [Report(email, status, "ses", reason) for email in recipients]


def _object(note: dict[str, Any], name: str) -> dict[str, Any]:
    value = note.get(name)
    if not isinstance(value, dict):
        raise Unprocessable(f"Message.{name} must be an object.", field=f"Message.{name}")
    return value


def _recipients(part: dict[str, Any], name: str, where: str) -> list[str]:
    found = part.get(name)
    if not isinstance(found, list):
        raise Unprocessable(f"{where}.{name} must be a list.", field=f"{where}.{name}")
    emails = []
    for index, recipient in enumerate(found):
        path = f"{where}.{name}[{index}].emailAddress"
        address = recipient.get("emailAddress") if isinstance(recipient, dict) else None
        if not isinstance(address, str):
            raise Unprocessable(f"{path} must be an address.", field=path)
        emails.append(_email(address, path))
    return emails


def _postmark(body: dict[str, Any]) -> list[Report]:
    record = body["RecordType"]
    email = _email(field(body, "Email", str, required=True), "Email")
    tag = body.get("Tag") if isinstance(body.get("Tag"), str) else ""
    if record == "SpamComplaint":
        return [Report(email, ConsentStatus.complained.value, "postmark")]
    if record == "Bounce":
        kind = body.get("Type", "")
        if kind == "HardBounce" or body.get("Inactive") is True:
            return [Report(email, ConsentStatus.bounced.value, "postmark", message_id=tag[:200])]
        return [Report(email, None, "postmark", f"{kind or 'unknown'} bounce: the address stays active")]
    return []  # Delivery, Open, Click, SubscriptionChange: not bounces


def _email(value: str, where: str) -> str:
    try:
        return normalize_email(value)
    except OdnosError as exc:
        raise Unprocessable(exc.message, field=where, code="bad_email") from None


def _apply(reports: list[Report]) -> dict[str, Any]:
    """Mark the reported contacts, record the bounces' events; what was done, address by address."""
    runtime = current_app.extensions["odnos"]
    marked = [r for r in reports if r.status is not None]
    results = upsert_contacts(runtime.store, runtime.control, runtime.keys,
                              [ContactUpdate(r.email, status=r.status) for r in marked],
                              source=marked[0].how) if marked else []
    now = time.time()
    bounces = [event_row("email_bounce", now, {"how": r.how}, received_at=int(now), source="api",
                         contact_id=contact_id_for(r.email), message_id=r.message_id,
                         campaign_id=campaign_of(r.message_id) if r.message_id else "")
               for r in marked if r.status == ConsentStatus.bounced]
    if bounces:
        submit(bounces)
    if marked:
        audit.record_done(runtime.control, actor(), "consent_changed", "bounces",
                          {"marked": len(marked), "at": "api"})
    done = []
    for report, result in zip(marked, results, strict=True):
        entry = {"email": report.email, "status": report.status, "outcome": result.outcome.value}
        if result.outcome is Outcome.refused or result.reason:
            entry["reason"] = result.reason
        done.append(entry)
    skipped = [{"email": r.email, "reason": r.reason} for r in reports if r.status is None]
    return {"marked": done, "skipped": skipped}
