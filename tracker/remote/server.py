"""The server's side: ``POST /_odnos/cli`` runs a forwarded command line and streams its output back.

Only the embedded build has the route (server mode has no folder to share), and it opens only with
the key of this start's key file, from loopback, and never through a proxy (a request carrying
forwarding headers came from elsewhere, whatever its address says). The command runs
``tracker.cli.main`` in a thread of its own, with the server's runtime (``serving``) and that thread's
standard streams routed into a queue (``output``); the response sends them as they come, one JSON
object a line: ``{"stdout": text}``, ``{"stderr": text}`` and last ``{"exit": code}``. A client that
goes away (Ctrl+C) is noticed at the next write, which a heartbeat line makes at least four times a
second: the command thread then gets a ``KeyboardInterrupt``, as a local Ctrl+C would give it.
"""

from __future__ import annotations

import argparse
import ctypes
import hmac
import io
import ipaddress
import logging
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from tracker.cli.common import serving
from tracker.errors import OdnosError
from tracker.remote import keyfile, output, stopping
from tracker.remote.client import COMMAND_SETTINGS, JOBS_ROUTE, ROUTE, forwardable, settings_digest
from tracker.remote.paths import resolve_paths
from tracker.runtime import Runtime
from tracker.settings import PREFIX

log = logging.getLogger(__name__)

KEY = "odnos.cli_key"
HEARTBEAT_SECONDS = 0.25
QUEUED_WRITES = 4096  # a command that outruns its client waits for it, instead of filling memory
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")

bp = Blueprint("remote", __name__)


def publish_key(app: Flask, runtime: Runtime) -> None:
    """Write this start's key file and have the route (``bp``) take that key; it goes at a clean stop."""
    served = keyfile.publish(runtime.settings)
    if served is None:
        log.info("commands are not forwarded: %s is not reachable over loopback", runtime.settings.host)
        return
    app.extensions[KEY] = served
    runtime.extras.setdefault("closers", []).append(lambda: keyfile.withdraw(runtime.settings, served))


def beside_client(args: argparse.Namespace, cwd: str) -> None:
    """Check a forwarded command may run here and make its file arguments open in the client's ``cwd``."""
    if not forwardable(args):
        raise OdnosError(f"`odnos {args.command}` does not run through a server; run it on its own",
                         code="not_forwarded")
    resolve_paths(args, cwd)


def _refuse(status: int, code: str, message: str) -> OdnosError:
    return OdnosError(message, code=code, status=status)


def _check_caller() -> None:
    address = request.remote_addr or ""
    try:
        local = ipaddress.ip_address(address.removeprefix("::ffff:")).is_loopback
    except ValueError:
        local = False
    if not local or any(name in request.headers for name in FORWARDING_HEADERS):
        raise _refuse(403, "not_local", "commands are taken from this machine only (loopback, no proxy)")
    served = current_app.extensions.get(KEY)
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if served is None or scheme != "Bearer" or not hmac.compare_digest(sent.encode(), served.key.encode()):
        raise _refuse(401, "bad_local_key", "send the key from this server's cli.key in the data folder "
                                            "as Authorization: Bearer KEY")


def _request() -> tuple[list[str], str, bool, bool]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) - {"argv", "cwd", "stdout_tty", "stderr_tty", "settings"}:
        raise _refuse(400, "bad_request", 'send {"argv": [...], "cwd": "/abs/path", "stdout_tty": bool, '
                                          '"stderr_tty": bool, "settings"?: {...}} and nothing else')
    _check_settings(body.get("settings", {}))
    argv, cwd = body.get("argv"), body.get("cwd")
    ttys = body.get("stdout_tty", False), body.get("stderr_tty", False)
    if not isinstance(argv, list) or not argv or not all(isinstance(arg, str) for arg in argv):
        raise _refuse(400, "bad_request", "argv must be a non-empty list of strings")
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise _refuse(400, "bad_request", "cwd must be an absolute path")
    if not all(isinstance(tty, bool) for tty in ttys):
        raise _refuse(400, "bad_request", "stdout_tty and stderr_tty must be true or false")
    return argv, cwd, *ttys


def _check_settings(theirs: Any) -> None:
    """Refuse a command whose client has other ``COMMAND_SETTINGS`` than this server runs with."""
    if not isinstance(theirs, dict):
        raise _refuse(400, "bad_request", "settings must be an object of setting name -> digest")
    ours = settings_digest(current_app.extensions["odnos"].settings)
    differ = [name for name in COMMAND_SETTINGS if name in theirs and theirs[name] != ours[name]]
    if differ:
        names = ", ".join(PREFIX + name.upper() for name in differ)
        raise _refuse(409, "settings_differ",
                      f"{names} here differ from the server's, and a command run through the server uses "
                      "the server's settings. Set them where `odnos serve` runs (and restart it), or "
                      "give this shell the same")


@bp.get(JOBS_ROUTE)
def list_jobs() -> Any:
    """The forwarded commands running now (what `odnos status` shows a second terminal), oldest first."""
    _check_caller()
    with _running_lock:
        jobs = sorted(_running.values(), key=lambda job: job.started_at)
        listed = [{"argv": job.argv, "started_at": job.started_at} for job in jobs]
    return jsonify(jobs=listed)


@bp.post(ROUTE)
def run_command() -> Any:
    _check_caller()
    argv, cwd, stdout_tty, stderr_tty = _request()
    output.install()  # at the first command, not at start: nothing changes for a server never asked
    job = Job(current_app.extensions["odnos"], argv, cwd, stdout_tty=stdout_tty, stderr_tty=stderr_tty)
    return Response(job.stream(), mimetype="application/x-ndjson",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


class _Sink(io.TextIOBase):
    """A command thread's stdout or stderr: each write becomes one queued event for the response."""

    encoding = "utf-8"

    def __init__(self, job: Job, name: str, tty: bool) -> None:
        self._job = job
        self._name = name
        self._tty = tty

    def write(self, text: str) -> int:
        if text:
            self._job.post(self._name, text)
        return len(text)

    def isatty(self) -> bool:  # what the client's own stream is: progress lines show on a terminal
        return self._tty


class Job:
    """One forwarded command: its thread, the queue of what it writes, and the way to interrupt it."""

    def __init__(self, runtime: Runtime, argv: list[str], cwd: str, *, stdout_tty: bool,
                 stderr_tty: bool) -> None:
        self._runtime = runtime
        self._argv = argv
        self.argv = argv
        self.started_at = time.time()
        self._cwd = cwd
        self._streams = _Sink(self, "stdout", stdout_tty), _Sink(self, "stderr", stderr_tty)
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue(QUEUED_WRITES)
        self._done = threading.Event()
        self._abandoned = threading.Event()
        self.stop = threading.Event()  # set instead of an interrupt once the command asked for it
        self.graceful = False
        self._thread = threading.Thread(target=self._run, name=f"odnos-cli-{argv[0]}", daemon=True)

    def post(self, kind: str, value: Any) -> None:
        """Queue one event; wait while the queue is full, and drop it once the client has gone."""
        while not self._abandoned.is_set():
            try:
                self._events.put((kind, value), timeout=HEARTBEAT_SECONDS)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        from tracker.cli import main  # here: tracker.cli imports this package's client

        code = 1
        try:
            with output.routed(*self._streams), serving(self._runtime), stopping.running(self):
                try:
                    code = main(self._argv, cwd=self._cwd)
                except SystemExit as exc:  # argparse (--help, a bad option), as the process would exit
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                except KeyboardInterrupt:  # the interrupt came between main's own handlers
                    code = 130
                except Exception:  # a bug: the client sees the traceback a local run would print
                    log.exception("forwarded command %s failed", self._argv[:2])
                    traceback.print_exc()
        finally:
            self._done.set()
            _interrupted.discard(threading.get_ident())
            for store in (self._runtime.store, self._runtime.reader):
                store.close()  # this thread's own connection only
            self.post("exit", code)

    def interrupt(self) -> None:
        """Stop the command: by its stop event if it asked for one (``stopping``), else by raising
        KeyboardInterrupt in its thread (at its next Python instruction)."""
        if self.graceful:
            self.stop.set()
            return
        ident = self._thread.ident
        if ident is not None and not self._done.is_set():
            _interrupt(ident)

    def stream(self) -> Iterator[bytes]:
        """The response body: the command's writes as they come (merged per stream), then its exit code."""
        with _running_lock:
            _running[id(self)] = self
        self._thread.start()
        try:
            while True:
                try:
                    events = [self._events.get(timeout=HEARTBEAT_SECONDS)]
                except queue.Empty:
                    yield b"\n"  # nothing to say; a write to a client that left fails here
                    continue
                while events[-1][0] != "exit" and not self._events.empty():
                    events.append(self._events.get_nowait())
                yield _encode(events)
                if events[-1][0] == "exit":
                    return
        finally:
            if not self._done.is_set():
                log.warning("the client of `odnos %s` went away: interrupting the command",
                            " ".join(self._argv[:2]))
                self.interrupt()
            self._abandoned.set()
            with _running_lock:
                _running.pop(id(self), None)


_running: dict[int, Job] = {}  # forwarded commands whose client is still attached, for list_jobs
_running_lock = threading.Lock()
_interrupted: set[int] = set()  # command threads told to stop
_hook_guard = threading.Lock()


def _interrupt(ident: int) -> None:
    with _hook_guard:
        if not isinstance(sys.unraisablehook, _Rearm):
            sys.unraisablehook = _Rearm(sys.unraisablehook)
        _interrupted.add(ident)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))


class _Rearm:
    """Raise again an interrupt that landed in a finalizer (``__del__``), which would only print it."""

    def __init__(self, hook: Any) -> None:
        self._hook = hook

    def __call__(self, unraisable: Any) -> None:
        ident = threading.get_ident()
        if issubclass(unraisable.exc_type, KeyboardInterrupt) and ident in _interrupted:
            log.info("the interrupt landed in %r, which swallows it: raising it again", unraisable.object)
            _interrupt(ident)
            return
        self._hook(unraisable)


def _encode(events: list[tuple[str, Any]]) -> bytes:
    merged: list[list[Any]] = []
    for name, value in events:
        if merged and name != "exit" and merged[-1][0] == name:
            merged[-1][1] += value
        else:
            merged.append([name, value])
    return b"".join(orjson.dumps({name: value}) + b"\n" for name, value in merged)
