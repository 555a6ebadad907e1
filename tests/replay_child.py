"""One step of tests/test_replay_exactly_once.py, run as its own process on the real store and queue.

Each step is a process because the crash step must die by SIGKILL, and because chDB holds its
folder for one process and a process for one folder. Settings come from the ``ODNOS_*`` variables
the test sets; results are printed as one JSON object on the last line of stdout.

    python -m tests.replay_child crash ROWS_FILE KILL_AFTER
        migrate, queue the rows of ROWS_FILE (JSON lines) through a real ``EventQueue``, and kill
        this process with SIGKILL right after its KILL_AFTER-th insert into ``events`` returned,
        before the writer checkpoints the batch in the spool
    python -m tests.replay_child ids
        the event ids the ``events`` table holds
    python -m tests.replay_child replay [--keep-all]
        open the same spool and store in a new ``EventQueue``, land what the spool holds, report
        the writer's counters and the table's ids; ``--keep-all`` swaps the queue's dedupe for one
        that keeps every line, to show what the crash does without it
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import orjson

from tracker.ingest.queue import EventQueue
from tracker.settings import load_settings
from tracker.store import EventStore, open_store
from tracker.store.migrate import migrate


def stored_ids(store: EventStore) -> list[str]:
    return [row[0] for row in store.query("SELECT toString(event_id) FROM events", name="ids").rows]


def crash(rows_file: Path, kill_after: int) -> None:
    settings = load_settings()
    store = open_store(settings)
    migrate(store)
    real_insert = store.insert_json_lines
    inserts = 0

    def insert_then_die(table: str, data: bytes, rows: int) -> None:
        nonlocal inserts
        real_insert(table, data, rows)
        if table == "events":
            inserts += 1
            if inserts == kill_after:  # the store holds the batch; the spool still has it in flight
                os.kill(os.getpid(), signal.SIGKILL)

    store.insert_json_lines = insert_then_die  # the queue's writer takes its sink from here
    queue = EventQueue(settings, store)
    queue.submit(orjson.loads(line) for line in rows_file.read_bytes().splitlines())
    queue.flush(120)
    sys.exit(3)  # not killed: the test fails on this exit code


def replay(keep_all: bool) -> dict:
    settings = load_settings()
    store = open_store(settings)
    if keep_all:
        EventQueue.dedupe = lambda self, data: data  # type: ignore[method-assign]
    queue = EventQueue(settings, store)
    landed = queue.flush(120)
    stats = queue.stats()
    queue.close()
    return {"landed": landed, "stats": stats, "ids": stored_ids(store)}


def main(argv: list[str]) -> None:
    step = argv[0]
    if step == "crash":
        crash(Path(argv[1]), int(argv[2]))
    elif step == "ids":
        print(json.dumps({"ids": stored_ids(open_store(load_settings(), readonly=True))}))
    elif step == "replay":
        print(json.dumps(replay("--keep-all" in argv[1:])))
    else:
        raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
