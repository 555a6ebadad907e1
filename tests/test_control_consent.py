"""The suppression list on SQLite and PostgreSQL: recorded once, effective for the right lists, and
holding its unsubscribe event until the spool takes it."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from tracker.control.consent import hand_over, hand_over_pending, is_suppressed, suppress
from tracker.control.db import ControlPlane
from tracker.control.models import Suppression
from tracker.ingest.spool import SpoolFull


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


def _pending(control: ControlPlane) -> list[tuple[str, str]]:
    with control.session() as db:
        return sorted(db.execute(select(Suppression.contact_id, Suppression.list_id)
                                 .where(Suppression.pending_event.is_not(None))).all())


def test_the_event_waits_with_the_suppression_until_the_spool_takes_it(control: ControlPlane) -> None:
    event = {"event_id": "e-1", "name": "unsubscribe", "contact_id": "c1", "props.key": ["list"],
             "props.value": ["news"], "ts": 1_700_000_000}
    assert suppress(control.sessions, "c1", "news", "page", event) is True
    assert _pending(control) == [("c1", "news")]

    def full(rows: list[dict]) -> None:
        raise SpoolFull("full")

    with pytest.raises(SpoolFull):
        hand_over(control.sessions, "c1", "news", full)
    assert _pending(control) == [("c1", "news")]  # rolled back: still there for the next try
    taken: list[list[dict]] = []
    assert hand_over(control.sessions, "c1", "news", taken.append) is True
    assert taken == [[event]]
    assert _pending(control) == []
    assert hand_over(control.sessions, "c1", "news", taken.append) is False  # handed over once only
    assert len(taken) == 1
    with control.session() as db:
        assert is_suppressed(db, "c1", "news")


def test_pending_events_are_handed_over_once_by_racing_workers(control: ControlPlane) -> None:
    for n in range(5):
        suppress(control.sessions, f"c{n}", "", "one_click", {"event_id": f"e{n}", "contact_id": f"c{n}"})
    suppress(control.sessions, "old", "", "page")  # no event with it: nothing pending
    taken: list[dict] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def submit(rows: list[dict]) -> None:
        with lock:
            taken.extend(rows)

    def run() -> None:
        barrier.wait()
        while hand_over_pending(control.sessions, submit, limit=2):
            pass

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(row["event_id"] for row in taken) == [f"e{n}" for n in range(5)]
    assert _pending(control) == []
