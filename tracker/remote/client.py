"""The CLI's side: send a command that needs the store to the `odnos serve` holding the folder.

``forward`` decides. A command goes through the server when it opens the event store
(``FORWARDED``), the store is embedded, and the folder's key file names a server that still holds
the folder lock; otherwise it runs here as always (server mode never forwards: a ClickHouse server
takes many clients). Arguments were parsed here first, so a typo gets its usage error without a
round trip; the server parses the same argv again and runs the same handler. Its output is written
to this process's streams as it arrives, and the exit code is the command's. Ctrl+C here closes the
connection, which interrupts the command in the server.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import sys
import urllib.parse
from collections.abc import Sequence

import orjson

from tracker.errors import OdnosError
from tracker.remote import keyfile
from tracker.remote.keyfile import ServerKey
from tracker.settings import Settings, load_settings

ROUTE = "/_odnos/cli"
# Settings that change what a forwarded command does. The server runs it with its own; when the
# client's differ (ODNOS_SMTP_URL set in this shell only), the server refuses rather than surprise.
COMMAND_SETTINGS = ("smtp_url", "mail_from", "public_url", "secret_keys")
JOBS_ROUTE = "/_odnos/jobs"
READ_TIMEOUT_SECONDS = 60  # the server writes a heartbeat four times a second
# The commands that open the event store; None: every action of the command.
FORWARDED: dict[str, frozenset[str] | None] = {
    "sql": None,
    "demo": None,
    "migrate": None,
    "contacts": None,
    "send": None,
    "ingest": None,
    "segments": frozenset({"preview"}),
    "rules": frozenset({"enable", "dry-run", "run", "history"}),
}


def forwardable(args: argparse.Namespace) -> bool:
    """Whether the parsed command is one that a running server can run for this CLI."""
    if args.command not in FORWARDED:
        return False
    actions = FORWARDED[args.command]
    return actions is None or getattr(args, "action", None) in actions


def forward(args: argparse.Namespace, argv: Sequence[str] | None) -> int | None:
    """Run the command in the server holding the folder and return its exit code; None: run it here."""
    if not forwardable(args):
        return None
    served = keyfile.running(load_settings())
    if served is None:
        return None
    return run_remotely(served, list(sys.argv[1:] if argv is None else argv))


def run_remotely(served: ServerKey, argv: list[str]) -> int:
    """Send ``argv`` to the server, copy what it writes to stdout and stderr, return the exit code."""
    url = urllib.parse.urlsplit(served.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port,
                                            timeout=READ_TIMEOUT_SECONDS)
    body = orjson.dumps({"argv": argv, "cwd": os.getcwd(), "stdout_tty": sys.stdout.isatty(),
                         "stderr_tty": sys.stderr.isatty(), "settings": settings_digest(load_settings())})
    try:
        try:
            connection.request("POST", ROUTE, body=body, headers={
                "Authorization": f"Bearer {served.key}", "Content-Type": "application/json"})
            response = connection.getresponse()
        except OSError as exc:
            raise _unreachable(served, str(exc)) from None
        if response.status != 200:
            raise _refused(served, response)
        return _copy_output(served, response)
    finally:
        connection.close()


def settings_digest(settings: Settings) -> dict[str, str]:
    """A hash of each of ``COMMAND_SETTINGS``: enough to compare, nothing secret on the wire."""
    return {name: hashlib.sha256(repr(getattr(settings, name)).encode()).hexdigest()
            for name in COMMAND_SETTINGS}


def running_jobs(served: ServerKey) -> list[dict] | None:
    """The forwarded commands the server runs now (``argv``, ``started_at``), or None if it cannot say."""
    url = urllib.parse.urlsplit(served.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=5)
    try:
        connection.request("GET", JOBS_ROUTE, headers={"Authorization": f"Bearer {served.key}"})
        response = connection.getresponse()
        return orjson.loads(response.read())["jobs"] if response.status == 200 else None
    except (OSError, http.client.HTTPException, orjson.JSONDecodeError, KeyError, TypeError):
        return None
    finally:
        connection.close()


def _copy_output(served: ServerKey, response: http.client.HTTPResponse) -> int:
    streams = {"stdout": sys.stdout, "stderr": sys.stderr}
    try:
        for line in response:
            if not line.strip():
                continue  # heartbeat
            (kind, value), = orjson.loads(line).items()
            if kind == "exit":
                return int(value)
            streams[kind].write(value)
            streams[kind].flush()
    except (OSError, http.client.HTTPException) as exc:
        raise _unreachable(served, str(exc) or type(exc).__name__) from None
    raise _unreachable(served, "it stopped before the command finished; see its log")


def _server(served: ServerKey) -> str:
    return f"the odnos serve holding this data folder (pid {served.pid}, {served.url})"


def _unreachable(served: ServerKey, reason: str) -> OdnosError:
    return OdnosError(f"{_server(served)} did not run the command: {reason}. Run it again, or stop that "
                      "server to run commands on their own", code="server_unreachable")


def _refused(served: ServerKey, response: http.client.HTTPResponse) -> OdnosError:
    try:
        message = orjson.loads(response.read())["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {response.status}"
    return OdnosError(f"{_server(served)} refused the command: {message}", code="server_refused")
