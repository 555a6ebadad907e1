"""Consent: the suppression list the unsubscribe routes write and the mailer obeys.

A suppression row is the authority, and it also carries its ``unsubscribe`` event until the event
is handed to the ingestion spool: the row and its pending event are committed together, then
``hand_over`` gives the event to the spool and clears it in one transaction. A spool that is full
or broken leaves the event pending (``hand_over_pending`` tries again later); nothing is lost. A
process killed between the spool's write and the commit may hand an event over twice, with the
same event id, never zero times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tracker.control.models import Suppression

Submit = Callable[[list[dict[str, Any]]], None]


class EventDelayed(Exception):
    """The suppression is recorded, but its event could not be handed to the spool now: it waits."""


def suppress(sessions: sessionmaker[Session], contact_id: str, list_id: str, how: str,
             event: dict[str, Any] | None = None) -> bool:
    """Record that ``contact_id`` left ``list_id`` ('' = everything); False if it was already recorded.

    Its own transaction, committed before it returns: the unsubscribe is effective at once. Two
    requests racing (a one-click POST and the page's button) both succeed; exactly one returns True.
    ``event`` (the ``unsubscribe`` events row) is stored with it as pending, for ``hand_over``.
    """
    with sessions() as session:
        if is_suppressed(session, contact_id, list_id, exact=True):
            return False
    pending = orjson.dumps(event).decode() if event is not None else None
    try:
        with sessions.begin() as session:
            session.add(Suppression(contact_id=contact_id, list_id=list_id, how=how, pending_event=pending))
    except IntegrityError:
        return False
    return True


def hand_over(sessions: sessionmaker[Session], contact_id: str, list_id: str, submit: Submit) -> bool:
    """Give this suppression's pending event to ``submit`` (the spool) and clear it, in one transaction.

    False when nothing was pending (already handed over, perhaps by another process). When
    ``submit`` raises (the spool is full) the transaction rolls back, so the event stays pending,
    and the error propagates.
    """
    key = (Suppression.contact_id == contact_id, Suppression.list_id == list_id)
    with sessions.begin() as session:
        pending = session.scalar(select(Suppression.pending_event).where(*key))
        if pending is None:
            return False
        claimed = session.execute(update(Suppression).where(*key, Suppression.pending_event.is_not(None))
                                  .values(pending_event=None))
        if claimed.rowcount != 1:
            return False  # another process claimed it between our read and our update
        submit([orjson.loads(pending)])
    return True


def hand_over_pending(sessions: sessionmaker[Session], submit: Submit, limit: int = 100) -> bool:
    """Hand over up to ``limit`` pending events; True when more may be pending.

    Stops at the first refusal of ``submit``, which propagates: the rest waits for the next try.
    """
    with sessions() as session:
        pending = session.execute(select(Suppression.contact_id, Suppression.list_id)
                                  .where(Suppression.pending_event.is_not(None)).limit(limit)).all()
    for contact_id, list_id in pending:
        hand_over(sessions, contact_id, list_id, submit)
    return len(pending) == limit


def is_suppressed(session: Session, contact_id: str, list_id: str = "", *, exact: bool = False) -> bool:
    """May this contact not be mailed for ``list_id``? Leaving everything ('') covers every list."""
    lists = {list_id} if exact else {"", list_id}
    found = session.scalar(select(Suppression.contact_id).where(
        Suppression.contact_id == contact_id, Suppression.list_id.in_(lists)).limit(1))
    return found is not None
