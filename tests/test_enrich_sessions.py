"""SessionTracker: 30-minute sessions, midnight continuity, LRU bound, thread safety."""

from __future__ import annotations

import re
import threading

import pytest

from tracker.enrich.sessions import SESSION_TIMEOUT, SessionTracker

T0 = 1_741_600_000.0


def test_hits_within_30_minutes_share_a_session():
    tracker = SessionTracker()
    first = tracker.assign(1, ["today"], T0)
    assert first.new_session and first.visitor_id == "today"
    assert re.fullmatch(r"[0-9a-f]{16}", first.session_id)
    second = tracker.assign(1, ["today"], T0 + SESSION_TIMEOUT - 1)
    assert (second.session_id, second.new_session) == (first.session_id, False)
    # inactivity is measured from the last hit, not the first
    third = tracker.assign(1, ["today"], T0 + 2 * SESSION_TIMEOUT - 2)
    assert third.session_id == first.session_id


def test_thirty_minutes_of_inactivity_start_a_new_session():
    tracker = SessionTracker()
    first = tracker.assign(1, ["today"], T0)
    later = tracker.assign(1, ["today"], T0 + SESSION_TIMEOUT + 1)
    assert later.new_session and later.session_id != first.session_id


def test_a_visit_across_midnight_keeps_yesterdays_id():
    tracker = SessionTracker()
    before = tracker.assign(1, ["id-day1", "id-day0"], T0)
    after = tracker.assign(1, ["id-day2", "id-day1"], T0 + 600)
    assert (after.visitor_id, after.session_id, after.new_session) == ("id-day1", before.session_id, False)


def test_without_a_live_session_the_first_candidate_starts_one():
    tracker = SessionTracker()
    tracker.assign(1, ["id-day1"], T0)
    fresh = tracker.assign(1, ["id-day2", "id-day1"], T0 + SESSION_TIMEOUT + 5)
    assert (fresh.visitor_id, fresh.new_session) == ("id-day2", True)


def test_sites_are_separate():
    tracker = SessionTracker()
    a = tracker.assign(1, ["v"], T0)
    b = tracker.assign(2, ["v"], T0)
    assert b.new_session and a.session_id != b.session_id


def test_a_late_hit_joins_its_session_without_moving_time_back():
    tracker = SessionTracker()
    first = tracker.assign(1, ["v"], T0 + 100)
    assert tracker.assign(1, ["v"], T0).session_id == first.session_id
    assert tracker.assign(1, ["v"], T0 + 100 + SESSION_TIMEOUT).session_id == first.session_id


def test_least_recently_seen_visitors_are_evicted():
    tracker = SessionTracker(max_visitors=2)
    a = tracker.assign(1, ["a"], T0)
    tracker.assign(1, ["b"], T0)
    tracker.assign(1, ["a"], T0 + 1)  # a is now the most recent
    tracker.assign(1, ["c"], T0 + 2)  # evicts b
    assert len(tracker) == 2
    assert tracker.assign(1, ["a"], T0 + 3).session_id == a.session_id
    assert tracker.assign(1, ["b"], T0 + 3).new_session


def test_no_candidates_is_an_error():
    with pytest.raises(ValueError):
        SessionTracker().assign(1, [], T0)


def test_concurrent_first_hits_make_one_session():
    tracker = SessionTracker()
    start = threading.Barrier(16)
    results = []

    def hit() -> None:
        start.wait()
        for i in range(200):
            results.append(tracker.assign(1, ["v"], T0 + i))

    threads = [threading.Thread(target=hit) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.session_id for r in results}) == 1
    assert sum(r.new_session for r in results) == 1
