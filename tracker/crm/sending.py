"""Send one template to a batch of contacts for one owner and trigger, by the send ledger's protocol.

Contacts go in claims of ``CLAIM`` (``tracker/control/models.py`` ``SendLedger`` has the protocol):

1. One committed transaction claims the whole claim: a contact who may not be mailed
   (``why_not_mailable_all``: not subscribed, suppressed, erased) gets a ``skipped`` row saying why; the
   others get a ``pending`` row, inserted before anything of theirs leaves. A contact that already
   has a row for this owner and trigger is left alone, so a batch run twice, or resumed after a
   crash, mails nobody twice. The one exception is a row ``failed`` with a ``deferred:`` error (the
   message certainly did not leave, for a reason that may pass; a campaign's audience waits in
   such rows too): it is claimed back with a conditional UPDATE, to ``pending``, or to ``skipped``
   when the contact may no longer be mailed.
2. Each message is composed (message id ``<owner>.<ledger row id>``, so ``campaign_of`` gives the
   owner) and handed to SMTP, one after the other. In a large batch the claim's messages are
   composed in worker processes (``mailer/pool.py``), which only compose: rows, SMTP and events
   stay here.
3. When the claim's last message is answered, its outcomes are written in one transaction: ``sent``,
   ``failed`` (``permanent: ...``; a hard bounce is reported through ``on_bounce`` and in the result,
   for the contacts module to record), ``failed`` with ``deferred: ...``, or ``pending`` with
   ``unknown: ...`` when the connection died after the message was written: it may have been
   delivered, so it is never retried on its own.

So two commits serve ``CLAIM`` messages instead of two per message. A process killed between 1 and
3 leaves ``pending`` rows: those contacts may have been mailed and are not mailed again (at most
once). Messages are composed while the previous one is on the wire, so the next claim is taken
while the last messages of the one before are still being sent: a kill leaves at most
``MAX_PENDING`` (two claims) such rows. Ctrl+C (``KeyboardInterrupt`` in the caller's thread, or the
``stop`` event a command's signal handler sets) stops between messages: the message on the wire is
finished and recorded, the claimed ones that did not leave are marked deferred (the next run mails
them), and the batch returns ``interrupted``. A compose worker that dies (killed, out of memory) stops
the batch the same way, then raises ``ComposeWorkerDied`` (an ``OdnosError`` saying so, and how many
messages it deferred).

An ``email_sent`` event per sent message goes to the event store in chunks, so campaign reports
have their denominators. When the SMTP server cannot be reached at all the batch stops; the
messages already claimed are marked deferred, and contacts not reached have no row: the next run
mails both.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from tracker.control.db import ControlPlane
from tracker.control.models import SendLedger, SendStatus, Template, utcnow
from tracker.crm.consent import why_not_mailable_all
from tracker.crm.contacts import set_status
from tracker.crm.mailer.compose import Composer, WireMessage
from tracker.crm.mailer.message import sender_address
from tracker.crm.mailer.pool import ComposeWorkerDied, shared_pool, usable
from tracker.crm.mailer.render import CompiledTemplate, TemplateError
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
CLAIM = 10  # contacts claimed in one transaction; their outcomes are written in one more
# Composed messages waiting for the SMTP thread at most: enough to keep it busy through a commit's
# fsync, and no more than CLAIM, so that a new claim is only taken once the one before the last is
# written (MAX_PENDING).
PIPELINE = CLAIM
MAX_PENDING = 2 * CLAIM  # pending rows a kill can leave: the claim being sent and the next one
DEFERRED_STOP = 3
"""A batch that ends with this many messages deferred (4xx after the retries) and none accepted: the
SMTP server refuses for now, so callers (rules, campaigns) stop their run and try again later."""
INTERRUPTED = "interrupted (Ctrl+C) before it was sent"


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
    interrupted: bool = False  # by Ctrl+C (KeyboardInterrupt): what was claimed and not sent is deferred
    events_lost: int = 0  # email_sent events the store did not take (logged)


def mark_bounced(runtime: Runtime) -> Callable[[Contact, Delivery], None]:
    """An ``on_bounce`` for ``send_batch`` that marks the contact bounced, so nothing mails it again."""
    def record(contact: Contact, delivery: Delivery) -> None:
        # The failed ledger row already keeps the bounce; a store that cannot take the contact's new
        # state now must not stop the batch (the next bounce of the address records it).
        try:
            set_status(runtime.store, runtime.control, runtime.keys, contact.email, "bounced", how="mailer")
        except OdnosError as exc:
            log.error("%s bounced (%s) but could not be marked bounced: %s", contact.email, delivery.detail,
                      exc.message)
            return
        log.warning("%s bounced (%s): marked bounced", contact.email, delivery.detail)

    return record


def send_batch(runtime: Runtime, owner: Owner, trigger_key: str, template: Template,
               contacts: Iterable[Contact], *, smtp: SmtpSender | None = None,
               on_bounce: Callable[[Contact, Delivery], None] | None = None, site_id: str = "",
               list_id: str = "", stop: threading.Event | None = None, send_size: int = 0) -> BatchResult:
    """Mail ``template`` to each of ``contacts`` at most once for (``owner``, ``trigger_key``).

    ``smtp`` defaults to a sender on ``ODNOS_SMTP_URL`` (closed at the end; one passed in is left
    open); ``on_bounce(contact, delivery)`` is called (from the sending thread) for each hard bounce;
    ``site_id`` ties the sends to a site's reports and scopes ``recommended()``; ``list_id`` is the
    list the unsubscribe link leaves ('' = everything). A template that cannot be compiled raises
    ``TemplateError`` before anything is written or sent. ``stop``, once set (a command's Ctrl+C
    handler sets it), ends the batch between two messages as a ``KeyboardInterrupt`` would.
    ``send_size`` is how many messages are left of the send this batch is a part of (a campaign is
    sent a chunk at a time): a large send is composed in worker processes, even in small batches. A
    worker that dies stops the batch as Ctrl+C would, then raises ``ComposeWorkerDied``.

    While one message is on the wire the next is composed (a sending thread, ``PIPELINE`` messages
    ahead at most; in ``ODNOS_MAIL_WORKERS`` processes when the batch is large): each still has its
    own committed ``pending`` row before it is handed over.
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
    stop = stop or threading.Event()
    delivering = _Delivering(runtime, ledger, result, smtp or SmtpSender(settings.smtp_url),
                             sender_address(settings.mail_from), on_bounce, stop,
                             {"template": str(template.id), "trigger": trigger_key},
                             {"campaign_id": owner.prefix, "site_id": site_id})
    workers = settings.mail_workers or os.cpu_count() or 1
    pool = shared_pool(workers) if usable(compiled, max(len(people), send_size), workers) else None
    delivering.start()
    claimed: list[tuple[int, Contact]] = []  # this claim's rows not yet handed over
    reached = 0  # people[:reached] were claimed
    died: ComposeWorkerDied | None = None
    try:
        for start in range(0, len(people), CLAIM):
            if delivering.stopped:
                result.not_attempted = [c.contact_id for c in people[start:]]
                break
            if stop.is_set():
                raise KeyboardInterrupt  # handled as Ctrl+C, below
            claim = people[start:start + CLAIM]
            reached = start + len(claim)
            for contact, got in zip(claim, ledger.claim(claim), strict=True):
                if isinstance(got, str):
                    result.skipped[contact.contact_id] = got
                elif got is None:
                    result.already.append(contact.contact_id)
                else:
                    claimed.append((got, contact))
            # In workers the whole claim is composed at once; here, one message at a time
            composing = pool.compose(composer, compiled, [(c, f"{owner.prefix}.{r}") for r, c in claimed]) \
                if pool is not None else None
            while claimed:
                if stop.is_set():
                    raise KeyboardInterrupt
                row_id, contact = claimed[0]
                if composing is not None:
                    composed: _Composed = next(composing)
                else:
                    composed = _compose_here(composer, compiled, contact, f"{owner.prefix}.{row_id}")
                claimed.pop(0)  # before it is queued: a row interrupted in between stays pending (safe)
                delivering.hand_over(row_id, contact, composed)
            delivering.end_claim()
    except ComposeWorkerDied as exc:  # as Ctrl+C, then said as the error it is once the rows are written
        delivering.interrupt(claimed, exc.message)
        died = exc
    except KeyboardInterrupt:
        delivering.interrupt(claimed, INTERRUPTED)
        result.stopped = INTERRUPTED
        result.interrupted = True
        result.not_attempted = [c.contact_id for c in people[reached:]]
    except BaseException as exc:  # the composer failed: the claimed rows not sent are deferred
        delivering.interrupt(claimed, f"not sent: the batch stopped on {exc!r}")
        raise
    finally:
        delivering.finish()
        if own_smtp:
            delivering.smtp.close()
    if died is not None:
        deferred = sum(why == died.message for why in result.deferred.values())
        held = "1 message it held up is" if deferred == 1 else f"{deferred} messages it held up are"
        raise ComposeWorkerDied(
            f"{died.message}; the send stopped there: the {held} deferred, and the next send (the same "
            "command again) mails them and the rest, nobody twice; if workers keep stopping, set "
            "ODNOS_MAIL_WORKERS=1 to compose in the sending process")
    return result


_END_CLAIM = object()  # queued after a claim's last message: write the claim's outcomes
_Composed = WireMessage | TemplateError | None  # None: claimed but not composed (interrupted)


def _compose_here(composer: Composer, compiled: CompiledTemplate, contact: Contact,
                  message_id: str) -> WireMessage | TemplateError:
    try:
        return composer.compose(compiled, contact, message_id).wire()
    except TemplateError as exc:
        return exc


class _Delivering(threading.Thread):
    """Sends the composed messages and records their outcomes, while the caller composes the next."""

    def __init__(self, runtime: Runtime, ledger: _Ledger, result: BatchResult, smtp: SmtpSender,
                 envelope_from: str, on_bounce: Callable[[Contact, Delivery], None] | None,
                 stop: threading.Event, props: dict[str, str], fields: dict[str, str]) -> None:
        super().__init__(name="odnos-mailer-smtp", daemon=True)
        self.runtime = runtime
        self.ledger = ledger
        self.result = result
        self.smtp = smtp
        self.envelope_from = envelope_from
        self.on_bounce = on_bounce
        self.stop = stop
        self.props = props
        self.fields = fields
        self.stopped = False  # the server cannot be reached, or this thread failed
        self.interrupted = ""  # why nothing more is sent (Ctrl+C), '' while sending
        self.error: BaseException | None = None
        self.events: list[dict] = []
        self.outcomes: list[dict] = []  # the current claim's, written at its end
        self._queue: queue.Queue = queue.Queue(maxsize=PIPELINE)

    def hand_over(self, row_id: int, contact: Contact, composed: _Composed) -> None:
        """Queue one claimed row; ``composed`` None means: not sent (interrupted), record it deferred."""
        self._queue.put((row_id, contact, composed))

    def end_claim(self) -> None:
        self._queue.put(_END_CLAIM)

    def interrupt(self, claimed: list[tuple[int, Contact]], why: str) -> None:
        """Stop after the message on the wire; the claimed rows not sent are recorded deferred."""
        self.interrupted = why
        for row_id, contact in claimed:
            self.hand_over(row_id, contact, None)
        self.end_claim()

    def finish(self) -> None:
        """Wait until every handed-over message is sent and recorded; re-raise this thread's error."""
        self._queue.put(None)
        self.join()
        self._write_outcomes()
        self.result.events_lost += _write_events(self.runtime, self.events)
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                if item is _END_CLAIM:
                    self._write_outcomes()
                else:
                    self._deliver(*item)
            except BaseException as exc:  # handed to the caller by finish()
                if self.error is None:
                    self.error = exc
                    self.result.stopped = self.result.stopped or f"sending failed: {exc!r}"
                self.stopped = True

    def _write_outcomes(self) -> None:
        if self.outcomes:
            self.ledger.finish(self.outcomes)
            self.outcomes = []

    def _outcome(self, row_id: int, status: SendStatus, error: str | None = None,
                 smtp_message_id: str | None = None) -> None:
        self.outcomes.append({"row_id": row_id, "new_status": status, "new_error": error,
                              "new_sent_at": utcnow() if status is SendStatus.sent else None,
                              "new_smtp_message_id": smtp_message_id})

    def _deliver(self, row_id: int, contact: Contact, composed: _Composed) -> None:
        cid = contact.contact_id
        if isinstance(composed, TemplateError):
            self._outcome(row_id, SendStatus.failed, PERMANENT + composed.message)
            self.result.failed[cid] = composed.message
            return
        if composed is None or self.interrupted or self.stop.is_set():  # certainly not sent
            why = self.interrupted or INTERRUPTED
            self._outcome(row_id, SendStatus.failed, DEFERRED + why)
            self.result.deferred[cid] = why
            return
        if self.stopped:  # claimed before the server was found down: certainly not sent
            self._outcome(row_id, SendStatus.failed, DEFERRED + self.result.stopped)
            self.result.deferred[cid] = self.result.stopped
            return
        delivery = self.smtp.send(composed.data, sender=self.envelope_from, recipient=contact.email)
        self._record(row_id, contact, delivery, composed.message_id_header)
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

    def _record(self, row_id: int, contact: Contact, delivery: Delivery, smtp_message_id: str) -> None:
        cid, result = contact.contact_id, self.result
        if delivery.outcome is Outcome.sent:
            self._outcome(row_id, SendStatus.sent, smtp_message_id=smtp_message_id)
            result.sent.append(cid)
        elif delivery.outcome is Outcome.failed:
            self._outcome(row_id, SendStatus.failed, PERMANENT + delivery.detail)
            result.failed[cid] = delivery.detail
            if delivery.bounced:
                result.bounced.append(cid)
        elif delivery.outcome is Outcome.deferred:
            self._outcome(row_id, SendStatus.failed, DEFERRED + delivery.detail)
            result.deferred[cid] = delivery.detail
        else:
            self._outcome(row_id, SendStatus.pending, UNKNOWN + delivery.detail)
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


def ledger_insert(control: ControlPlane) -> Callable[..., Insert]:
    """The dialect's INSERT, which has ``on_conflict_do_nothing`` (SQLite and PostgreSQL both do)."""
    return postgresql.insert if control.dialect == "postgresql" else sqlite.insert


_LEDGER = SendLedger.__table__
_FINISH = update(_LEDGER).where(_LEDGER.c.id == bindparam("row_id")).values(
    status=bindparam("new_status"), error=bindparam("new_error"), sent_at=bindparam("new_sent_at"),
    smtp_message_id=bindparam("new_smtp_message_id"))


class _Ledger:
    """The ledger rows of one (owner, trigger): a claim, then its outcomes, each one committed transaction.

    Both threads of a batch write here; a lock takes their turns in this process, because two
    SQLite connections contending for the write lock wait in the driver's sleeping busy handler.
    """

    def __init__(self, runtime: Runtime, owner: Owner, trigger_key: str, list_id: str) -> None:
        self._turn = threading.Lock()
        self._control = runtime.control
        self._keys = runtime.keys
        self._owner = owner.columns()
        self._trigger = trigger_key
        self._list = list_id

    def claim(self, contacts: list[Contact]) -> list[int | str | None]:
        """Check each of ``contacts`` and write its row, all in one committed transaction.

        For each contact, in order: the id of a ``pending`` row this batch now owns; the reason,
        when the contact may not be mailed (its row says ``skipped``); None when the contact
        already has a row that is not to be retried.
        """
        insert = ledger_insert(self._control)
        owner_column, owner_id = next(iter(self._owner.items()))
        with self._turn, self._control.sessions.begin() as session:
            reasons = why_not_mailable_all(session, self._keys, contacts, self._list)
            now = utcnow()
            rows = [{"contact_id": contact.contact_id, "trigger_key": self._trigger, "created_at": now,
                     "status": SendStatus.pending if reason is None else SendStatus.skipped, "error": reason,
                     **self._owner} for contact, reason in zip(contacts, reasons, strict=True)]
            inserted = dict(session.execute(insert(SendLedger).values(rows).on_conflict_do_nothing()
                                            .returning(SendLedger.contact_id, SendLedger.id)).all())
            others = [c.contact_id for c in contacts if c.contact_id not in inserted]
            existing = {row.contact_id: row for row in session.execute(
                select(SendLedger.id, SendLedger.contact_id, SendLedger.status, SendLedger.error).where(
                    getattr(SendLedger, owner_column) == owner_id, SendLedger.trigger_key == self._trigger,
                    SendLedger.contact_id.in_(others)))} if others else {}
            claims: list[int | str | None] = []
            for contact, reason in zip(contacts, reasons, strict=True):
                row_id = inserted.get(contact.contact_id)
                if row_id is None:
                    row_id = _claim_back(session, existing.get(contact.contact_id), reason)
                claims.append(None if row_id is None else row_id if reason is None else reason)
            return claims

    def finish(self, outcomes: list[dict]) -> None:
        """Write the outcomes of one claim's messages (``_Delivering._outcome`` dicts)."""
        with self._turn, self._control.sessions.begin() as session:
            session.connection().execute(_FINISH, outcomes)


def _claim_back(session: Session, found: Row | None, reason: str | None) -> int | None:
    """Take back a row whose message was deferred (certainly not sent): its id, or None."""
    retryable = found is not None and found.status == SendStatus.failed and \
        (found.error or "").startswith(DEFERRED)
    if not retryable:
        return None
    claimed = session.execute(update(SendLedger).where(
        SendLedger.id == found.id, SendLedger.status == SendStatus.failed, SendLedger.error == found.error)
        .values(status=SendStatus.pending if reason is None else SendStatus.skipped, error=reason))
    return found.id if claimed.rowcount == 1 else None
