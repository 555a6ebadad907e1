"""One-off campaigns: one template to a segment's members or a tag's contacts, each mailed at most once.

A campaign is found by name, or made (``Campaign``, status ``draft``). Its audience is read once,
at the start, in contact id order, and written to the send ledger as rows ``failed`` with the
error ``deferred: queued ...``: rows of messages that certainly have not left, which is exactly
what ``send_batch`` claims back and sends. The campaign then becomes ``sending``; its queued rows
are sent in ledger (id) order, ``CHUNK`` contacts per ``send_batch``, each contact read afresh from
the store and checked again just before its message (an unsubscribe is effective at once). When no
queued or deferred row is left the campaign is ``sent``.

So a second send of a campaign mails nobody twice, and a send stopped half way (Ctrl+C, a
``kill -9``, an SMTP server gone) leaves the rest queued in the ledger: running it again reaches
exactly the audience it had at its start, whatever the segment says now. Only a campaign already
``sent`` (or still a ``draft``) reads its segment or tag again, and adds the contacts that have no
ledger row yet. A killed send leaves at most ``sending.MAX_PENDING`` rows ``pending``: those
contacts may have been mailed and are never mailed again (at most once).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select, update

from tracker.control.models import Campaign, CampaignStatus, SendLedger, SendStatus, Template, utcnow
from tracker.control.sites import get_site
from tracker.crm.mailer.smtp import SmtpSender
from tracker.crm.segments import get_segment, segment_members, segment_size
from tracker.crm.sending import (
    DEFERRED,
    DEFERRED_STOP,
    BatchResult,
    Owner,
    ledger_insert,
    mark_bounced,
    send_batch,
)
from tracker.crm.templates import get_template
from tracker.errors import NotFound, OdnosError
from tracker.queries.contacts.current_contacts import current_contacts
from tracker.runtime import Runtime

TRIGGER = "once"  # a campaign mails each contact once: one trigger key for all its rows
QUEUED = DEFERRED + "queued: not sent yet"
GONE = "no longer a contact (erased or deleted)"
CHUNK = 100  # contacts per send_batch: progress, and SMTP trouble noticed, after this many at most
PAGE = 1000  # segment members read per query
ROWS = 500  # ledger rows per INSERT


@dataclass(frozen=True)
class Audience:
    """Who a campaign is for: a segment definition (a tag is one too) and how to name it."""

    definition: dict[str, Any]
    label: str


@dataclass
class CampaignReport:
    """What one ``send_campaign`` did."""

    campaign_id: int
    name: str
    audience: str
    note: str = ""
    to_mail: int = 0  # queued or deferred rows at the start of the sending
    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # not mailable: why -> how many
    already: int = 0  # had a ledger row before this send: not mailed again
    failed: Counter[str] = field(default_factory=Counter)  # refused for good: reply -> how many
    deferred: int = 0  # not sent, retried by the next send (4xx, the server down, Ctrl+C)
    unknown: int = 0  # may have left (the connection died before the answer): never retried
    stopped: str = ""
    interrupted: bool = False
    status: CampaignStatus = CampaignStatus.draft

    def add(self, result: BatchResult) -> None:
        self.sent += len(result.sent)
        self.skipped.update(result.skipped.values())
        self.already += len(result.already)
        self.failed.update(result.failed.values())
        self.deferred += len(result.deferred)
        self.unknown += len(result.unknown)


def audience_of(runtime: Runtime, *, segment: str | None = None, tag: str | None = None) -> Audience:
    """The audience of ``--segment`` or ``--tag`` (exactly one); NotFound for an unknown one."""
    if (segment is None) == (tag is None):
        raise OdnosError("give the audience as one of --segment NAME or --tag TAG", code="bad_audience")
    if segment is not None:
        with runtime.control.sessions() as session:
            found = get_segment(session, segment)
        return Audience(found.definition, f"segment {found.name!r}")
    definition = {"all": [{"type": "tag", "tag": tag}]}
    if segment_size(runtime.store, definition) == 0:
        raise NotFound(f"no contact has the tag {tag!r}; `odnos contacts import FILE.csv --tag {tag}` tags "
                       "the contacts of a file", code="unknown_tag")
    return Audience(definition, f"tag {tag!r}")


def send_campaign(runtime: Runtime, template: str, audience: Audience, *, name: str | None = None,
                  site: str | None = None, smtp: SmtpSender | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  stop: threading.Event | None = None) -> CampaignReport:
    """Send the campaign ``name`` (default: the template's name) of ``template`` to ``audience``.

    ``progress(done, to_mail)`` is called after each chunk. Ctrl+C (``KeyboardInterrupt``, or
    ``stop`` set) stops between messages and returns the report with ``interrupted`` set; the next
    send of the same name continues.
    """
    saved = get_template(runtime.control, template)
    sender = smtp or SmtpSender(runtime.settings.smtp_url)  # a bad ODNOS_SMTP_URL stops before any write
    try:
        return _send_campaign(runtime, saved, audience, name or saved.name, site, sender, progress,
                              stop or threading.Event())
    finally:
        if smtp is None:
            sender.close()


def _send_campaign(runtime: Runtime, saved: Template, audience: Audience, name: str, site: str | None,
                   sender: SmtpSender, progress: Callable[[int, int], None] | None,
                   stop: threading.Event) -> CampaignReport:
    campaign = _campaign(runtime, name, saved, site)
    report = CampaignReport(campaign.id, campaign.name, audience.label, status=campaign.status)
    if campaign.status is CampaignStatus.sending:
        report.note = ("resuming a send that did not finish: the contacts of its audience not mailed yet, "
                       "the audience as it was at its start")
    else:
        members, queued = _queue(runtime, campaign.id, audience.definition)
        report.already = members - queued
        if campaign.status is CampaignStatus.sent:
            report.note = f"campaign already sent on {campaign.sent_at:%Y-%m-%d %H:%M} UTC: " + (
                f"mailing only the {queued:,} contacts of the {audience.label} without a ledger row" if queued
                else f"every contact of the {audience.label} has a ledger row, nobody is mailed again")
        _set_status(runtime, campaign.id, CampaignStatus.sending)
    report.to_mail = _left(runtime, campaign.id)
    try:
        _send(runtime, campaign, saved, report, sender, progress, stop)
    except KeyboardInterrupt:  # between two chunks: nothing claimed, the ledger is as it was
        report.interrupted, report.stopped = True, "interrupted (Ctrl+C)"
    if not report.stopped and _left(runtime, campaign.id) == 0:
        _set_status(runtime, campaign.id, CampaignStatus.sent)
        report.status = CampaignStatus.sent
    else:
        report.status = CampaignStatus.sending
    return report


def _campaign(runtime: Runtime, name: str, template: Template, site: str | None) -> Campaign:
    """The newest campaign called ``name``, or a new draft; it must use ``template`` (and ``site``)."""
    with runtime.control.session() as session:
        site_id = get_site(session, site).id if site else None
        found = session.scalars(select(Campaign).where(Campaign.name == name).order_by(Campaign.id.desc())
                                .limit(1)).first()
        if found is None:
            found = Campaign(name=name, site_id=site_id, subject=template.subject, template_id=template.id)
            session.add(found)
            session.flush()
        elif found.template_id != template.id:
            raise OdnosError(f"campaign {name!r} (id {found.id}) sends another template (id "
                             f"{found.template_id}); give this send its own --name", code="campaign_template")
        elif site_id is not None and found.site_id != site_id:
            raise OdnosError(f"campaign {name!r} (id {found.id}) belongs to site {found.site_id or '(none)'}"
                             "; leave out --site, or give this send its own --name", code="campaign_site")
        session.expunge(found)
        return found


def _queue(runtime: Runtime, campaign_id: int, definition: dict[str, Any]) -> tuple[int, int]:
    """Queue the audience's contacts that have no row yet, in contact id order: (members, newly queued)."""
    ids: list[str] = []
    while page := segment_members(runtime.store, definition, after_contact_id=ids[-1] if ids else "",
                                  limit=PAGE):
        ids.extend(c.contact_id for c in page)
    insert = ledger_insert(runtime.control)
    queued, now = 0, utcnow()
    for start in range(0, len(ids), ROWS):
        rows = [{"campaign_id": campaign_id, "contact_id": cid, "trigger_key": TRIGGER,
                 "status": SendStatus.failed, "error": QUEUED, "created_at": now}
                for cid in ids[start:start + ROWS]]
        with runtime.control.session() as session:
            queued += len(session.execute(insert(SendLedger).values(rows).on_conflict_do_nothing()
                                          .returning(SendLedger.id)).all())
    return len(ids), queued


def _waiting(campaign_id: int) -> tuple[ColumnElement[bool], ...]:
    """The campaign's rows whose message certainly has not left: queued, or deferred."""
    return (SendLedger.campaign_id == campaign_id, SendLedger.trigger_key == TRIGGER,
            SendLedger.status == SendStatus.failed, SendLedger.error.startswith(DEFERRED))


def _left(runtime: Runtime, campaign_id: int) -> int:
    with runtime.control.sessions() as session:
        return session.scalar(select(func.count()).select_from(SendLedger).where(*_waiting(campaign_id))) or 0


def _send(runtime: Runtime, campaign: Campaign, template: Template, report: CampaignReport,
          sender: SmtpSender, progress: Callable[[int, int], None] | None, stop: threading.Event) -> None:
    """Send the waiting rows in ledger order, a chunk at a time, until none is left or sending stops."""
    owner, after, done = Owner.campaign(campaign.id), 0, 0
    while True:
        if stop.is_set():
            raise KeyboardInterrupt  # between two chunks: handled by the caller
        with runtime.control.sessions() as session:
            page = session.execute(select(SendLedger.id, SendLedger.contact_id).where(
                *_waiting(campaign.id), SendLedger.id > after).order_by(SendLedger.id).limit(CHUNK)).all()
        if not page:
            return
        after = page[-1].id
        found = current_contacts(runtime.store, [row.contact_id for row in page])
        gone = [row.id for row in page if row.contact_id not in found]
        if gone:
            _skip_gone(runtime, gone)
            report.skipped[GONE] += len(gone)
        result = send_batch(runtime, owner, TRIGGER, template,
                            [found[row.contact_id] for row in page if row.contact_id in found],
                            smtp=sender, on_bounce=mark_bounced(runtime), site_id=campaign.site_id or "",
                            stop=stop, send_size=report.to_mail - done)
        report.add(result)
        done += len(page)
        if progress is not None:
            progress(done, report.to_mail)
        if result.stopped:
            report.stopped, report.interrupted = result.stopped, result.interrupted
            return
        if len(result.deferred) >= DEFERRED_STOP and not result.sent:
            report.stopped = (f"{len(result.deferred)} messages in a row deferred by the SMTP server: "
                              f"{next(iter(result.deferred.values()))}")
            return


def _skip_gone(runtime: Runtime, row_ids: list[int]) -> None:
    with runtime.control.session() as session:
        session.execute(update(SendLedger).where(
            SendLedger.id.in_(row_ids), SendLedger.status == SendStatus.failed,
            SendLedger.error.startswith(DEFERRED))
            .values(status=SendStatus.skipped, error=GONE))


def _set_status(runtime: Runtime, campaign_id: int, status: CampaignStatus) -> None:
    with runtime.control.session() as session:
        campaign = session.get(Campaign, campaign_id)
        campaign.status = status
        if status is CampaignStatus.sent and campaign.sent_at is None:
            campaign.sent_at = utcnow()
