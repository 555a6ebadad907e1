"""Land the dead-lettered rows once their cause is fixed: `odnos ingest replay-dead-letters`.

A writer puts the lines the store refused for good into ``dead-letters.jsonl`` beside its spool
(``tracker.ingest.writer``). Once the cause is fixed (a column added, a server setting changed),
this sends them again. Each file is first renamed to ``dead-letters.replaying.jsonl``, so a
writer that refuses more rows meanwhile starts a new file and nothing is read twice or lost; the
lines go through the same refuse-and-split insert as the writer, those still refused go back into
the dead-letter file with the store's new message, and the replaying file is removed last. A
replay that dies half-way leaves the replaying file, which the next replay takes first, with the
lines already landed skipped (``drop_stored``): each row lands once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tracker.ingest.queue import drop_stored
from tracker.ingest.writer import (
    DEAD_LETTERS,
    append_dead_letters,
    dead_letter_line,
    insert_or_refuse,
)
from tracker.store.base import EventStore

REPLAYING = "dead-letters.replaying.jsonl"


@dataclass
class Replayed:
    """What a replay did, over every spool folder."""

    landed: int = 0
    refused: int = 0
    already: int = 0  # landed by an earlier replay that did not finish
    unreadable: int = 0  # records that are not a dead-letter record at all: kept in the file
    errors: list[str] = field(default_factory=list)  # the store's messages for the rows still refused


def replay_dead_letters(spool_root: Path, store: EventStore) -> Replayed:
    """Send every dead-lettered row under ``spool_root`` again; see the module docstring."""
    result = Replayed()
    for folder in sorted(p for p in spool_root.iterdir() if p.is_dir()) if spool_root.is_dir() else []:
        replaying = folder / REPLAYING
        if not replaying.exists():
            try:
                (folder / DEAD_LETTERS).rename(replaying)
            except FileNotFoundError:
                continue
        _replay_file(replaying, folder / DEAD_LETTERS, store, result)
        replaying.unlink()
    return result


def _replay_file(path: Path, dead_letters: Path, store: EventStore, result: Replayed) -> None:
    by_table: dict[str, list[bytes]] = {}
    kept: list[bytes] = []
    for raw in path.read_bytes().splitlines():
        try:
            record = orjson.loads(raw)
            by_table.setdefault(record["table"], []).append(dead_letter_line(record))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            kept.append(raw + b"\n")
    for table, lines in by_table.items():
        data = b"".join(lines)
        fresh = drop_stored(store, data) if table == "events" else data
        result.already += len(lines) - fresh.count(b"\n")
        rows = fresh.count(b"\n")
        refused = insert_or_refuse(store.insert_json_lines, table, fresh, rows) if rows else []
        if refused:
            append_dead_letters(dead_letters, table, refused)
            result.errors.extend(error.server_message for _, error in refused)
        result.landed += rows - len(refused)
        result.refused += len(refused)
    if kept:
        with dead_letters.open("ab") as file:
            file.writelines(kept)
        result.unreadable += len(kept)
