"""`odnos sql "SELECT ..."`: a read-only query on the event store, rows as tab-separated lines."""

from __future__ import annotations

import argparse
import re

from tracker.cli.common import open_reader
from tracker.errors import OdnosError, QueryError

# The command prints rows itself, as tab-separated lines: a FORMAT of the user's own has no place.
_OWN_FORMAT = re.compile(r"\bFORMAT\s+\w+\s*;?\s*$", re.IGNORECASE)


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


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run(args: argparse.Namespace) -> int:
    if _OWN_FORMAT.search(args.query):
        raise OdnosError("odnos sql prints the rows as tab-separated lines itself: leave out the FORMAT "
                         "clause (add --header for the column names)", code="bad_argument")
    with open_reader() as store:
        try:
            # The user's text is the query itself (read-only), so literal % signs stay as written. The
            # store's message names the query by what the user typed, on one line.
            result = store.query(args.query.replace("%", "%%"), name=_one_line(args.query))
        except QueryError as exc:
            raise QueryError(_one_line(exc.message)) from None
    if args.header:
        print("\t".join(result.columns))
    for row in result.rows:
        print("\t".join(_cell(v) for v in row))
    return 0
