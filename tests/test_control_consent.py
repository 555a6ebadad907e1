"""The suppression list on SQLite and PostgreSQL: recorded once, effective for the right lists."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from tracker.control.consent import is_suppressed, suppress
from tracker.control.db import ControlPlane
from tracker.control.models import Suppression


def test_suppress_once_and_scope(control: ControlPlane) -> None:
    assert suppress(control.sessions, "c1", "news", "page") is True
    assert suppress(control.sessions, "c1", "news", "one_click") is False
    with control.session() as db:
        assert is_suppressed(db, "c1", "news")
        assert not is_suppressed(db, "c1", "offers")
        assert not is_suppressed(db, "c2", "news")
    assert suppress(control.sessions, "c1", "", "page") is True
    with control.session() as db:
        assert is_suppressed(db, "c1", "offers")  # leaving everything covers every list


def test_racing_unsubscribes_record_one_row(control: ControlPlane) -> None:
    results = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        results.append(suppress(control.sessions, "c9", "", "one_click"))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    with control.session() as db:
        assert db.scalar(select(func.count()).select_from(Suppression)) == 1
