"""Tracking for external senders (scope ``send``): tracked links and pixels, whole messages, sends.

A sender who mails through a tool of their own gets from here what odnos's mailer would put in the
message: ``/tracking/links`` signs tracked links and open pixels in bulk (the tokens of
``odnos link`` and ``odnos pixel``); ``/tracking/render`` takes a message's HTML (a template, as
``odnos templates add`` takes it) for one contact and returns it composed by the mailer's own
``Composer`` (every link tracked, the trap link, the pixel, the unsubscribe link and headers);
``/tracking/sent`` records ``email_sent`` events so campaign reports have their denominators.

Messages are named as the mailer names them: ``<campaign>`` or ``<campaign>.<message>``
(``campaign_of`` reads the campaign back), campaigns in ASCII letters, digits, ``-`` and ``_``.
A ``sent_at`` (when the tool sends) goes into the tokens; without it the send time is unknown and
opens and clicks are not judged by how soon they came (``TokenCodec.click``).
"""

from __future__ import annotations

import re
import time
from email.utils import parseaddr
from typing import Any

import orjson
from flask import Response, current_app, jsonify

from tracker.api import bp
from tracker.api.auth import require
from tracker.api.body import Unprocessable, field, json_object, no_unknown_fields, objects_of
from tracker.api.events import MAX_FUTURE, at, contact_of, seconds_of, submit, text_only
from tracker.crm.consent import why_not_mailable
from tracker.crm.mailer.compose import Composer
from tracker.crm.mailer.links import link_id_for
from tracker.crm.mailer.render import TemplateError
from tracker.crm.model import Contact
from tracker.crm.templates import check_template
from tracker.errors import InvalidToken, OdnosError
from tracker.events import event_row
from tracker.queries.contacts.current_contacts import current_contacts
from tracker.tokens import CAMPAIGN_NAME, SentAt, TokenCodec

MAX_ITEMS = 1000  # contacts in one /tracking/links or /tracking/sent request
MAX_LINKS = 20_000  # links in one /tracking/links request, all contacts together
LINKS_BODY_BYTES = 8 * 1024 * 1024
_MESSAGE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SEND_PAST = 30 * 24 * 3600  # a send reported or signed for up to a month back


def _runtime() -> Any:
    return current_app.extensions["odnos"]


def _codec() -> TokenCodec:
    codec = current_app.extensions.get("odnos.api_codec")
    if codec is None:
        codec = current_app.extensions.setdefault("odnos.api_codec", TokenCodec(_runtime().keys))
    return codec


def _base_url() -> str:
    return _runtime().settings.effective_public_url().rstrip("/")


def _pattern(obj: dict[str, Any], name: str, pattern: re.Pattern, where: str, *, required: bool = False,
             ) -> str | None:
    value = field(obj, name, str, where=where, required=required)
    if value is not None and not pattern.fullmatch(value):
        raise Unprocessable(f"{at(where, name)} may hold only ASCII letters, digits, - and _ (1 to 64).",
                            field=at(where, name))
    return value


def message_id_of(obj: dict[str, Any], where: str, campaign: str | None = None) -> str:
    """``<campaign>`` or ``<campaign>.<message>``: the campaign from ``obj`` or the request's."""
    campaign = _pattern(obj, "campaign", CAMPAIGN_NAME, where, required=campaign is None) or campaign
    message = _pattern(obj, "message", _MESSAGE, where)
    return f"{campaign}.{message}" if message else str(campaign)


def _sent_at(obj: dict[str, Any], where: str, default: SentAt = None, *, future: float = SEND_PAST,
             ) -> SentAt:
    """``sent_at`` of ``obj``, or ``default``; a month either way (a scheduled send) unless ``future``."""
    value = obj.get("sent_at")
    return default if value is None else seconds_of(value, at(where, "sent_at"), past=SEND_PAST,
                                                    future=future)


def _count(items: list, name: str) -> None:
    if not items:
        raise Unprocessable(f"{name} is empty; send at least one.", field=name)
    if len(items) > MAX_ITEMS:
        raise OdnosError(f"{name} holds {len(items)} items; at most {MAX_ITEMS} in one request.",
                         code="too_many_items", status=413)


# -- tracked links and pixels, in bulk ---------------------------------------------------------------

LINKS_FIELDS = frozenset({"campaign", "sent_at", "contacts"})
LINKS_ITEM_FIELDS = frozenset({"email", "contact_id", "message", "sent_at", "urls", "pixel"})


@bp.post("/tracking/links")
@require("send")
def tracking_links() -> Any:
    """Tracked links (and a pixel) for each contact of a campaign.

    ``{"campaign", "sent_at"?, "contacts": [{"email" | "contact_id", "message"?, "sent_at"?,
    "urls": [URL or {"url", "link_id"?}], "pixel"?: true}]}``; link ids default to the mailer's
    (6 hex digits of the URL's SHA-256), so clicks group the same in reports.
    """
    body = text_only(json_object(LINKS_BODY_BYTES))
    no_unknown_fields(body, LINKS_FIELDS)
    campaign = _pattern(body, "campaign", CAMPAIGN_NAME, "", required=True)
    default_sent = _sent_at(body, "")
    items = field(body, "contacts", list, required=True)
    _count(items, "contacts")
    codec, base = _codec(), _base_url()
    link_ids: dict[str, str] = {}  # target -> its default link id, for the request's repeated URLs
    total = 0
    answer = []
    for where, item in objects_of(items, "contacts", LINKS_ITEM_FIELDS):
        contact_id = contact_of(item, where)
        message_id = message_id_of(item, where, campaign)
        sent_at = _sent_at(item, where, default_sent)
        urls = field(item, "urls", list, where=where, default=[])
        total += len(urls)
        if total > MAX_LINKS:
            raise OdnosError(f"over {MAX_LINKS} links in one request; split it.", code="too_many_items",
                             status=413)
        links = [_link(codec, base, contact_id, message_id, sent_at, url, f"{where}.urls[{n}]", link_ids)
                 for n, url in enumerate(urls)]
        made: dict[str, Any] = {"contact_id": contact_id, "message_id": message_id, "links": links}
        if field(item, "pixel", bool, where=where, default=True):
            made["pixel_url"] = f"{base}/o/{_signed(codec.open, contact_id, message_id, sent_at=sent_at)}"
        answer.append(made)
    # orjson: a 20,000-link answer is a few megabytes, which Flask's json would take longest to write.
    return Response(orjson.dumps({"campaign": campaign, "contacts": answer}), mimetype="application/json")


def _link(codec: TokenCodec, base: str, contact_id: str, message_id: str, sent_at: SentAt, url: Any,
          where: str, link_ids: dict[str, str]) -> dict[str, str]:
    link_id = None
    if isinstance(url, dict):
        no_unknown_fields(url, {"url", "link_id"}, where=where)
        link_id = _pattern(url, "link_id", _LINK_ID, where)
        url = field(url, "url", str, where=where, required=True)
    elif not isinstance(url, str):
        raise Unprocessable(f"{where} must be a URL or an object with url.", field=where)
    if link_id is None:
        link_id = link_ids.get(url) or link_ids.setdefault(url, link_id_for(url))
    token = _signed(codec.click, contact_id, message_id, link_id, url, sent_at=sent_at, where=where)
    return {"url": url, "link_id": link_id, "tracked_url": f"{base}/c/{token}"}


def _signed(make: Any, *args: Any, sent_at: SentAt, where: str = "sent_at") -> str:
    """A token; the codec's refusals (an unsafe target, a send time too far off) as a 422 naming ``where``."""
    try:
        return make(*args, sent_at=sent_at)
    except InvalidToken as exc:
        raise Unprocessable(exc.message, field=where, code=exc.code) from None
    except OdnosError as exc:
        raise Unprocessable(exc.message, field="sent_at", code=exc.code) from None


# -- a whole message, composed as the mailer composes it ---------------------------------------------

RENDER_FIELDS = frozenset({"email", "contact_id", "campaign", "message", "subject", "html", "text", "sent_at",
                           "site", "list", "from"})


@bp.post("/tracking/render")
@require("send")
def tracking_render() -> Any:
    """One contact's message: ``{"email" | "contact_id", "campaign", "message"?, "subject", "html",
    "text"?, "sent_at"?, "site"?, "list"?, "from"?}``.

    ``html``, ``text`` and ``subject`` are templates as ``odnos templates add`` takes them
    (``{{ contact.first_name }}``, ``{{ unsubscribe_url }}``, ``recommended()``); ``site`` scopes
    recommendations, ``list`` is the list the unsubscribe link leaves ('' = every list), ``from`` the
    From address the ``List-Unsubscribe`` mailto names (default ``ODNOS_MAIL_FROM``). A contact
    that may not be mailed (unsubscribed, bounced, erased) gets a 409 with the reason, as the
    mailer would skip them.
    """
    body = text_only(json_object())
    no_unknown_fields(body, RENDER_FIELDS)
    contact_id = contact_of(body, "")
    message_id = message_id_of(body, "")
    sent_at = _sent_at(body, "")
    subject = field(body, "subject", str, required=True)
    html = field(body, "html", str, required=True)
    text = field(body, "text", str, default="")
    site_id = field(body, "site", str, default="")
    list_id = _pattern(body, "list", CAMPAIGN_NAME, "") or ""
    try:
        template = check_template(subject, html, text)
    except TemplateError as exc:
        raise Unprocessable(exc.message, field=exc.part, code=exc.code) from None
    runtime = _runtime()
    sender = field(body, "from", str) or runtime.settings.mail_from
    if "@" not in parseaddr(sender)[1]:
        raise Unprocessable("from must be the From address the message goes out with, like Shop "
                            "<news@shop.example.com> (its default, ODNOS_MAIL_FROM, gives none).",
                            field="from")
    contact = _mailable(runtime, contact_id, list_id)
    composer = Composer(_codec(), _base_url(), sender, runtime.reader, contact_ids=[contact_id],
                        site_id=site_id, list_id=list_id)
    try:
        composed = composer.compose(template, contact, message_id, sent_at=sent_at)
    except TemplateError as exc:
        raise Unprocessable(f"the template fails for this contact: {exc.message}", field=exc.part,
                            code=exc.code) from None
    except InvalidToken as exc:
        raise Unprocessable(exc.message, field="sent_at", code=exc.code) from None
    email = composed.email
    return jsonify(
        contact_id=contact_id, email=contact.email, message_id=message_id, subject=composed.subject,
        html=composed.html, text=composed.text, unsubscribe_url=composed.unsubscribe_url,
        links=[{"link_id": link.link_id, "url": link.target, "tracked_url": link.url}
               for link in composed.links],
        headers={name: str(email[name]) for name in ("List-Unsubscribe", "List-Unsubscribe-Post")
                 if email[name] is not None})


def _mailable(runtime: Any, contact_id: str, list_id: str) -> Contact:
    contact = current_contacts(runtime.reader, [contact_id]).get(contact_id)
    if contact is None:
        raise OdnosError(f"There is no contact {contact_id}; add it first (POST /api/v1/contacts).",
                         code="unknown_contact", status=404)
    with runtime.control.session() as session:
        why = why_not_mailable(session, runtime.keys, contact, list_id)
    if why is not None:
        raise OdnosError(f"{contact.email} may not be mailed ({why}); the mailer would skip them.",
                         code="not_mailable", status=409)
    return contact


# -- sends a tool made ----------------------------------------------------------------------------

SENT_FIELDS = frozenset({"campaign", "sent_at", "site", "messages"})
SENT_ITEM_FIELDS = frozenset({"email", "contact_id", "message", "sent_at"})


@bp.post("/tracking/sent")
@require("send")
def tracking_sent() -> Any:
    """Record sends: ``{"campaign", "sent_at"?, "site"?, "messages": [{"email" | "contact_id",
    "message"?, "sent_at"?}]}``, one ``email_sent`` event each (through the spool, like beacons)."""
    body = text_only(json_object())
    no_unknown_fields(body, SENT_FIELDS)
    campaign = _pattern(body, "campaign", CAMPAIGN_NAME, "", required=True)
    now = time.time()
    default_sent = _sent_at(body, "", now, future=MAX_FUTURE)
    site_id = field(body, "site", str, default="")
    items = field(body, "messages", list, required=True)
    _count(items, "messages")
    rows = []
    for where, item in objects_of(items, "messages", SENT_ITEM_FIELDS):
        contact_id = contact_of(item, where)
        message_id = message_id_of(item, where, campaign)
        sent = _sent_at(item, where, default_sent, future=MAX_FUTURE)
        rows.append(event_row("email_sent", sent, {"via": "api"}, received_at=int(now), source="api",
                              contact_id=contact_id, message_id=message_id, campaign_id=str(campaign),
                              site_id=site_id))
    submit(rows)
    return jsonify(recorded=len(rows)), 202
