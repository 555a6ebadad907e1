"""The durable spool on a real file system: segments, limits, checkpoints, restart and torn lines."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from tracker.ingest.spool import CHECKPOINT, Spool, SpoolError, SpoolFull, SpoolLocked, claim_spool
from tracker.ingest.writer import Writer


def line(n: int, pad: int = 20) -> bytes:
    return b'{"event_id":%d,"pad":"%s"}\n' % (n, b"x" * pad)


def ids(data: bytes) -> list[int]:
    return [json.loads(raw)["event_id"] for raw in data.splitlines()]


def segments(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.jsonl"))


class Collect:
    """A sink that keeps what it is given, like a store that never fails."""

    def __init__(self) -> None:
        self.batches: list[bytes] = []

    def __call__(self, table: str, data: bytes, rows: int) -> None:
        assert table == "events" and rows == data.count(b"\n") and data.endswith(b"\n")
        self.batches.append(data)

    @property
    def ids(self) -> list[int]:
        return [i for batch in self.batches for i in ids(batch)]


def drain(spool: Spool, sink: Collect | None = None, **kw: object) -> Collect:
    sink = sink or Collect()
    writer = Writer(spool, sink, interval=0.02, **kw)  # type: ignore[arg-type]
    assert writer.stop(10)
    return sink


def test_append_takes_whole_lines_only(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=10_000) as spool:
        spool.append(b"")  # nothing to do
        with pytest.raises(ValueError):
            spool.append(b'{"event_id":1}')
        spool.append(line(1) + line(2))
        assert spool.pending_bytes == 2 * len(line(1))
        batch = spool.read_batch(1 << 20, 100)
        assert batch is not None and ids(batch.data) == [1, 2] and batch.rows == 2 and not batch.replay
        assert segments(tmp_path) == ["00000001.jsonl"]


def test_rotation_and_deletion_of_consumed_segments(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=500) as spool:
        for n in range(100):
            spool.append(line(n))
        written = segments(tmp_path)
        assert len(written) >= 8  # ~4,700 bytes in 500-byte segments
        assert all(os.path.getsize(tmp_path / s) <= 500 + len(line(0)) for s in written)
        sink = drain(spool)
        assert sink.ids == list(range(100))
        assert all(len(b) <= 500 + len(line(0)) for b in sink.batches)  # a batch never spans segments
        # Everything consumed is deleted; at most the segment still open for appends stays.
        assert len(segments(tmp_path)) <= 1
        assert spool.pending_bytes == 0
        spool.append(line(100))
        assert drain(spool).ids == [100]


def test_spool_full_at_the_limit_and_recovery(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    size = len(line(0))
    with Spool(tmp_path, max_bytes=10 * size) as spool:
        for n in range(10):
            spool.append(line(n))
        with caplog.at_level(logging.ERROR, logger="tracker.ingest.spool"):
            for _ in range(5):
                with pytest.raises(SpoolFull) as err:
                    spool.append(line(99))
        assert err.value.status == 503 and err.value.code == "spool_full" and "full" in err.value.message
        full_logs = [r for r in caplog.records if "is full" in r.getMessage()]
        assert len(full_logs) == 1  # one clear line, not one per refused request
        assert spool.stats()["full"] is True
        assert drain(spool).ids == list(range(10))  # the refused line was never stored
        spool.append(line(10))
        assert spool.stats()["full"] is False


def test_restart_replays_uncommitted_data(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        for n in range(5):
            spool.append(line(n))
        assert drain(spool).ids == list(range(5))
        for n in range(5, 12):
            spool.append(line(n))  # accepted, never inserted: the process stops here
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        assert spool.pending_bytes == sum(len(line(n)) for n in range(5, 12))
        spool.append(line(12))
        assert drain(spool).ids == list(range(5, 13))  # once each, in order
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        assert spool.pending_bytes == 0
        assert drain(spool).ids == []
        assert segments(tmp_path) == []


def test_inflight_batch_at_crash_goes_through_dedupe(tmp_path: Path) -> None:
    store = Collect()
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        for n in range(10):
            spool.append(line(n))
        batch = spool.read_batch(1 << 20, 4)
        assert batch is not None and ids(batch.data) == [0, 1, 2, 3]
        spool.begin(batch)
        store("events", batch.data, batch.rows)  # the store has it, then the process dies
    assert json.loads((tmp_path / CHECKPOINT).read_text())["inflight"] is not None

    seen: list[bytes] = []

    def dedupe(data: bytes) -> bytes:
        seen.append(data)
        held = set(store.ids)
        return b"".join(raw + b"\n" for raw in data.splitlines() if json.loads(raw)["event_id"] not in held)

    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        assert spool.stats()["replaying"] is True
        writer = Writer(spool, store, dedupe=dedupe, interval=0.02)
        assert writer.stop(10)
        assert seen == [batch.data]  # exactly the batch in flight, nothing more
        assert writer.deduplicated_rows == 4
    assert store.ids == list(range(10))


def test_sink_failure_after_begin_is_replayed_through_dedupe_only_once(tmp_path: Path) -> None:
    """The replay range is only the in-flight batch: later data is not sent to dedupe."""
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        for n in range(10):
            spool.append(line(n))
        spool.begin(spool.read_batch(1 << 20, 3))  # type: ignore[arg-type]
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        first = spool.read_batch(1 << 20, 100)
        assert first is not None and first.replay and ids(first.data) == [0, 1, 2]
        spool.commit(first)
        second = spool.read_batch(1 << 20, 100)
        assert second is not None and not second.replay and ids(second.data) == list(range(3, 10))


def test_torn_trailing_line_is_cut_at_startup(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        for n in range(3):
            spool.append(line(n))
    last = tmp_path / segments(tmp_path)[-1]
    with open(last, "ab") as f:
        f.write(b'{"event_id":3,"pa')  # a write cut short by kill -9: never acknowledged
    with caplog.at_level(logging.WARNING, logger="tracker.ingest.spool"):
        spool = Spool(tmp_path, max_bytes=1 << 20)
    with spool:
        assert any("torn" in r.getMessage() for r in caplog.records)
        assert last.read_bytes().endswith(line(2))
        spool.append(line(4))
        assert drain(spool).ids == [0, 1, 2, 4]


def test_a_file_holding_only_a_fragment_is_emptied(tmp_path: Path) -> None:
    (tmp_path / "00000001.jsonl").write_bytes(b'{"event_id":1')
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        assert spool.pending_bytes == 0
        assert drain(spool).ids == []


def test_only_the_last_segment_is_trimmed(tmp_path: Path) -> None:
    """A broken line elsewhere is not a crash artefact: it is left for the store to reject loudly."""
    (tmp_path / "00000001.jsonl").write_bytes(line(1) + b"{broken")
    (tmp_path / "00000002.jsonl").write_bytes(line(2))
    with Spool(tmp_path, max_bytes=1 << 20):
        assert (tmp_path / "00000001.jsonl").read_bytes().endswith(b"{broken")


def test_checkpoint_beyond_the_data_is_clamped(tmp_path: Path) -> None:
    """After a machine crash the lazily fsync-ed data may be shorter than the eager checkpoint."""
    (tmp_path / "00000003.jsonl").write_bytes(line(1) + line(2))
    (tmp_path / CHECKPOINT).write_text(json.dumps({"committed": [3, 10_000], "inflight": [3, 20_000]}))
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        assert spool.pending_bytes == 0
        spool.append(line(3))
        assert segments(tmp_path)[-1] == "00000004.jsonl"  # numbering continues after the old segment
        assert drain(spool).ids == [3]


def test_segment_deleted_after_checkpoint_moved_on(tmp_path: Path) -> None:
    """A crash between writing the checkpoint and deleting the consumed segment."""
    (tmp_path / "00000001.jsonl").write_bytes(line(1))
    (tmp_path / "00000002.jsonl").write_bytes(line(2))
    (tmp_path / CHECKPOINT).write_text(json.dumps({"committed": [2, 0], "inflight": None}))
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        assert segments(tmp_path) == ["00000002.jsonl"]
        assert drain(spool).ids == [2]


def test_numbering_continues_after_everything_was_consumed(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT).write_text(json.dumps({"committed": [7, 0], "inflight": None}))
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        spool.append(line(1))
        assert segments(tmp_path) == ["00000007.jsonl"]
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        assert drain(spool).ids == [1]


def test_unreadable_checkpoint_replays_everything_through_dedupe(tmp_path: Path) -> None:
    (tmp_path / "00000001.jsonl").write_bytes(line(1) + line(2))
    (tmp_path / "00000002.jsonl").write_bytes(line(3))
    (tmp_path / CHECKPOINT).write_text("{garbage")
    dedupe_saw: list[int] = []

    def dedupe(data: bytes) -> bytes:
        dedupe_saw.extend(ids(data))
        return data

    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        assert drain(spool, dedupe=dedupe).ids == [1, 2, 3]
    assert dedupe_saw == [1, 2, 3]


def test_one_owner_per_directory(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=100)
    with pytest.raises(SpoolLocked, match=str(os.getpid())):
        Spool(tmp_path, max_bytes=100)
    first.close()
    Spool(tmp_path, max_bytes=100).close()


def test_claim_spool_takes_the_lowest_free_slot(tmp_path: Path) -> None:
    a = claim_spool(tmp_path, max_bytes=100)
    b = claim_spool(tmp_path, max_bytes=100)
    assert (a.directory.name, b.directory.name) == ("0", "1")
    a.close()
    c = claim_spool(tmp_path, max_bytes=100)
    assert c.directory.name == "0"  # a restarted worker takes over its predecessor's slot
    b.close()
    c.close()


def test_closed_spool_refuses_appends(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100)
    spool.close()
    with pytest.raises(SpoolError):
        spool.append(line(1))


def test_concurrent_appends_are_whole_and_ordered_per_thread(tmp_path: Path) -> None:
    threads, per_thread = 8, 2000
    with Spool(tmp_path, max_bytes=1 << 30, segment_bytes=64 * 1024) as spool:
        sink = Collect()
        writer = Writer(spool, sink, interval=0.01, max_batch_rows=500)

        def work(t: int) -> None:
            for i in range(per_thread):
                spool.append(line(t * 1_000_000 + i))

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert writer.stop(20)
    got = sink.ids  # every line parsed: none torn or interleaved
    assert len(got) == len(set(got)) == threads * per_thread
    for t in range(threads):
        mine = [i for i in got if i // 1_000_000 == t]
        assert mine == sorted(mine)


def test_fsync_is_grouped_not_per_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    with Spool(tmp_path, max_bytes=1 << 30, fsync_interval=0.05) as spool:
        for n in range(5000):
            spool.append(line(n))
        data_fd = spool._active_fd
        threading.Event().wait(0.2)
        assert 1 <= calls.count(data_fd) < 10


def test_stats_give_the_oldest_waiting_lines_age_across_a_restart(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        assert spool.stats()["oldest_pending_seconds"] is None
        spool.append(line(0))
        time.sleep(0.5)
        spool.append(line(1))
        assert 0.5 <= spool.stats()["oldest_pending_seconds"] < 5
        batch = spool.read_batch(1 << 20, 1)  # the oldest line alone lands
        spool.begin(batch)
        spool.commit(batch)
        assert spool.stats()["oldest_pending_seconds"] < 0.5  # line 1 is younger
        time.sleep(0.3)
    with Spool(tmp_path, max_bytes=1 << 20) as spool:  # what a previous process left is at least this old
        assert 0.3 <= spool.stats()["oldest_pending_seconds"] < 5
        drain(spool)
        assert spool.stats()["oldest_pending_seconds"] is None
