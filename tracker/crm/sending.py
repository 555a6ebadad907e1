"""Send one template to a batch of contacts for one owner and trigger, by the send ledger's protocol.

For each contact, in order (``tracker/control/models.py`` ``SendLedger`` has the protocol):

1. A contact who may not be mailed (``why_not_mailable``: not subscribed, suppressed, erased) gets a
   ``skipped`` row saying why, and nothing else.
2. A ``pending`` row is inserted and committed on its own before anything leaves. A unique
   violation means this owner already handled this contact for this trigger: the contact is left
   alone, so a batch run twice, or resumed after a crash, mails nobody twice. The one exception is
   a row ``failed`` with a ``deferred:`` error (the message certainly did not leave, for a reason
   that may pass): it is claimed back with a conditional UPDATE and tried again.
3. The message is composed (message id ``<owner>.<ledger row id>``, so ``campaign_of`` gives the
   owner) and handed to SMTP.
4. The row becomes ``sent``, ``failed`` (``permanent: ...``; a hard bounce is reported through
   ``on_bounce`` and in the result, for the contacts module to record), ``failed`` with
   ``deferred: ...``, or stays ``pending`` with ``unknown: ...`` when the connection died after the
   message was written: it may have been delivered, so it is never retried on its own.

A process killed between 2 and 4 leaves a ``pending`` row: that contact may have been mailed and
is not mailed again (at most once). Messages are composed while the previous one is on the wire,
so a kill leaves at most ``PIPELINE + 2`` such rows (one on the wire, those queued, one being
composed). An ``email_sent`` event per sent message goes to the event store in chunks, so campaign
reports have their denominators. When the SMTP server cannot be reached at all the batch stops;
the messages already composed are marked deferred, and contacts not reached have no row: the next
run mails both.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from tracker.control.models import SendLedger, SendStatus, Template, utcnow
from tracker.crm.consent import why_not_mailable
from tracker.crm.mailer.compose import ComposedMessage, Composer
from tracker.crm.mailer.message import sender_address
from tracker.crm.mailer.render import TemplateError
from tracker.crm.mailer.smtp import Delivery, Outcome, SmtpSender
from tracker.crm.model import Contact
from tracker.crm.templates import compile_saved
from tracker.errors import ConfigError, OdnosError
from tracker.events import event_row
from tracker.runtime import Runtime

log = logging.getLogger(__name__)

DEFERRED = "deferred: "
PERMANENT = "permanent: "
UNKNOWN = "unknown: "
EVENT_CHUNK = 500
PIPELINE = 2  # composed messages waiting for the SMTP thread at most


@dataclass(frozen=True)
class Owner:
    """Whose send this is: a campaign or a rule. ``prefix`` starts its message ids (``7``, ``r3``)."""

    kind: Literal["campaign", "rule"]
    id: int

    @classmethod
    def campaign(cls, campaign_id: int) -> Owner:
        return cls("campaign", campaign_id)

    @classmethod
    def rule(cls, rule_id: int) -> Owner:
        return cls("rule", rule_id)

    @property
    def prefix(self) -> str:
        return str(self.id) if self.kind == "campaign" else f"r{self.id}"

    def columns(self) -> dict[str, int]:
        return {"campaign_id": self.id} if self.kind == "campaign" else {"rule_id": self.id}


@dataclass
class BatchResult:
    """What a batch did, contact ids by outcome (reasons and server replies beside them)."""

    sent: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # may not be mailed: why
    already: list[str] = field(default_factory=list)  # handled before for this trigger
    failed: dict[str, str] = field(default_factory=dict)  # refused for good, or the template failed
    deferred: dict[str, str] = field(default_factory=dict)  # not sent; retried by the next run
    unknown: list[str] = field(default_factory=list)  # may have left; never retried
    bounced: list[str] = field(default_factory=list)  # hard bounces among ``failed``
    not_attempted: list[str] = field(default_factory=list)  # after the batch stopped
    stopped: str = ""  # why the batch stopped early ('' if it did not)
    events_lost: int = 0  # email_sent events the store did not take (logged)


def send_batch(runtime: Runtime, owner: Owner, trigger_key: str, template: Template,
               contacts: Iterable[Contact], *, smtp: SmtpSender | None = None,
               on_bounce: Callable[[Contact, Delivery], None] | None = None, site_id: str = "",
               list_id: str = "") -> BatchResult:
    """Mail ``template`` to each of ``contacts`` at most once for (``owner``, ``trigger_key``).

    ``smtp`` defaults to a sender on ``ODNOS_SMTP_URL`` (closed at the end; one passed in is left
    open); ``on_bounce(contact, delivery)`` is called (from the sending thread) for each hard bounce;
    ``site_id`` ties the sends to a site's reports and scopes ``recommended()``; ``list_id`` is the
    list the unsubscribe link leaves ('' = everything). A template that cannot be compiled raises
    ``TemplateError`` before anything is written or sent.

    While one message is on the wire the next is composed (a sending thread, ``PIPELINE`` messages
    ahead at most): each still has its own committed ``pending`` row before it is handed over.
    """
    compiled = compile_saved(template)
    settings = runtime.settings
    if not settings.mail_from:
        raise ConfigError("ODNOS_MAIL_FROM is not set; set the From address, e.g. "
                          "ODNOS_MAIL_FROM='Shop <news@shop.example.com>'")
    people = list(contacts)
    composer = Composer.from_runtime(runtime, contact_ids=[c.contact_id for c in people], site_id=site_id,
                                     list_id=list_id)
    ledger = _Ledger(runtime, owner, trigger_key, list_id)
    result = BatchResult()
    own_smtp = smtp is None
    delivering = _Delivering(runtime, ledger, result, smtp or SmtpSender(settings.smtp_url),
                             sender_address(settings.mail_from), on_bounce,
                             {"template": str(template.id), "trigger": trigger_key},
                             {"campaign_id": owner.prefix, "site_id": site_id})
    delivering.start()
    try:
        for index, contact in enumerate(people):
            if delivering.stopped:
                result.not_attempted = [c.contact_id for c in people[index:]]
                break
            claim = ledger.claim(contact)
            if isinstance(claim, str):
                result.skipped[contact.contact_id] = claim
                continue
            if claim is None:
                result.already.append(contact.contact_id)
                continue
            message_id = f"{owner.prefix}.{claim}"
            try:
                composed: ComposedMessage | TemplateError = composer.compose(compiled, contact, message_id)
            except TemplateError as exc:
                composed = exc
            delivering.hand_over(claim, contact, composed)
    finally:
        delivering.finish()
        if own_smtp:
            delivering.smtp.close()
    return result


class _Delivering(threading.Thread):
    """Sends the composed messages and records each outcome, while the caller composes the next."""

    def __init__(self, runtime: Runtime, ledger: _Ledger, result: BatchResult, smtp: SmtpSender,
                 envelope_from: str, on_bounce: Callable[[Contact, Delivery], None] | None,
                 props: dict[str, str], fields: dict[str, str]) -> None:
        super().__init__(name="odnos-mailer-smtp", daemon=True)
        self.runtime = runtime
        self.ledger = ledger
        self.result = result
        self.smtp = smtp
        self.envelope_from = envelope_from
        self.on_bounce = on_bounce
        self.props = props
        self.fields = fields
        self.stopped = False  # the server cannot be reached, or this thread failed
        self.error: BaseException | None = None
        self.events: list[dict] = []
        self._queue: queue.Queue = queue.Queue(maxsize=PIPELINE)

    def hand_over(self, row_id: int, contact: Contact, composed: ComposedMessage | TemplateError) -> None:
        self._queue.put((row_id, contact, composed))

    def finish(self) -> None:
        """Wait until every handed-over message is sent and recorded; re-raise this thread's error."""
        self._queue.put(None)
        self.join()
        self.result.events_lost += _write_events(self.runtime, self.events)
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        while (item := self._queue.get()) is not None:
            row_id, contact, composed = item
            try:
                self._deliver(row_id, contact, composed)
            except BaseException as exc:  # handed to the caller by finish()
                if self.error is None:
                    self.error = exc
                    self.result.stopped = self.result.stopped or f"sending failed: {exc!r}"
                self.stopped = True

    def _deliver(self, row_id: int, contact: Contact, composed: ComposedMessage | TemplateError) -> None:
        cid = contact.contact_id
        if isinstance(composed, TemplateError):
            self.ledger.finish(row_id, SendStatus.failed, error=PERMANENT + composed.message)
            self.result.failed[cid] = composed.message
            return
        if self.stopped:  # claimed before the server was found down: certainly not sent
            self.ledger.finish(row_id, SendStatus.failed, error=DEFERRED + self.result.stopped)
            self.result.deferred[cid] = self.result.stopped
            return
        delivery = self.smtp.send(composed.email, sender=self.envelope_from, recipient=contact.email)
        _record(self.ledger, self.result, row_id, contact, delivery, composed.email["Message-ID"])
        if delivery.outcome is Outcome.sent:
            self.events.append(event_row("email_sent", time.time(), self.props, source="mailer",
                                         contact_id=cid, message_id=composed.message_id, **self.fields))
            if len(self.events) >= EVENT_CHUNK:
                self.result.events_lost += _write_events(self.runtime, self.events)
        elif delivery.bounced and self.on_bounce is not None:
            self.on_bounce(contact, delivery)
        if delivery.server_down:
            self.result.stopped = f"the SMTP server cannot be reached: {delivery.detail}"
            self.stopped = True


def _record(ledger: _Ledger, result: BatchResult, row_id: int, contact: Contact, delivery: Delivery,
            smtp_message_id: str) -> None:
    cid = contact.contact_id
    if delivery.outcome is Outcome.sent:
        ledger.finish(row_id, SendStatus.sent, smtp_message_id=smtp_message_id)
        result.sent.append(cid)
    elif delivery.outcome is Outcome.failed:
        ledger.finish(row_id, SendStatus.failed, error=PERMANENT + delivery.detail)
        result.failed[cid] = delivery.detail
        if delivery.bounced:
            result.bounced.append(cid)
    elif delivery.outcome is Outcome.deferred:
        ledger.finish(row_id, SendStatus.failed, error=DEFERRED + delivery.detail)
        result.deferred[cid] = delivery.detail
    else:
        ledger.finish(row_id, SendStatus.pending, error=UNKNOWN + delivery.detail)
        result.unknown.append(cid)


def _write_events(runtime: Runtime, events: list[dict]) -> int:
    """Insert and clear ``events``; the number lost if the store refused them (the mail is out)."""
    if not events:
        return 0
    try:
        runtime.store.insert("events", events)
        return 0
    except OdnosError as exc:
        log.error("%d email_sent events not written: %s", len(events), exc.message)
        return len(events)
    finally:
        events.clear()


class _Ledger:
    """The ledger rows of one (owner, trigger): each write its own committed transaction.

    Both threads of a batch write here; a lock takes their turns in this process, because two
    SQLite connections contending for the write lock wait in the driver's sleeping busy handler.
    """

    def __init__(self, runtime: Runtime, owner: Owner, trigger_key: str, list_id: str) -> None:
        self._turn = threading.Lock()
        self._sessions = runtime.control.sessions
        self._keys = runtime.keys
        self._owner = owner.columns()
        self._trigger = trigger_key
        self._list = list_id

    def claim(self, contact: Contact) -> int | str | None:
        """Check ``contact`` and write its row, in one committed transaction.

        Returns the id of a ``pending`` row this batch now owns; the reason, when the contact may
        not be mailed (a ``skipped`` row was written); None when the contact already has a row.
        """
        reason = None
        try:
            with self._turn, self._sessions.begin() as session:
                reason = why_not_mailable(session, self._keys, contact, self._list)
                status = SendStatus.pending if reason is None else SendStatus.skipped
                inserted = session.execute(insert(SendLedger).values(
                    contact_id=contact.contact_id, trigger_key=self._trigger, status=status, error=reason,
                    created_at=utcnow(), **self._owner))
                return inserted.inserted_primary_key[0] if reason is None else reason
        except IntegrityError:
            return None if reason is not None else self._claim_deferred(contact.contact_id)

    def _claim_deferred(self, contact_id: str) -> int | None:
        """Take back a row whose message was deferred (certainly not sent), or None."""
        with self._turn, self._sessions.begin() as session:
            owner_column, owner_id = next(iter(self._owner.items()))
            found = session.execute(select(SendLedger.id, SendLedger.status, SendLedger.error).where(
                getattr(SendLedger, owner_column) == owner_id, SendLedger.contact_id == contact_id,
                SendLedger.trigger_key == self._trigger)).first()
            retryable = found is not None and found.status == SendStatus.failed and \
                (found.error or "").startswith(DEFERRED)
            if not retryable:
                return None
            claimed = session.execute(update(SendLedger).where(
                SendLedger.id == found.id, SendLedger.status == SendStatus.failed,
                SendLedger.error == found.error).values(status=SendStatus.pending, error=None))
            return found.id if claimed.rowcount == 1 else None

    def finish(self, row_id: int, status: SendStatus, *, error: str | None = None,
               smtp_message_id: str | None = None) -> None:
        with self._turn, self._sessions.begin() as session:
            values: dict = {"status": status, "error": error}
            if status is SendStatus.sent:
                values.update(sent_at=utcnow(), smtp_message_id=smtp_message_id)
            session.execute(update(SendLedger).where(SendLedger.id == row_id).values(**values))
