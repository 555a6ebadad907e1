"""The spool writer: batching, retries, exactly-once delivery, orphan slots, and a real kill -9."""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import tracker.ingest.writer as writer_module
from tracker.errors import RowsRejected
from tracker.ingest.spool import Spool, claim_spool
from tracker.ingest.writer import DEAD_LETTERS, Writer, drain_orphans


def line(n: int, pad: int = 20) -> bytes:
    return b'{"event_id":%d,"pad":"%s"}\n' % (n, b"x" * pad)


def ids(data: bytes) -> list[int]:
    return [json.loads(raw)["event_id"] for raw in data.splitlines()]


class Store:
    """A sink standing in for ClickHouse: keeps batches; can fail before or after inserting."""

    def __init__(self, fail_before: int = 0, fail_after: int = 0, delay: float = 0.0) -> None:
        self.batches: list[bytes] = []
        self.calls: list[float] = []
        self.fail_before = fail_before  # raise this many times without inserting
        self.fail_after = fail_after  # then this many times after inserting (a lost acknowledgement)
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, table: str, data: bytes, rows: int) -> None:
        assert table == "events" and rows == data.count(b"\n") > 0
        self.calls.append(time.monotonic())
        if self.delay:
            time.sleep(self.delay)
        if self.fail_before:
            self.fail_before -= 1
            raise ConnectionError("ClickHouse is down")
        with self.lock:
            self.batches.append(data)
        if self.fail_after:
            self.fail_after -= 1
            raise TimeoutError("no answer from ClickHouse")

    @property
    def ids(self) -> list[int]:
        with self.lock:
            return [i for batch in self.batches for i in ids(batch)]

    def dedupe(self, data: bytes) -> bytes:
        held = set(self.ids)
        return b"".join(raw + b"\n" for raw in data.splitlines() if json.loads(raw)["event_id"] not in held)


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "BACKOFF_START", 0.005)
    monkeypatch.setattr(writer_module, "BACKOFF_MAX", 0.02)


def test_batches_respect_rows_and_bytes(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        for n in range(1050):
            spool.append(line(n))
        store = Store()
        writer = Writer(spool, store, max_batch_rows=100, max_batch_bytes=3000, interval=0.02)
        assert writer.stop(10)
    assert store.ids == list(range(1050))
    assert max(b.count(b"\n") for b in store.batches) <= 100
    assert max(len(b) for b in store.batches) <= 3000
    assert writer.inserted_rows == 1050 and writer.inserted_batches == len(store.batches)


def test_a_line_longer_than_a_batch_goes_alone(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        spool.append(line(1) + line(2, pad=5000) + line(3))
        store = Store()
        assert Writer(spool, store, max_batch_bytes=1000, interval=0.02).stop(10)
    assert [ids(b) for b in store.batches] == [[1], [2], [3]]


def test_interval_delivers_without_flush(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        store = Store()
        writer = Writer(spool, store, interval=0.05)
        spool.append(line(1))
        deadline = time.monotonic() + 5
        while not store.batches and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.ids == [1]
        spool.append(line(2) + line(3))
        time.sleep(0.3)
        assert store.ids == [1, 2, 3]
        assert writer.stop(5)


def test_small_appends_are_batched(tmp_path: Path) -> None:
    """Many requests between two writer wake-ups become one insert, not one insert each."""
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        store = Store()
        writer = Writer(spool, store, interval=0.2)
        time.sleep(0.05)
        for n in range(500):
            spool.append(line(n))
        assert writer.stop(5)
    assert store.ids == list(range(500))
    assert len(store.batches) <= 3


def test_outage_keeps_data_logs_once_and_backs_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        for n in range(50):
            spool.append(line(n))
        store = Store(fail_before=3)
        with caplog.at_level(logging.DEBUG, logger="tracker.ingest.writer"):
            writer = Writer(spool, store, interval=0.02)
            time.sleep(0.5)
            stats = writer.stats()
            assert stats["failures"] >= 2 and "ClickHouse is down" in stats["last_error"]
            assert stats["pending_bytes"] > 0 and store.ids == []
            assert writer.stop(10)
    assert store.ids == list(range(50))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "Nothing is dropped" in errors[0].getMessage()
    assert any("work again after 3 failed attempts" in r.getMessage() for r in caplog.records)
    gaps = [b - a for a, b in zip(store.calls, store.calls[1:], strict=False)]
    assert gaps[0] >= 0.15 and gaps[1] >= 0.35 and gaps[2] >= 0.75  # 0.2 s, 0.4 s, 0.8 s ...
    assert writer.stats()["failures"] == 0


def test_backoff_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "BACKOFF_START", 0.01)
    monkeypatch.setattr(writer_module, "BACKOFF_MAX", 0.04)
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        spool.append(line(1))
        store = Store(fail_before=12)
        assert Writer(spool, store, interval=0.01).stop(10)
    gaps = [b - a for a, b in zip(store.calls, store.calls[1:], strict=False)]
    assert max(gaps) < 0.2  # without the cap the last wait would be 0.01 * 2**11 = 20 s


def test_backoff_delay_stays_capped_in_a_long_outage() -> None:
    assert [writer_module.backoff_delay(n) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert (
        writer_module.backoff_delay(6) == writer_module.backoff_delay(100_000) == 5.0
    )  # hours of 5 s retries


def test_lost_acknowledgement_is_deduplicated(tmp_path: Path, fast_backoff: None) -> None:
    """The store inserted, then the answer was lost: the retry must not insert it twice."""
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        for n in range(20):
            spool.append(line(n))
        store = Store(fail_after=2)
        writer = Writer(spool, store, dedupe=store.dedupe, interval=0.02, max_batch_rows=5)
        assert writer.stop(10)
    assert store.ids == list(range(20))
    assert writer.deduplicated_rows == 10  # both lost batches were dropped by dedupe, not re-sent


def test_without_dedupe_a_lost_acknowledgement_duplicates_and_warns(
    tmp_path: Path, fast_backoff: None, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        spool.append(line(1))
        store = Store(fail_after=1)
        with caplog.at_level(logging.WARNING, logger="tracker.ingest.writer"):
            assert Writer(spool, store, interval=0.02).stop(10)
    assert store.ids == [1, 1]
    assert any("no dedupe hook" in r.getMessage() for r in caplog.records)


def test_exactly_once_under_intermittent_failures(tmp_path: Path, fast_backoff: None) -> None:
    rng = random.Random(7)
    inner = Store()

    def flaky(table: str, data: bytes, rows: int) -> None:
        roll = rng.random()
        if roll < 0.25:
            raise ConnectionError("refused")
        inner(table, data, rows)
        if roll > 0.8:
            raise TimeoutError("inserted, but the answer was lost")

    def flaky_dedupe(data: bytes) -> bytes:
        if rng.random() < 0.2:
            raise ConnectionError("cannot look up event ids")
        return inner.dedupe(data)

    with Spool(tmp_path, max_bytes=1 << 26, segment_bytes=16 * 1024) as spool:
        writer = Writer(spool, flaky, dedupe=flaky_dedupe, interval=0.005, max_batch_rows=64)

        def produce(t: int) -> None:
            for i in range(1500):
                spool.append(line(t * 100_000 + i))
                if i % 100 == 0:
                    time.sleep(0.001)

        producers = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
        for p in producers:
            p.start()
        for p in producers:
            p.join()
        assert writer.stop(30)
    got = inner.ids
    assert sorted(got) == sorted(t * 100_000 + i for t in range(4) for i in range(1500))
    for t in range(4):  # never reordered
        mine = [i for i in got if i // 100_000 == t]
        assert mine == sorted(mine)
    assert writer.deduplicated_rows > 0  # the lost-answer path was exercised


def test_slow_sink_does_not_slow_appends(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 26) as spool:
        store = Store(delay=0.3)
        writer = Writer(spool, store, interval=0.01)
        spool.append(line(0))
        time.sleep(0.05)  # the writer is now inside the slow insert
        started = time.perf_counter()
        for n in range(1, 2001):
            spool.append(line(n))
        assert time.perf_counter() - started < 0.25  # 2,000 appends while one insert takes 0.3 s
        assert writer.stop(10)
    assert store.ids == list(range(2001))
    assert len(store.batches) <= 3


def test_flush_times_out_while_the_store_is_down_and_data_survives(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        spool.append(line(1) + line(2))
        down = Store(fail_before=10**9)
        writer = Writer(spool, down, interval=0.01)
        assert writer.flush(0.3) is False
        assert writer.stop(0.1) is False
        assert not writer.stats()["running"]
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        store = Store()
        assert Writer(spool, store, dedupe=store.dedupe, interval=0.01).stop(5)
    assert store.ids == [1, 2]


def test_stats_for_healthz(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        store = Store()
        writer = Writer(spool, store, interval=0.01)
        spool.append(line(1) + line(2))
        assert writer.flush(5)
        stats = writer.stats()
        assert stats["pending_bytes"] == 0 and stats["pending_rows_estimate"] == 0
        assert stats["inserted_rows"] == 2 and stats["last_error"] is None and stats["running"]
        assert stats["last_insert_at"] is not None and stats["table"] == "events"
        json.dumps(stats)  # /healthz serialises it as is
        writer.stop(5)


def test_drain_orphans_skips_live_slots(tmp_path: Path) -> None:
    for slot, first in ((0, 0), (1, 100), (2, 200)):
        with Spool(tmp_path / str(slot), max_bytes=1 << 20) as spool:
            for n in range(first, first + 5):
                spool.append(line(n))
    live = Spool(tmp_path / "1", max_bytes=1 << 20)  # a worker still running on slot 1
    store = Store()
    assert drain_orphans(tmp_path, store, dedupe=store.dedupe, timeout=10) == 10
    assert sorted(store.ids) == [0, 1, 2, 3, 4, 200, 201, 202, 203, 204]
    assert live.pending_bytes > 0  # untouched
    live.close()
    assert drain_orphans(tmp_path, store, timeout=10) == 5
    assert drain_orphans(tmp_path, store, timeout=10) == 0
    assert drain_orphans(tmp_path / "missing", store) == 0


# -- rows the store refuses for good ----------------------------------------------------------------


def bad(n: int) -> bytes:
    return b'{"event_id":%d,"bad":"yes"}\n' % n


class Refusing(Store):
    """A store that refuses for good any insert holding a bad line, naming its row when ``hint``."""

    def __init__(self, hint: bool = True, outage_on_call: int = 0) -> None:
        super().__init__()
        self.hint = hint
        self.outage_on_call = outage_on_call  # this call fails as if ClickHouse went down

    def __call__(self, table: str, data: bytes, rows: int) -> None:
        assert rows == data.count(b"\n") > 0
        self.calls.append(time.monotonic())
        if len(self.calls) == self.outage_on_call:
            raise ConnectionError("ClickHouse went away")
        for row, raw in enumerate(data.split(b"\n")[:-1], 1):
            if b'"bad"' in raw:
                if self.hint:
                    raise RowsRejected("refused", server_message=f"Code: 27. bad input (at row {row})",
                                       row=row)
                raise RowsRejected("refused", server_message="Code: 190. array sizes differ")
        with self.lock:
            self.batches.append(data)


def letters(directory: Path) -> list[dict]:
    path = directory / DEAD_LETTERS
    return [json.loads(raw) for raw in path.read_bytes().splitlines()] if path.exists() else []


@pytest.mark.parametrize("hint", [True, False])
def test_refused_rows_are_split_out_and_the_rest_land_once(tmp_path: Path, hint: bool,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    refused = {0, 500, 501, 999}
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        spool.append(b"".join(bad(n) if n in refused else line(n) for n in range(1000)))
        spool.append(line(1000))
        store = Refusing(hint)
        with caplog.at_level(logging.ERROR, logger="tracker.ingest.writer"):
            writer = Writer(spool, store, max_batch_rows=1000, max_batch_bytes=1 << 20, interval=0.02)
            assert writer.stop(10)
        assert spool.pending_bytes == 0
    assert store.ids == [n for n in range(1001) if n not in refused]
    assert [json.loads(letter["line"])["event_id"] for letter in letters(tmp_path)] == sorted(refused)
    # Each letter carries the store's own words for that row alone.
    assert {letter["error"] for letter in letters(tmp_path)} == (
        {"Code: 27. bad input (at row 1)"} if hint else {"Code: 190. array sizes differ"})
    # A row named by the store costs about three inserts; halving costs about 2 log2(n) per row.
    assert len(store.calls) <= (3 * len(refused) + 2 if hint else 2 * len(refused) * 10 + 2)
    assert (writer.stats()["dead_letter_rows"], writer.inserted_rows) == (4, 997)
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


def test_a_batch_of_refused_rows_only(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        spool.append(b"".join(bad(n) for n in range(3000)))  # deeper than Python's recursion limit
        store = Refusing(hint=True)
        assert Writer(spool, store, max_batch_rows=5000, max_batch_bytes=1 << 22, interval=0.02).stop(30)
    assert store.ids == [] and len(letters(tmp_path)) == 3000
    assert len(store.calls) <= 2 * 3000 + 1


def test_one_error_line_per_refused_batch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        spool.append(b"".join(bad(n) if n in (5, 6, 150) else line(n) for n in range(300)))
        with caplog.at_level(logging.ERROR, logger="tracker.ingest.writer"):
            writer = Writer(spool, Refusing(), max_batch_rows=100, interval=0.02)
            assert writer.stop(10)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "2 of 100" in errors[0] and "1 of 100" in errors[1]
    assert str(tmp_path / DEAD_LETTERS) in errors[0]


def test_an_outage_while_splitting_loses_and_duplicates_nothing(tmp_path: Path, fast_backoff: None) -> None:
    """The store goes down half-way through a split: the retry dedupes what the split had landed."""
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        spool.append(b"".join(bad(n) if n in (10, 70) else line(n) for n in range(100)))
        store = Refusing(hint=False, outage_on_call=5)
        assert Writer(spool, store, dedupe=store.dedupe, max_batch_rows=100, interval=0.02).stop(10)
    assert sorted(store.ids) == [n for n in range(100) if n not in (10, 70)]
    assert len(store.ids) == 98  # none twice
    assert [json.loads(letter["line"])["event_id"] for letter in letters(tmp_path)] == [10, 70]


def test_dead_letters_keep_lines_that_are_not_utf8(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        spool.append(line(1) + b'{"event_id":2,"bad":"\xff"}\n')
        assert Writer(spool, Refusing(), interval=0.02).stop(10)
    [letter] = letters(tmp_path)
    assert base64.b64decode(letter["line_base64"]) == b'{"event_id":2,"bad":"\xff"}'


# -- a real kill -9 ---------------------------------------------------------------------------------

CHILD = r"""
import json, os, sys, time
from pathlib import Path
from tracker.ingest.spool import claim_spool
from tracker.ingest.writer import Writer

root, out, first, hold_after = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
batches = 0

def sink(table, data, rows):
    # Like a ClickHouse insert: the batch lands atomically, and the answer comes a little later.
    global batches
    batches += 1
    tmp = out / f".tmp-{os.getpid()}"
    tmp.write_bytes(data)
    os.replace(tmp, out / f"{os.getpid()}-{batches:06d}.jsonl")
    if batches == hold_after:
        os.write(1, b"held\n")  # the batch is in the store, not yet committed in the spool
        time.sleep(60)
    time.sleep(0.002)

def dedupe(data):
    held = {json.loads(raw)["event_id"] for f in out.glob("*.jsonl") for raw in f.read_bytes().splitlines()}
    keep = [raw + b"\n" for raw in data.splitlines() if json.loads(raw)["event_id"] not in held]
    with open(out.parent / "dedupe.log", "a") as log:
        log.write(f"{len(data.splitlines()) - len(keep)}\n")
    return b"".join(keep)

spool = claim_spool(root, max_bytes=1 << 30, segment_bytes=256 * 1024)
Writer(spool, sink, dedupe=dedupe, max_batch_rows=100, interval=0.005)
n = first
while True:
    spool.append(b'{"event_id":%d,"pad":"%s"}\n' % (n, b"x" * 80))
    os.write(1, b"%d\n" % n)  # acknowledged
    n += 1
"""


def _run_and_kill(root: Path, out: Path, first: int, *, min_acks: int, hold_after: int = 0) -> set[int]:
    """Run the child, SIGKILL it mid-stream, return every number it acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(out), str(first), str(hold_after)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    acked: set[int] = set()
    held = False
    started = time.monotonic()
    kill_at, deadline = started + random.uniform(0.1, 0.3), started + 20
    try:
        for raw in proc.stdout:
            if raw == b"held\n":
                held = True
            elif raw.endswith(b"\n"):
                acked.add(int(raw))
            now = time.monotonic()
            if held or (not hold_after and len(acked) >= min_acks and now >= kill_at) or now > deadline:
                break
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()  # what it printed before it died
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not hold_after or held, "the child never reached the held batch"
    for raw in rest.split(b"\n")[:-1]:  # a trailing partial number was not acknowledged
        if raw != b"held":
            acked.add(int(raw))
    return acked


def test_kill_9_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    root, out = tmp_path / "spool", tmp_path / "store"
    out.mkdir()
    acked: set[int] = set()
    # Round 2 is killed while a batch is in the store but not committed: the next start must
    # pass it through dedupe. The others are killed wherever they happen to be.
    for round_no, hold_after in enumerate((0, 5, 0, 0)):
        first = round_no * 10_000_000
        acked |= _run_and_kill(root, out, first, min_acks=3000 + round_no * 1000, hold_after=hold_after)

    spool = claim_spool(root, max_bytes=1 << 30)
    assert spool.directory.name == "0"  # the dead child's slot is free again: its lock died with it
    store = Store()

    def file_sink(table: str, data: bytes, rows: int) -> None:
        (out / f"final-{len(store.batches):06d}.jsonl").write_bytes(data)
        store(table, data, rows)

    def dedupe(data: bytes) -> bytes:
        held = {i for f in out.glob("*.jsonl") for i in ids(f.read_bytes())}
        keep = [raw + b"\n" for raw in data.splitlines() if json.loads(raw)["event_id"] not in held]
        with open(tmp_path / "dedupe.log", "a") as log:
            log.write(f"{len(data.splitlines()) - len(keep)}\n")
        return b"".join(keep)

    writer = Writer(spool, file_sink, dedupe=dedupe, interval=0.01)
    assert writer.stop(30)
    spool.close()

    delivered = Counter(i for f in out.glob("*.jsonl") for i in ids(f.read_bytes()))
    log_file = tmp_path / "dedupe.log"
    dropped = [int(x) for x in log_file.read_text().split()] if log_file.exists() else []
    print(f"\nacknowledged {len(acked)}, delivered {len(delivered)}, replays {len(dropped)}, "
          f"duplicates removed by dedupe {sum(dropped)}")  # fmt: skip
    missing = sorted(acked - set(delivered))
    twice = sorted(i for i, count in delivered.items() if count > 1)
    assert acked and not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
    assert not twice, f"{len(twice)} events delivered more than once, e.g. {twice[:5]}"
    assert sum(dropped) >= 1  # the held batch really was replayed and de-duplicated
