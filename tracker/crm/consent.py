"""Consent: who may be mailed, the history of changes, and the keyed hashes of erased addresses.

Where consent lives (one rule each):

- the control database's ``suppressions`` is the authority the mailer obeys: the unsubscribe page
  writes it at once, every change to a non-subscribed state made here writes it too, and an
  erased address leaves only ``HMAC(signing key, address)`` in it (``how = 'erased'``);
- the contact row's ``status`` and the collector's ``unsubscribe`` events give the state segments
  and profiles show (see tracker.queries.contacts.columns);
- the history is the ``consent`` events written here (props status, previous, how) beside the
  collector's ``unsubscribe`` events, both on the contact's timeline.

Nobody is re-subscribed by an import, an identify or the API: a person who said no stays so.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tracker.control.models import Suppression
from tracker.crm.model import ConsentStatus, Contact
from tracker.events import event_row

ERASED = "erased"
_ERASED_PREFIX = b"odnos.erased\x00"
_CHUNK = 500  # ids per IN (...) on the control database (SQLite's variable limit is far above)


def erasure_hash(key: str, email: str) -> str:
    """The keyed hash an erased address leaves behind (64 hex chars; ``email`` already normalised)."""
    return hmac.new(key.encode(), _ERASED_PREFIX + email.encode(), hashlib.sha256).hexdigest()


def erased(session: Session, keys: Sequence[str], emails: Iterable[str]) -> set[str]:
    """Which of these normalised addresses were erased: hashed with every key, as keys rotate."""
    by_hash = {erasure_hash(key, email): email for email in set(emails) for key in keys}
    found: set[str] = set()
    hashes = list(by_hash)
    for start in range(0, len(hashes), _CHUNK):
        chunk = hashes[start:start + _CHUNK]
        rows = session.scalars(select(Suppression.contact_id).where(
            Suppression.contact_id.in_(chunk), Suppression.how == ERASED))
        found.update(by_hash[h] for h in rows)
    return found


def suppressions(session: Session, contact_ids: Iterable[str]) -> dict[str, str]:
    """contact id -> how it left every list ('' list), for the ids that did."""
    ids = list(set(contact_ids))
    found: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(select(Suppression.contact_id, Suppression.how).where(
            Suppression.contact_id.in_(ids[start:start + _CHUNK]), Suppression.list_id == ""))
        found.update({cid: how for cid, how in rows})
    return found


def lists_left(session: Session, contact_id: str) -> dict[str, str]:
    """list id ('' = every list) -> how, for every suppression of one contact."""
    rows = session.execute(select(Suppression.list_id, Suppression.how).where(
        Suppression.contact_id == contact_id))
    return {list_id: how for list_id, how in rows}


def status_of_suppression(how: str) -> str:
    """The consent state a suppression stands for: bounced and complained say so, the rest left."""
    if how in (ConsentStatus.bounced, ConsentStatus.complained):
        return how
    return ConsentStatus.unsubscribed.value


def why_not_mailable(session: Session, keys: Sequence[str], contact: Contact,
                     list_id: str = "") -> str | None:
    """None when ``contact`` may be mailed for ``list_id``; else the reason (for dry runs and logs).

    The one check every sender makes before a message leaves: the contact's own state, its
    suppressions (every list, or this one), and the erased-address hashes.
    """
    return why_not_mailable_all(session, keys, [contact], list_id)[0]


def why_not_mailable_all(session: Session, keys: Sequence[str], contacts: Sequence[Contact],
                         list_id: str = "") -> list[str | None]:
    """``why_not_mailable`` of each of ``contacts``, in order, asking the database once for them all."""
    willing = [c for c in contacts if c.email and c.status == ConsentStatus.subscribed]
    ids = [c.contact_id for c in willing]
    suppressed: dict[str, str] = {}
    lists = {"", list_id}
    for start in range(0, len(ids), _CHUNK):
        for contact_id, how in session.execute(select(Suppression.contact_id, Suppression.how).where(
                Suppression.contact_id.in_(ids[start:start + _CHUNK]), Suppression.list_id.in_(lists))):
            suppressed.setdefault(contact_id, how)
    gone = erased(session, keys, [c.email for c in willing if c.contact_id not in suppressed])
    reasons: list[str | None] = []
    for contact in contacts:
        if not contact.email:
            reasons.append("no email address")
        elif contact.status != ConsentStatus.subscribed:
            reasons.append(contact.status)
        elif contact.contact_id in suppressed:
            reasons.append(status_of_suppression(suppressed[contact.contact_id]))
        elif contact.email in gone:
            reasons.append(ERASED)
        else:
            reasons.append(None)
    return reasons


@dataclass(frozen=True)
class ConsentChange:
    contact_id: str
    status: str
    previous: str
    how: str  # import, api, mailer, ...: who changed it


def consent_events(changes: Iterable[ConsentChange], ts: float | None = None) -> list[dict]:
    """The ``consent`` events recording these changes (the history on the contact's timeline)."""
    when = time.time() if ts is None else ts
    return [event_row("consent", when, {"status": c.status, "previous": c.previous, "how": c.how},
                      source="crm", contact_id=c.contact_id) for c in changes]


def suppress_many(sessions: sessionmaker[Session], changes: Iterable[ConsentChange]) -> None:
    """Write a suppression (every list) for each change to a non-subscribed state, if not there yet."""
    wanted = {c.contact_id: c.status for c in changes if c.status != ConsentStatus.subscribed}
    if not wanted:
        return
    with sessions() as session:
        present = suppressions(session, wanted)
    rows = [Suppression(contact_id=cid, list_id="", how=status) for cid, status in wanted.items()
            if cid not in present]
    try:
        with sessions.begin() as session:
            session.add_all(rows)
    except IntegrityError:
        # Another process suppressed one of them meanwhile: add the rest one by one.
        for row in rows:
            try:
                with sessions.begin() as session:
                    session.add(Suppression(contact_id=row.contact_id, list_id="", how=row.how))
            except IntegrityError:
                pass  # the suppression stands either way
