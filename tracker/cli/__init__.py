"""The `odnos` command: one subcommand per module in this package, errors as one plain line.

Each module exposes ``register(subparsers)`` which adds its subcommand with a ``run(args)``
handler. A command that creates something prints its id or URL alone on the last line of standard
output, so scripts can capture it with ``tail -n 1``. Any ``OdnosError`` (bad setting, store
unreachable, data folder in use, port taken) is printed as ``odnos: error: ...`` with how to fix
it, and the exit code is 2; no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from tracker import __version__
from tracker.cli import (
    apikeys,
    contacts,
    demo,
    ingest,
    links,
    migrate,
    rules,
    segments,
    send,
    serve,
    sites,
    sql,
    status,
    templates,
    users,
)
from tracker.errors import OdnosError
from tracker.remote import client as remote

COMMANDS = (serve, migrate, demo, users, sites, sql, links, templates, contacts, segments, rules, send,
            apikeys, ingest, status)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes in the house style: one ``error:`` line and where the help is, exit code 2.

    Subcommands' parsers are of this class too (argparse makes them with the parent's class).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n(see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="odnos",
        description="odnos: web analytics and tracked email. Settings come from ODNOS_* variables "
                    "and the TOML file named by ODNOS_CONFIG (see the README's settings table).")
    parser.add_argument("--version", action="version", version=f"odnos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, cwd: str | None = None) -> int:
    """Run one command line. ``cwd``: a running server runs it for a client working there."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The store turns a failed connection into one clear error; the driver's own traceback is noise.
    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv or sys.argv[1:])])
    try:
        if cwd is not None:
            from tracker.remote.server import beside_client

            beside_client(args, cwd)
        elif (code := remote.forward(args, argv)) is not None:  # the server holding the folder ran it
            return code
        return args.run(args) or 0
    except OdnosError as exc:
        print(f"odnos: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
