"""`odnos ingest replay-dead-letters`: send the rows the store refused again, once the cause is fixed."""

from __future__ import annotations

import argparse
from collections import Counter

from tracker.cli.common import open_runtime
from tracker.ingest.dead_letters import replay_dead_letters


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ingest", help="the collector's ingestion: land dead-lettered rows",
                            description="What the collector's writers could not land. /healthz counts "
                                        "the dead-lettered rows (dead_letter_rows).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    replay = actions.add_parser(
        "replay-dead-letters", help="insert the dead-lettered rows again",
        description="Insert the rows the event store refused for good (kept in dead-letters.jsonl in "
                    "each spool folder of ODNOS_DATA_DIR) once their cause is fixed. Rows landed leave "
                    "the file; rows still refused stay in it with the store's new message. Run it on "
                    "the machine whose collector refused them.")
    replay.set_defaults(run=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    with open_runtime() as runtime:
        result = replay_dead_letters(runtime.settings.data_path / "spool", runtime.store)
    print(f"landed {result.landed:,} rows, still refused {result.refused:,}"
          + (f", already landed before {result.already:,}" if result.already else "")
          + (f", unreadable records kept {result.unreadable:,}" if result.unreadable else ""))
    for message, count in Counter(" ".join(m.split())[:300] for m in result.errors).most_common(5):
        print(f"  {count:,} refused: {message}")
    return 1 if result.refused or result.unreadable else 0
