"""`odnos sql "SELECT ..."`: a read-only query on the event store, rows as tab-separated lines."""

from __future__ import annotations

import argparse

from tracker.settings import load_settings
from tracker.store import open_store


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sql", help="run a read-only query on the event store",
                            description="Run one read-only query (the store refuses writes on this "
                                        "connection) and print its rows as tab-separated lines.")
    parser.add_argument("query", help='for example "SELECT name, count() FROM events GROUP BY name"')
    parser.add_argument("--header", action="store_true", help="print the column names first")
    parser.set_defaults(run=run)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def run(args: argparse.Namespace) -> int:
    store = open_store(load_settings(), readonly=True)
    try:
        # The user's text is the query itself (read-only), so literal % signs stay as written.
        result = store.query(args.query.replace("%", "%%"), name="odnos sql")
    finally:
        store.close()
    if args.header:
        print("\t".join(result.columns))
    for row in result.rows:
        print("\t".join(_cell(v) for v in row))
    return 0
