"""Daily salts for cookieless visitor ids: one random salt per UTC day, shared by every process.

A visitor id is a hash of (salt, site, IP, user agent); with a new salt each day and old salts
deleted, yesterday's visitors cannot be linked to today's, and no cookie is needed. All
collector processes must hash with the same salt, hence the database rather than memory.
"""

from __future__ import annotations

import secrets
from datetime import date, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tracker.control.models import VisitorSalt

SALT_BYTES = 32
# Today's salt and the two days before it are kept: a visit that spans midnight, and clocks a
# little apart between processes, still find the salt they hashed with.
KEEP_DAYS = 2


def salt_for(sessions: sessionmaker[Session], day: date) -> bytes:
    """The salt of ``day``, created if missing; deletes salts more than ``KEEP_DAYS`` before ``day``.

    Takes the session factory, not a session, because it needs transactions of its own. Safe
    when processes ask at once: each may try to insert, the primary key lets exactly one win,
    the others see the conflict and read the winner's salt. Callers cache the result for the day.
    """
    with sessions() as session:
        existing = session.scalar(select(VisitorSalt.salt).where(VisitorSalt.day == day))
    if existing is not None:
        return existing
    salt = secrets.token_bytes(SALT_BYTES)
    try:
        with sessions.begin() as session:
            session.add(VisitorSalt(day=day, salt=salt))
            session.flush()
            session.execute(delete(VisitorSalt).where(VisitorSalt.day < day - timedelta(days=KEEP_DAYS)))
    except IntegrityError:
        return salt_for(sessions, day)  # another process created it first: read theirs
    return salt
