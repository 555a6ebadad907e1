"""Consent: the suppression list the unsubscribe routes write and the mailer obeys."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tracker.control.models import Suppression


def suppress(sessions: sessionmaker[Session], contact_id: str, list_id: str, how: str) -> bool:
    """Record that ``contact_id`` left ``list_id`` ('' = everything); False if it was already recorded.

    Its own transaction, committed before it returns: the unsubscribe is effective at once. Two
    requests racing (a one-click POST and the page's button) both succeed; exactly one returns True.
    """
    with sessions() as session:
        if is_suppressed(session, contact_id, list_id, exact=True):
            return False
    try:
        with sessions.begin() as session:
            session.add(Suppression(contact_id=contact_id, list_id=list_id, how=how))
    except IntegrityError:
        return False
    return True


def is_suppressed(session: Session, contact_id: str, list_id: str = "", *, exact: bool = False) -> bool:
    """May this contact not be mailed for ``list_id``? Leaving everything ('') covers every list."""
    lists = {list_id} if exact else {"", list_id}
    found = session.scalar(select(Suppression.contact_id).where(
        Suppression.contact_id == contact_id, Suppression.list_id.in_(lists)).limit(1))
    return found is not None
