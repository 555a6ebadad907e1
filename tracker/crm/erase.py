"""Erase a person (GDPR): every row tied to the address goes; only a keyed hash stays, to refuse it.

Order matters. The keyed hash goes into the suppressions first, so nothing can mail the address
while the rest happens. Then the event store deletes the contact's rows in every table that has
them (events by contact id and by every visitor ever linked, identities, contacts) and waits for
the mutations. Last, the control plane: the contact's suppressions are replaced by the hash, and
send-ledger rows (which must stay: they prove what was sent) get the hash in place of the
contact id and lose the address from their error text. A later import of the address is refused
and the mailer's check (tracker.crm.consent.why_not_mailable) finds the hash.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from tracker.contacts import contact_id_for, normalize_email
from tracker.control.db import ControlPlane
from tracker.control.models import SendLedger, Suppression
from tracker.crm.consent import ERASED, erasure_hash
from tracker.queries.contacts.erase_contact import count_tied, delete_tied, tied_rows
from tracker.store.base import EventStore


@dataclass(frozen=True)
class ErasureReport:
    email: str
    contact_id: str
    rows: dict[str, int]  # event-store table -> rows deleted
    ledger_rows: int  # send-ledger rows kept, now holding the hash
    suppressions: int  # suppressions of the contact replaced by the hash


def erase_contact(store: EventStore, control: ControlPlane, keys: Sequence[str], email: str, *,
                  timeout: float = 600.0) -> ErasureReport:
    """Erase the address everywhere and suppress its keyed hash; safe to run again."""
    address = normalize_email(email)
    contact_id = contact_id_for(address)
    hashed = erasure_hash(keys[0], address)
    try:
        with control.session() as db:
            if db.get(Suppression, (hashed, "")) is None:
                db.add(Suppression(contact_id=hashed, list_id="", how=ERASED))
    except IntegrityError:
        pass  # a concurrent erase wrote it
    tied = tied_rows(store, contact_id)
    rows = count_tied(store, tied)
    delete_tied(store, tied, timeout=timeout)
    with control.session() as db:
        suppressions = len(db.scalars(select(Suppression.list_id).where(
            Suppression.contact_id == contact_id)).all())
        db.execute(delete(Suppression).where(Suppression.contact_id == contact_id))
        ledger = db.scalars(select(SendLedger).where(SendLedger.contact_id == contact_id)).all()
        for entry in ledger:
            entry.contact_id = hashed
            if entry.error:
                entry.error = _without(entry.error, address)
    return ErasureReport(address, contact_id, rows, len(ledger), suppressions)


def _without(text: str, address: str) -> str:
    """``text`` with every spelling of the address (any case) replaced."""
    return re.sub(re.escape(address), "[erased]", text, flags=re.IGNORECASE)
