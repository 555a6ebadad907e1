"""Rows the event store refuses for good: split out to a dead-letter file while every other row lands once.

On both engines (chDB and the ClickHouse server): how each backend tells "these rows can never be
stored" from "the store is unavailable", the writer's split of a refused batch, and, through the
real collector, the count ``/healthz`` reports.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from tests.fixtures.clickhouse import free_port
from tests.fixtures.collector import running_collector
from tests.fixtures.processes import odnos_env, run_odnos
from tracker.errors import QueryError, RowsRejected, StoreUnavailable
from tracker.events import event_row
from tracker.ingest.dead_letters import REPLAYING, replay_dead_letters
from tracker.ingest.queue import EventQueue
from tracker.ingest.spool import Spool
from tracker.ingest.writer import DEAD_LETTERS, Writer, append_dead_letters
from tracker.settings import ClickHouseTarget, load_settings
from tracker.store.clickhouse_store import ClickHouseStore
from tracker.store.migrate import migrate


def good_line(marker: str, n: int) -> bytes:
    return orjson.dumps(event_row("pageview", time.time(), {"t": marker, "n": str(n)}, site_id="s",
                                  url=f"https://shop.example.com/{n}")) + b"\n"


def bad_lines(marker: str) -> dict[bytes, tuple[str, ...]]:
    """Lines neither engine can store, each with the ClickHouse error codes it may get."""
    def row(**changes: object) -> bytes:
        values = event_row("pageview", time.time(), {"t": marker}, site_id="s")
        return orjson.dumps({**values, **changes}) + b"\n"

    return {
        row(scroll=50.0): ("Code: 27",),  # a float in a UInt8 column
        b"not json at all\n": ("Code: 27",),
        row(event_id="not-a-uuid"): ("Code: 376", "Code: 27"),  # 18.16 reads 36 characters, then fails
        row(**{"props.key": ["t", "x"], "props.value": [marker]}): ("Code: 190",),  # Nested sizes differ
    }


def landed(store, marker: str) -> list[int]:
    rows = store.query("SELECT props.value[indexOf(props.key, 'n')] FROM events "
                       "WHERE props.value[indexOf(props.key, 't')] = %(m)s", {"m": marker}).rows
    return sorted(int(n) for (n,) in rows)


def dead_letters(directory: Path) -> list[dict]:
    path = directory / DEAD_LETTERS
    return [json.loads(raw) for raw in path.read_bytes().splitlines()] if path.exists() else []


def test_backends_tell_refused_rows_from_other_failures(store) -> None:
    migrate(store)
    marker = uuid.uuid4().hex
    ok = good_line(marker, 1)
    with pytest.raises(RowsRejected) as refused:
        store.insert_json_lines("events", ok + b"not json\n" + good_line(marker, 2), 3)
    assert refused.value.row == 2 and "Code: 27" in refused.value.server_message
    assert landed(store, marker) == []  # an insert the store refuses lands nothing
    with pytest.raises(RowsRejected) as mismatched:  # refused after parsing: no row named
        store.insert_json_lines("events", ok + next(k for k, v in bad_lines(marker).items()
                                                    if v == ("Code: 190",)), 2)
    assert mismatched.value.row is None and "Code: 190" in mismatched.value.server_message
    with pytest.raises(QueryError) as missing:  # not the rows' fault: retried, never dead-lettered
        store.insert_json_lines("no_such_table", ok, 1)
    assert not isinstance(missing.value, RowsRejected)
    store.insert_json_lines("events", ok, 1)
    assert landed(store, marker) == [1]


def test_an_unreachable_server_is_unavailable_not_refusing() -> None:
    target = ClickHouseTarget(embedded=False, database="x", host="127.0.0.1", port=free_port(),
                              http_port=free_port())
    store = ClickHouseStore(target)
    with pytest.raises(StoreUnavailable):
        store.insert_json_lines("events", b'{"x":1}\n', 1)
    store.close()


def test_refused_rows_are_dead_lettered_and_every_other_row_lands_once(
        store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    migrate(store)
    marker = uuid.uuid4().hex
    bad = bad_lines(marker)
    goods = [good_line(marker, n) for n in range(40)]
    lines = [*goods[:1], *list(bad)[:2], *goods[1:20], *list(bad)[2:], *goods[20:]]
    caplog.set_level(logging.ERROR, "tracker.ingest.writer")
    with Spool(tmp_path, max_bytes=1 << 24) as spool:
        spool.append(b"".join(lines))
        writer = Writer(spool, store.insert_json_lines, interval=0.02)
        assert writer.stop(60)
        assert spool.pending_bytes == 0  # the spool moved past the refused rows
        stats = writer.stats()
    assert landed(store, marker) == list(range(40))
    letters = dead_letters(tmp_path)
    assert sorted(letter["line"].encode() + b"\n" for letter in letters) == sorted(bad)
    for letter in letters:
        assert any(code in letter["error"] for code in bad[letter["line"].encode() + b"\n"]), letter
        assert letter["table"] == "events"
        at = datetime.fromisoformat(letter["at"])
        assert abs((datetime.now(UTC) - at).total_seconds()) < 60
    assert (stats["dead_letter_rows"], stats["inserted_rows"], stats["failures"]) == (4, 40, 0)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "4 of 44" in errors[0].getMessage()  # one line per refused batch
    with Spool(tmp_path, max_bytes=1 << 24) as spool:  # the count is the file's, across restarts
        writer = Writer(spool, store.insert_json_lines)
        assert writer.stats()["dead_letter_rows"] == 4
        writer.stop(5)


def test_a_replayed_batch_with_a_refused_row_still_lands(store, tmp_path: Path) -> None:
    """After a crash mid-insert the batch goes through dedupe, which must not choke on a bad line."""
    migrate(store)
    marker = uuid.uuid4().hex
    lines = [good_line(marker, 0), b"{broken\n", good_line(marker, 1), good_line(marker, 2)]
    store.insert_json_lines("events", lines[0], 1)  # the crashed process landed this one
    settings = load_settings({"data_dir": str(tmp_path)}, environ={})
    slot = settings.data_path / "spool" / "0"
    with Spool(slot, max_bytes=1 << 24) as spool:
        spool.append(b"".join(lines))
        spool.begin(spool.read_batch(1 << 20, 100))  # handed to the store, then the process died
    queue = EventQueue(settings, store)
    try:
        assert queue.flush(60)
        stats = queue.stats()
    finally:
        queue.close()
    assert landed(store, marker) == [0, 1, 2]
    assert [letter["line"] for letter in dead_letters(slot)] == ["{broken"]
    assert (stats["deduplicated_rows"], stats["dead_letter_rows"]) == (1, 1)


@pytest.mark.server
def test_healthz_counts_dead_letters_of_the_collector(clickhouse_server, tmp_path: Path) -> None:
    """A worker that takes over a spool holding a refused row lands the rest and says so."""
    marker = uuid.uuid4().hex
    bad = b'{"event_id":"' + str(uuid.uuid4()).encode() + b'","scroll":50.0}\n'

    def seed(data: Path) -> None:
        with Spool(data / "spool" / "0", max_bytes=1 << 24) as spool:
            spool.append(good_line(marker, 0) + bad + good_line(marker, 1))

    with running_collector(clickhouse_server, tmp_path / "data", before_start=seed) as collector:
        deadline = time.monotonic() + 20
        while collector.health()["ingestion"]["dead_letter_rows"] != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert collector.health()["ingestion"]["dead_letter_rows"] == 1
        assert landed(collector.store, marker) == [0, 1]
        m = uuid.uuid4().hex
        assert collector.post(collector.event(m))[0] == 202  # and it keeps ingesting
        assert len(collector.marked(m, 1)) == 1
        letters = dead_letters(tmp_path / "data" / "spool" / "0")
        assert [letter["line"].encode() + b"\n" for letter in letters] == [bad]
        refusals = [line for line in collector.server.output if "refused" in line and "dead-letter" in line]
        assert len(refusals) == 1, "".join(collector.server.output)  # one line, naming the file


def test_replay_lands_the_rows_once_their_cause_is_fixed_and_keeps_the_rest(store, tmp_path: Path) -> None:
    """A column too narrow for a row is widened after it: refused, then landed by the replay, once."""
    migrate(store)
    marker = uuid.uuid4().hex
    needs_column = orjson.dumps({**orjson.loads(good_line(marker, 7)), "scroll": 62.5}) + b"\n"
    slot = tmp_path / "spool" / "0"
    with Spool(slot, max_bytes=1 << 24) as spool:
        spool.append(good_line(marker, 1) + needs_column + b"never an event\n")
        writer = Writer(spool, store.insert_json_lines, interval=0.02)
        assert writer.stop(60)
        assert [letter["line"] for letter in dead_letters(slot)] == [needs_column.decode().rstrip("\n"),
                                                                     "never an event"]
        assert landed(store, marker) == [1]
        store.command("ALTER TABLE events MODIFY COLUMN scroll Float32")  # the fix
        # A replay that died after landing the row left its replaying file behind.
        (slot / DEAD_LETTERS).rename(slot / REPLAYING)
        store.insert_json_lines("events", needs_column, 1)
        result = replay_dead_letters(tmp_path / "spool", store)
        assert (result.landed, result.already, result.refused) == (0, 1, 1)
        assert landed(store, marker) == [1, 7]
        [left] = dead_letters(slot)
        assert left["line"] == "never an event" and "Code:" in left["error"]
        assert not (slot / REPLAYING).exists()
        assert writer.stats()["dead_letter_rows"] == 1  # the running writer's count follows the file
    again = replay_dead_letters(tmp_path / "spool", store)
    assert (again.landed, again.refused) == (0, 1) and len(dead_letters(slot)) == 1


def test_the_replay_command_lands_a_fixed_row_in_the_embedded_store(tmp_path: Path) -> None:
    env = odnos_env(tmp_path)
    assert run_odnos("migrate", env=env).returncode == 0
    marker = uuid.uuid4().hex
    slot = tmp_path / "spool" / "3"
    slot.mkdir(parents=True)
    append_dead_letters(slot / DEAD_LETTERS, "events", [(good_line(marker, 5), RowsRejected(
        "refused", server_message="Code: 117. the store of the day refused it"))])
    replayed = run_odnos("ingest", "replay-dead-letters", env=env)
    assert (replayed.returncode, replayed.stdout.splitlines()[0]) == (0, "landed 1 rows, still refused 0")
    count = run_odnos("sql", f"SELECT count() FROM events WHERE props.value[1] = '{marker}'", env=env)
    assert count.stdout.strip() == "1"
    assert dead_letters(slot) == []
