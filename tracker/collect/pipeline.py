"""Turn every kind of hit into complete ``events`` rows, through one enrichment, and queue them.

Beacon events, open pixels, tracked links and unsubscribes differ only in how they are parsed and
answered; here they meet the same steps: site and host checks, device and bot detection (cached by
user agent), referrer source and UTM, country (the IP is used, never stored), visitor and session,
identity (the ``_odn`` hand-off, a verified ``identify``), and the machine verdicts for email.
Refusals are ``OdnosError``s with a 4xx status; nothing is queued unless every event of a request
passed, and once queued nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tracker.collect.clients import Client
from tracker.collect.sites import BackgroundReload, SiteCache, SiteView
from tracker.contacts import contact_id_for, normalize_email
from tracker.control.consent import EventDelayed, hand_over, suppress
from tracker.control.db import ControlPlane
from tracker.control.salts import salt_for
from tracker.enrich.bots import BotReason
from tracker.enrich.device import Device, parse_device
from tracker.enrich.email_machines import REVISION_EVENT, BurstDetector, classify_click, classify_open
from tracker.enrich.geo import country_of
from tracker.enrich.networks import network_of
from tracker.enrich.referrer import classify_referrer, split_url, utm_params
from tracker.enrich.sessions import SessionTracker
from tracker.enrich.visitor import VisitorIds
from tracker.errors import InvalidToken, OdnosError, StoreUnavailable
from tracker.events import event_row, new_event_id, typed_row
from tracker.ingest.queue import EventQueue
from tracker.tokens import TokenCodec, verify_identify

# A client clock this far off is not trusted; the server's time is used instead.
MAX_PAST = 24 * 3600
MAX_FUTURE = 300


@dataclass(frozen=True, slots=True)
class Redirect:
    location: str


class _DatabaseSalts:
    """The daily salts for cookieless ids, shared by every worker through the control database.

    Read by a ``BackgroundReload`` (one read at a time, retried every few seconds while the database
    is down), so a hit waits at most ``wait`` seconds for a salt; past that, ``StoreUnavailable``
    lets ``VisitorIds`` hash with the last salt it knows instead of refusing the hit.
    """

    def __init__(self, control: ControlPlane, wait: float = 1.0) -> None:
        self._control = control
        self._wait = wait
        self._wanted: set[dt.date] = set()
        self._read: dict[dt.date, bytes] = {}
        self._reads = BackgroundReload(self._read_wanted, "the daily salts")

    def _read_wanted(self) -> None:
        for day in sorted(self._wanted.copy()):  # copy(): one step, while hits may add days
            self._read[day] = salt_for(self._control.sessions, day)
            self._wanted.discard(day)

    def salt_for(self, day: dt.date) -> bytes:
        salt = self._read.pop(day, None)
        if salt is None:
            self._wanted.add(day)
            running = self._reads.request()
            if running is not None:
                running.join(self._wait)
            salt = self._read.pop(day, None)
        if salt is None:
            raise StoreUnavailable(f"the visitor salt of {day} cannot be read from the control database now")
        return salt


def campaign_of(message_id: str | int) -> str:
    """Message ids are ``<campaign>`` or ``<campaign>.<message>``; reports group by the campaign."""
    return str(message_id).split(".", 1)[0]


class Pipeline:
    def __init__(self, control: ControlPlane, codec: TokenCodec, queue: EventQueue, *,
                 sessions: SessionTracker, new_id: Callable[[], str] = new_event_id) -> None:
        self.bursts = BurstDetector()  # this pipeline's clicks only: two pipelines never share bursts
        self.sites = SiteCache(control)
        self.codec = codec
        self.queue = queue
        self.new_id = new_id  # event ids: random; the demo passes a seeded source
        self.visitors = VisitorIds(_DatabaseSalts(control))
        self.sessions = sessions  # shared by every process on the data folder: see enrich.sessions

    # -- beacons ------------------------------------------------------------------------------

    def beacon(self, events: list[dict[str, Any]], client: Client, now: float | None = None) -> int:
        """Validate and enrich every event, then queue them all; returns how many were accepted.

        ``now`` is when the request arrived (default: the clock); the demo replays history with it.
        """
        now = time.time() if now is None else now
        rows = [self._beacon_row(event, client, now) for event in events]
        self.queue.submit(rows)
        return len(rows)

    def site(self, site_id: str) -> SiteView:
        site = self.sites.get(site_id)
        if site is None:
            raise OdnosError(f"unknown site {site_id!r}; register it with `odnos site add`",
                             code="unknown_site")
        return site

    def _beacon_row(self, event: dict[str, Any], client: Client, now: float) -> dict[str, Any]:
        site = self.site(event["site"])
        url = event["url"]
        host, path = split_url(url)
        if not host:
            raise OdnosError("url must be an absolute http(s) URL of the page", code="bad_event")
        if not self.sites.allows(site, host):
            raise OdnosError(f"{host} is not a domain of site {site.id}; add it with `odnos site add`",
                             code="foreign_host", status=403)
        name = event["name"]
        ts = event.get("ts", 0) / 1000
        if not now - MAX_PAST <= ts <= now + MAX_FUTURE:
            ts = now
        device = parse_device(client.user_agent)
        is_bot, bot_reason = device.is_bot, device.bot_reason
        if not is_bot and network_of(client.ip):  # people do not browse from a datacentre
            is_bot, bot_reason = True, BotReason.DATACENTER
        utm = utm_params(url)
        referrer = classify_referrer(event.get("referrer", ""), host, site.domains, utm["utm_medium"])
        contact_id = ""
        if name == "identify":
            email, digest = event.get("email", ""), event.get("hash", "")
            if not (email and digest and verify_identify(site.identify_secret, email, digest)):
                raise OdnosError("identify needs the email and its HMAC computed with the site's identify "
                                 "secret on the site's server", code="bad_identify", status=403)
            contact_id = contact_id_for(email)
            # contacts_from_events (schemas/clickhouse/0006) makes the contact row from this address.
            event = {**event, "props": {**event.get("props", {}), "email": normalize_email(email)}}
        elif event.get("odn"):
            try:
                contact_id = self.codec.read_handoff(event["odn"])
            except InvalidToken:
                contact_id = ""  # a stale hand-off must not cost the pageview
        visitor, session = event.get("visitor", ""), event.get("session", "")
        if not visitor:
            candidates = self.visitors.candidates(site.id, client.ip, client.user_agent, ts)
            assigned = self.sessions.assign(site.id, candidates, ts)
            visitor, session = assigned.visitor_id, assigned.session_id
        elif not session:
            session = self.sessions.assign(site.id, (visitor,), ts).session_id
        # Every value is of its column's type already (the schema, then the enrichment): no re-check.
        return typed_row(name, ts, event.get("props"), self.new_id(), {
            "received_at": int(now), "source": "beacon", "site_id": site.id, "url": url, "hostname": host,
            "pathname": path, "visitor_id": visitor, "session_id": session, "contact_id": contact_id,
            "referrer": event.get("referrer", ""), "referrer_domain": referrer.domain,
            "referrer_source": referrer.source, **utm, **_device_fields(device),
            "country": country_of(client.ip), "engaged_ms": event.get("engaged_ms", 0),
            "scroll": event.get("scroll", 0), "is_bot": int(is_bot), "bot_reason": bot_reason})

    # -- email --------------------------------------------------------------------------------

    def _email_row(self, name: str, contact_id: str, message_id: str | int, client: Client,
                   verdict: Any, now: float | None = None, **fields: Any) -> dict[str, Any]:
        now = time.time() if now is None else now
        device = parse_device(client.user_agent)
        device_fields = _device_fields(device)
        if verdict.proxy:  # read through a mail provider's image proxy: a person, device unknown
            device_fields = {**device_fields, "device": "other", "browser": "", "os": ""}
        return event_row(name, now, new_id=self.new_id, received_at=int(now), contact_id=contact_id,
                         message_id=str(message_id),
                         campaign_id=campaign_of(message_id), is_machine=int(verdict.is_machine),
                         machine_reason=verdict.reason, is_bot=int(device.is_bot),
                         bot_reason=device.bot_reason, country=country_of(client.ip), **device_fields,
                         **fields)

    def open(self, token: str, client: Client, now: float | None = None) -> None:
        """Record an open of the message the pixel token names, received at ``now`` (default: the clock).

        The token's age is checked by the codec's own clock.
        """
        now = time.time() if now is None else now
        opened = self.codec.read_open(token)
        verdict = classify_open(client.user_agent, client.method, opened.sent_at, now, ip=client.ip)
        self.queue.submit([self._email_row("email_open", opened.contact_id, opened.message_id, client,
                                           verdict, now, source="pixel")])

    def click(self, token: str, client: Client, now: float | None = None) -> Redirect:
        """Record a click and return where to send the browser (the token's target, plus the hand-off).

        ``now`` as for ``open``.
        """
        now = time.time() if now is None else now
        clicked = self.codec.read_click(token)
        verdict = classify_click(client.user_agent, client.method, clicked.sent_at, now,
                                 str(clicked.message_id), str(clicked.link_id), clicked.contact_id,
                                 ip=client.ip, bursts=self.bursts)
        host, _ = split_url(clicked.target)
        site = self.sites.site_for_host(host)
        rows = [self._email_row(
            "email_click", clicked.contact_id, clicked.message_id, client, verdict, now, source="link",
            link_id=str(clicked.link_id), target_url=clicked.target, site_id=site.id if site else "")]
        if verdict.revision_window:  # a later verdict: the contact's events of the message around now
            rows.append(event_row(
                REVISION_EVENT, now, {"window_ms": str(round(verdict.revision_window * 1000))},
                new_id=self.new_id, received_at=int(now), source="link", contact_id=clicked.contact_id,
                message_id=str(clicked.message_id), campaign_id=campaign_of(clicked.message_id),
                link_id=str(clicked.link_id), is_machine=1, machine_reason=verdict.reason))
        self.queue.submit(rows)
        location = clicked.target
        if site is not None and not verdict.is_machine:
            location = _with_param(location, "_odn", self.codec.handoff(clicked.contact_id))
        return Redirect(location)

    def unsubscribe(self, contact_id: str, list_id: str, client: Client, how: str,
                    now: float | None = None, *, sessions: sessionmaker[Session]) -> bool:
        """Record a change of consent: the suppression, then its ``unsubscribe`` event; False if the
        contact had left ``list_id`` already (nothing recorded again).

        The suppression (the mailer's authority) is committed with the event row kept in it, then the
        row is handed to the queue (``tracker.control.consent``). If that fails (a full spool), the
        suppression stands and ``EventDelayed`` says the event waits in the row for
        ``hand_over_pending``: delayed, not lost.
        """
        now = time.time() if now is None else now
        device = _device_fields(parse_device(client.user_agent))
        row = event_row("unsubscribe", now, {"list": list_id, "how": how}, new_id=self.new_id,
                        received_at=int(now), source="unsubscribe", contact_id=contact_id,
                        campaign_id=list_id, country=country_of(client.ip), **device)
        if not suppress(sessions, contact_id, list_id, how, row):
            return False
        try:
            hand_over(sessions, contact_id, list_id, self.queue.submit)
        except Exception as exc:
            raise EventDelayed(str(exc).strip()) from exc
        return True


def _device_fields(device: Device) -> dict[str, Any]:
    return {"browser": device.browser, "browser_version": device.browser_version, "os": device.os,
            "os_version": device.os_version, "device": device.device}


def _with_param(url: str, name: str, value: str) -> str:
    """Add a query parameter before the fragment, keeping the rest of the URL as it was."""
    base, hash_mark, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{name}={value}{hash_mark}{fragment}"
