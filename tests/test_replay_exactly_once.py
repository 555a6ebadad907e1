"""Exactly once across a real crash: kill -9 between ClickHouse accepting a batch and the spool checkpoint.

A child process runs the real ``EventQueue`` on the real store (chDB, the session's ClickHouse
server, and a server whose time zone is not UTC, as many self-hosted servers run in local time)
and kills itself with SIGKILL right after an insert into ``events`` returned, before the writer
commits the batch in the spool. The store then holds the batch and the spool still has it in
flight. A new process opens the same spool and store, and its queue's dedupe must skip the rows
that landed: every event ends up in the table exactly once. The control test replays the same
crash with a dedupe that keeps everything and sees the batch in flight twice, which is what the
first test would catch if dedupe missed it.

Every step is a child process (tests/replay_child.py): chDB holds its folder for one process.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from tests.fixtures.clickhouse import ClickHouseServer
from tests.fixtures.processes import odnos_env
from tracker.events import event_row
from tracker.ingest.spool import Spool
from tracker.settings import load_settings
from tracker.store.clickhouse_store import ClickHouseStore

ROOT = Path(__file__).resolve().parent.parent
BATCH = 6000  # more ids than dedupe asks about in one query, so its chunking is exercised
EVENTS = 15_000  # batches of 6,000, 6,000 (killed after its insert) and 3,000 (never sent)
KILL_AFTER = 2


@pytest.fixture(scope="module")
def local_time_server() -> Iterator[ClickHouseServer]:
    """A server whose time zone is Asia/Kolkata (UTC+05:30): text dates in SQL are read in it."""
    root = Path(tempfile.mkdtemp(prefix="odnos-ch-tz-"))
    server = ClickHouseServer(root, extra_args=["--timezone=Asia/Kolkata"])
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["chdb", "server", "server_in_local_time"])
def child_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """ODNOS_* variables for the child steps: a fresh data folder, and a fresh database on a server."""
    env = odnos_env(tmp_path / "data", ODNOS_BATCH_ROWS=str(BATCH), ODNOS_BATCH_INTERVAL="0.05")
    server = None
    if request.param != "chdb":
        server = request.getfixturevalue("clickhouse_server" if request.param == "server"
                                         else "local_time_server")
        env["ODNOS_CLICKHOUSE_URL"] = server.url_for("t_" + uuid.uuid4().hex[:12])
    yield env
    if server is not None:
        store = ClickHouseStore(load_settings(environ=env).clickhouse)
        with contextlib.suppress(Exception):
            store.command(f"DROP DATABASE IF EXISTS {store.database}")
        store.close()


def make_rows(path: Path) -> list[str]:
    """EVENTS rows over 25 days across a month boundary (two partitions); returns their ids in order."""
    rng = random.Random(14)
    start = datetime(2026, 1, 20, tzinfo=UTC).timestamp()
    rows = [event_row("pageview", ts=start + rng.uniform(0, 25 * 86400), event_id=str(uuid.uuid4()),
                      site_id="s1", visitor_id=f"v{rng.randrange(500)}", url="https://shop.example/p")
            for _ in range(EVENTS)]
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return [row["event_id"] for row in rows]


def run_child(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.replay_child", *args], env=env, cwd=ROOT,
                          capture_output=True, timeout=180)


def child_json(env: dict[str, str], *args: str) -> dict:
    done = run_child(env, *args)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def crash_after_second_insert(env: dict[str, str], tmp_path: Path) -> list[str]:
    """Run the crashing child; check the store holds batches 1-2 and the spool has batch 2 in flight."""
    ids = make_rows(tmp_path / "rows.jsonl")
    died = run_child(env, "crash", str(tmp_path / "rows.jsonl"), str(KILL_AFTER))
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-3000:]

    landed = child_json(env, "ids")["ids"]
    assert Counter(landed) == Counter(ids[: KILL_AFTER * BATCH])  # both inserts are in the store

    spool = Spool(Path(env["ODNOS_DATA_DIR"]) / "spool" / "0", max_bytes=0)
    try:
        batch = spool.read_batch(1 << 30, 1 << 30)
    finally:
        spool.close()
    assert batch is not None and batch.replay  # the second batch was never checkpointed
    in_flight = [orjson.loads(line)["event_id"] for line in batch.data.splitlines()]
    assert in_flight == ids[BATCH : KILL_AFTER * BATCH]
    return ids


def test_kill_9_after_the_insert_lands_every_event_exactly_once(child_env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    ids = crash_after_second_insert(child_env, tmp_path)

    result = child_json(child_env, "replay")

    assert result["landed"]
    stored = Counter(result["ids"])
    assert len(result["ids"]) == len(stored) == EVENTS  # rows == distinct ids == appended
    assert set(stored) == set(ids)
    stats = result["stats"]
    assert stats["deduplicated_rows"] == BATCH  # the batch in flight was recognised as stored
    assert stats["inserted_rows"] == EVENTS - KILL_AFTER * BATCH
    assert stats["pending_bytes"] == 0 and not stats["replaying"]


def test_without_dedupe_the_same_crash_stores_the_batch_twice(child_env: dict[str, str],
                                                              tmp_path: Path) -> None:
    ids = crash_after_second_insert(child_env, tmp_path)

    result = child_json(child_env, "replay", "--keep-all")

    twice = sorted(i for i, n in Counter(result["ids"]).items() if n == 2)
    assert len(result["ids"]) == EVENTS + BATCH
    assert twice == sorted(ids[BATCH : KILL_AFTER * BATCH])
