"""SessionTracker: 30-minute sessions, midnight continuity, the bounded table, and one table shared by
trackers, threads and OS processes on the same file (forked or started apart), with a corrupt or
foreign file made anew."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.enrich.sessions import SESSION_TIMEOUT, SLOTS, WINDOW, SessionTracker

T0 = 1_741_600_000.0
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.map"


@pytest.fixture
def tracker(path: Path) -> Iterator[SessionTracker]:
    opened = SessionTracker(path)
    yield opened
    opened.close()


def test_hits_within_30_minutes_share_a_session(tracker: SessionTracker) -> None:
    first = tracker.assign(1, ["today"], T0)
    assert first.new_session and first.visitor_id == "today"
    assert re.fullmatch(r"[0-9a-f]{16}", first.session_id)
    second = tracker.assign(1, ["today"], T0 + SESSION_TIMEOUT - 1)
    assert (second.session_id, second.new_session) == (first.session_id, False)
    # inactivity is measured from the last hit, not the first
    third = tracker.assign(1, ["today"], T0 + 2 * SESSION_TIMEOUT - 2)
    assert third.session_id == first.session_id


def test_thirty_minutes_of_inactivity_start_a_new_session(tracker: SessionTracker) -> None:
    first = tracker.assign(1, ["today"], T0)
    later = tracker.assign(1, ["today"], T0 + SESSION_TIMEOUT + 1)
    assert later.new_session and later.session_id != first.session_id
    assert tracker.assign(1, ["today"], T0 + SESSION_TIMEOUT + 2).session_id == later.session_id


def test_a_visit_across_midnight_keeps_yesterdays_id(tracker: SessionTracker) -> None:
    before = tracker.assign(1, ["id-day1", "id-day0"], T0)
    after = tracker.assign(1, ["id-day2", "id-day1"], T0 + 600)
    assert (after.visitor_id, after.session_id, after.new_session) == ("id-day1", before.session_id, False)


def test_without_a_live_session_the_first_candidate_starts_one(tracker: SessionTracker) -> None:
    tracker.assign(1, ["id-day1"], T0)
    fresh = tracker.assign(1, ["id-day2", "id-day1"], T0 + SESSION_TIMEOUT + 5)
    assert (fresh.visitor_id, fresh.new_session) == ("id-day2", True)
    assert tracker.assign(1, ["id-day2"], T0 + SESSION_TIMEOUT + 6).session_id == fresh.session_id


def test_sites_are_separate(tracker: SessionTracker) -> None:
    a = tracker.assign(1, ["v"], T0)
    b = tracker.assign(2, ["v"], T0)
    assert b.new_session and a.session_id != b.session_id
    assert tracker.assign("1", ["v"], T0).session_id == a.session_id  # a site id is its text


def test_a_late_hit_joins_its_session_without_moving_time_back(tracker: SessionTracker) -> None:
    first = tracker.assign(1, ["v"], T0 + 100)
    assert tracker.assign(1, ["v"], T0).session_id == first.session_id
    assert tracker.assign(1, ["v"], T0 + 100 + SESSION_TIMEOUT).session_id == first.session_id


def test_a_full_window_gives_up_its_stalest_entry(path: Path) -> None:
    # One slot of hash: every key probes the same WINDOW slots, so the 17th visitor must evict.
    tracker = SessionTracker(path, slots=1)
    sessions = [tracker.assign(1, [f"v{i}"], T0 + i).session_id for i in range(WINDOW)]
    tracker.assign(1, ["v0"], T0 + WINDOW)  # v0 seen again: v1 is now the stalest
    newcomer = tracker.assign(1, ["new"], T0 + WINDOW + 1)
    assert newcomer.new_session
    assert tracker.assign(1, ["new"], T0 + WINDOW + 2).session_id == newcomer.session_id
    assert tracker.assign(1, ["v0"], T0 + WINDOW + 2).session_id == sessions[0]
    for i in range(2, WINDOW):
        assert tracker.assign(1, [f"v{i}"], T0 + WINDOW + 2).session_id == sessions[i]
    assert tracker.assign(1, ["v1"], T0 + WINDOW + 3).new_session  # evicted: starts anew
    tracker.close()


def test_no_candidates_is_an_error(tracker: SessionTracker) -> None:
    with pytest.raises(ValueError):
        tracker.assign(1, [], T0)


def test_the_slots_must_be_a_power_of_two(path: Path) -> None:
    with pytest.raises(ValueError, match="power of two"):
        SessionTracker(path, slots=1000)


def test_concurrent_first_hits_make_one_session(tracker: SessionTracker) -> None:
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


# -- one table for every tracker and process on the file -------------------------------------------


def test_two_trackers_on_one_file_share_sessions_and_their_last_hit(path: Path) -> None:
    a, b = SessionTracker(path), SessionTracker(path)
    first = a.assign(1, ["v"], T0)
    second = b.assign(1, ["v"], T0 + SESSION_TIMEOUT - 1)
    assert (second.session_id, second.new_session) == (first.session_id, False)
    # b's hit moved the visit's last hit: a sees it, so the visit goes on past a's own 30 minutes
    assert a.assign(1, ["v"], T0 + 2 * SESSION_TIMEOUT - 2).session_id == first.session_id
    a.close()
    b.close()


def test_a_restarted_process_keeps_the_live_sessions(path: Path) -> None:
    before = SessionTracker(path)
    first = before.assign(1, ["v"], T0)
    before.close()
    after = SessionTracker(path)
    again = after.assign(1, ["v"], T0 + 60)
    assert (again.session_id, again.new_session) == (first.session_id, False)
    after.close()


def test_assign_waits_while_another_process_holds_the_files_lock(tracker: SessionTracker, path: Path) -> None:
    # A descriptor of our own is what another process's would be to flock: a lock apart.
    with path.open("rb") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        hit = threading.Thread(target=tracker.assign, args=(1, ["v"], T0))
        hit.start()
        hit.join(0.3)
        waited = hit.is_alive()
        fcntl.flock(other, fcntl.LOCK_UN)
        hit.join(10)
    assert waited and not hit.is_alive()


CHILD = """
import json, sys
from pathlib import Path
from tracker.enrich.sessions import SessionTracker
tracker = SessionTracker(Path(sys.argv[1]))
hit = tracker.assign(1, ["v"], float(sys.argv[2]))
print(json.dumps([hit.session_id, hit.new_session]))
"""


def _in_another_interpreter(path: Path, ts: float) -> tuple[str, bool]:
    """``assign`` in a separately started Python (its own hash seed, nothing inherited)."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), repr(ts)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    session, new = json.loads(done.stdout)
    return session, new


def test_a_separately_started_process_sees_the_same_sessions(tracker: SessionTracker, path: Path) -> None:
    first = tracker.assign(1, ["v"], T0)
    assert _in_another_interpreter(path, T0 + 60) == (first.session_id, False)
    assert _in_another_interpreter(path, T0 + 60 + SESSION_TIMEOUT + 1)[1] is True  # a new one there...
    later = tracker.assign(1, ["v"], T0 + 60 + SESSION_TIMEOUT + 2)
    assert not later.new_session and later.session_id != first.session_id  # ...continued here


ROUNDS = 2000


def _race(path: str, inherited: SessionTracker | None, start: multiprocessing.Barrier, out) -> None:
    """In a forked child: each round, both children wait at the barrier, then hit one new visitor."""
    tracker = inherited or SessionTracker(Path(path))
    hits = []
    for n in range(ROUNDS):
        start.wait()
        hit = tracker.assign(1, [f"v{n}"], T0)
        hits.append((hit.session_id, hit.new_session))
    out.send(hits)


@pytest.mark.parametrize("made", ["in each process", "before the fork"])
def test_two_processes_racing_on_new_visitors_make_one_session_each(path: Path, made: str) -> None:
    fork = multiprocessing.get_context("fork")
    inherited = SessionTracker(path) if made == "before the fork" else None
    start = fork.Barrier(2, timeout=30)
    pipes = [fork.Pipe(duplex=False) for _ in range(2)]
    children = [fork.Process(target=_race, args=(str(path), inherited, start, send)) for _, send in pipes]
    for child in children:
        child.start()
    a, b = (receive.recv() for receive, _ in pipes)
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    for n, (hit_a, hit_b) in enumerate(zip(a, b, strict=True)):
        assert hit_a[0] == hit_b[0], f"visitor v{n} has two sessions"
        assert hit_a[1] + hit_b[1] == 1, f"visitor v{n}'s session was started {hit_a[1] + hit_b[1]} times"
    if inherited is not None:  # and the parent, whose descriptor the children reopened, still works
        assert inherited.assign(1, ["v0"], T0 + 1).session_id == a[0][0]
        inherited.close()


# -- a file that is not a table of ours ------------------------------------------------------------


FILE_BYTES = 64 + (SLOTS + WINDOW - 1) * 24  # the header, then the slots


@pytest.mark.parametrize("content", [b"", b"not a sessions table", b"\xff" * FILE_BYTES],
                         ids=["empty", "short", "right size, foreign header"])
def test_a_foreign_or_corrupt_file_is_made_anew(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    tracker = SessionTracker(path)
    first = tracker.assign(1, ["v"], T0)
    assert first.new_session and tracker.assign(1, ["v"], T0 + 1).session_id == first.session_id
    tracker.close()
    assert path.stat().st_size == FILE_BYTES


def test_a_table_of_another_size_is_made_anew(path: Path) -> None:
    small = SessionTracker(path, slots=64)
    small.assign(1, ["v"], T0)
    small.close()
    tracker = SessionTracker(path)
    assert tracker.assign(1, ["v"], T0 + 1).new_session  # not read with the wrong geometry
    tracker.close()
