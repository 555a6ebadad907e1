"""Daily visitor salts: one per day, the same in every process, old ones deleted."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import sqlalchemy as sa

from tracker.control.db import ControlPlane
from tracker.control.models import VisitorSalt
from tracker.control.salts import SALT_BYTES, salt_for

DAY = date(2025, 3, 10)


def _days(control: ControlPlane) -> list[date]:
    with control.session() as session:
        return list(session.scalars(sa.select(VisitorSalt.day).order_by(VisitorSalt.day)))


def test_salt_is_created_once_and_then_reused(control: ControlPlane) -> None:
    salt = salt_for(control.sessions, DAY)
    assert isinstance(salt, bytes) and len(salt) == SALT_BYTES
    assert salt_for(control.sessions, DAY) == salt
    assert salt_for(control.sessions, DAY + timedelta(days=1)) != salt


def test_salts_older_than_two_days_are_deleted(control: ControlPlane) -> None:
    for back in range(5, 0, -1):
        salt_for(control.sessions, DAY - timedelta(days=back))
    salt_for(control.sessions, DAY)
    assert _days(control) == [DAY - timedelta(days=2), DAY - timedelta(days=1), DAY]


def test_threads_asking_at_once_get_the_same_salt(control: ControlPlane) -> None:
    workers = 8
    start = threading.Barrier(workers)

    def ask(day: date) -> bytes:
        start.wait()
        return salt_for(control.sessions, day)

    for day in (DAY, DAY + timedelta(days=1)):
        with ThreadPoolExecutor(workers) as pool:
            salts = list(pool.map(ask, [day] * workers))
        assert len(set(salts)) == 1
    assert _days(control) == [DAY, DAY + timedelta(days=1)]


def test_a_salt_committed_by_another_process_mid_request_wins(control: ControlPlane) -> None:
    """The asker finds no row, then loses the insert race: it must return the winner's salt."""
    theirs = b"t" * SALT_BYTES
    got: list[bytes] = []
    with control.session() as session:
        session.add(VisitorSalt(day=DAY, salt=theirs))
        session.flush()  # inserted, not committed: invisible to the asker, but it holds the key
        asker = threading.Thread(target=lambda: got.append(salt_for(control.sessions, DAY)))
        asker.start()
        time.sleep(0.5)
    asker.join(30)
    assert got == [theirs]
