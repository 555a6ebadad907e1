"""`odnos serve` (everything, one process) and the server-mode parts: collector, dashboard, scheduler.

The parent process only checks what a user can get wrong (settings, data folder, port, the store)
and prints one clear line if something is off; granian then forks the worker that builds the app
(``tracker.wsgi``), so chDB and background threads live only in the worker. The URL is printed once
the server answers its health check, with the time it took. On a control database without users,
`odnos serve` first makes an admin and prints its login with the URL: otherwise the first page a
new user sees is a login nobody can pass.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import secrets
import socket
import sys
import threading
import time
import urllib.request

from tracker.errors import ConfigError, OdnosError
from tracker.runtime import forward_stop_signals
from tracker.settings import Settings, ensure_data_dir, load_settings
from tracker.store.lock import FolderLock

WORKER_STOP_SECONDS = 15
REQUEST_THREADS = 4
"""Python threads that run requests in each worker. One would carry about 25% more beacons per
collector worker (no GIL hand-offs between request threads; ``benchmarks/collector_bench.py``), but
granian hands a request to the app before its body has arrived, with no timeout for the rest, so a
thread waits as long as its client takes to send it: with one, a single stalled client would hold up
every beacon of its worker (``tests/test_collector_slow_clients.py``). The dashboard's callbacks wait
on ClickHouse, so it needs several anyway."""
FIRST_ADMIN = "admin@example.com"


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run collector, dashboard and scheduler in one process (default)",
                           description="Run odnos in one process: collector, dashboard and scheduler, "
                                       "on the embedded store unless ODNOS_CLICKHOUSE_URL is set. "
                                       "Prints the URL to open.")
    _listen_args(serve)
    serve.set_defaults(run=run_serve)

    collector = sub.add_parser("collector", help="server mode: run the collector with several workers",
                               description="Run only the collector (pixels, links, beacons) with "
                                           "ODNOS_WORKERS processes. Needs a ClickHouse server.")
    _listen_args(collector)
    collector.add_argument("--workers", help="worker processes (default ODNOS_WORKERS, 2)")
    collector.set_defaults(run=run_collector)

    dashboard = sub.add_parser("dashboard", help="server mode: run the dashboard alone",
                               description="Run only the dashboard. Needs a ClickHouse server.")
    _listen_args(dashboard)
    dashboard.set_defaults(run=run_dashboard)

    scheduler = sub.add_parser("scheduler", help="server mode: run the scheduler (exactly one)",
                               description="Run the periodic jobs (mailing rules, housekeeping) in the "
                                           "foreground. Run exactly one per deployment.")
    scheduler.set_defaults(run=run_scheduler)


def _listen_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default ODNOS_HOST, 127.0.0.1)")
    # Checked with the settings (ODNOS_PORT), so a bad value gets the same one-line error
    parser.add_argument("--port", help="port to listen on (default ODNOS_PORT, 8000)")


def check_port(host: str, port: int) -> None:
    """Fail with a clear message when the port cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): the port is in use or "
                              "the address is not this machine's; choose another with --port or "
                              "ODNOS_PORT") from None


def _check_store(settings: Settings) -> None:
    """Embedded: the folder must be free. Server: it must answer, and is migrated here."""
    target = settings.clickhouse
    if target.embedded:
        lock = FolderLock(target.path.with_name(target.path.name + ".lock"))
        lock.acquire("check")
        lock.release()
        return
    from tracker.store import open_store
    from tracker.store.migrate import migrate

    store = open_store(settings)
    try:
        migrate(store)
    finally:
        store.close()


def _first_admin(settings: Settings) -> str:
    """With no dashboard user yet, make an admin; return the line that gives its login, else ""."""
    from tracker.cli.common import open_control
    from tracker.control.users import add_user, list_users

    control = open_control(settings)
    try:
        with control.session() as db:
            if list_users(db):
                return ""
            password = secrets.token_urlsafe(12)
            add_user(db, FIRST_ADMIN, password, "admin")
    except OdnosError as exc:
        if exc.code == "duplicate_email":  # another server on the same database made it just now
            return ""
        raise
    finally:
        control.dispose()  # before the fork: the worker opens connections of its own
    return (f"first start: dashboard login {FIRST_ADMIN} / {password}  (shown once; to set another: "
            f"odnos user add --email {FIRST_ADMIN} --password - --reset)")


def _announce(url: str, started: float, what: str, note: str) -> None:
    """Print the URL once /healthz answers (then ``note``, if any): the first lines a user reads."""
    deadline = started + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310 - our URL
                if response.status == 200:
                    took = time.monotonic() - started
                    label = f"odnos {what}".strip()
                    print(f"{label} is running at {url}  (ready in {took:.1f} s; Ctrl+C stops it)",
                          flush=True)
                    if note:
                        print(note, flush=True)
                    return
        except OSError:
            time.sleep(0.1)
    print(f"odnos: error: {what} did not answer at {url}/healthz within 120 s; see the log above",
          file=sys.stderr, flush=True)


def _serve(settings: Settings, target: str, workers: int, what: str, *, first_admin: bool = False) -> int:
    from granian.constants import Interfaces
    from granian.server import Server

    from tracker.enrich import preload

    started = time.monotonic()
    ensure_data_dir(settings)
    check_port(settings.host, settings.port)
    _check_store(settings)
    note = _first_admin(settings) if first_admin else ""
    os.environ.update(settings.as_env())
    preload()
    gc.collect()
    gc.freeze()  # what the workers inherit stays shared: no collection in them touches these pages
    url = f"http://{settings.host}:{settings.port}"
    # The announcing thread starts only once granian has forked every worker: a thread running in
    # the parent during a fork can hold a lock (an import, stdout) that the child then waits on forever.
    forks = itertools.count(1)

    def after_fork() -> None:
        if next(forks) == workers:
            threading.Thread(target=_announce, args=(url, started, what, note), daemon=True).start()

    os.register_at_fork(after_in_parent=after_fork)
    forward_stop_signals()
    server = Server(target, address=settings.host, port=settings.port, interface=Interfaces.WSGI,
                    workers=workers, factory=True, blocking_threads=REQUEST_THREADS, backlog=2048,
                    log_level=settings.log_level.lower(), log_access=False,
                    # A worker that does not stop within this many seconds is killed; its spool is
                    # replayed at the next start, so nothing accepted is lost.
                    workers_kill_timeout=WORKER_STOP_SECONDS,
                    # A worker that dies is replaced; the new one takes over its spool slot.
                    respawn_failed_workers=True)
    server.serve()
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings({"host": args.host, "port": args.port, "workers": getattr(args, "workers", None)})


def run_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    return _serve(settings, "tracker.wsgi:embedded", 1, "", first_admin=True)


def _server_mode(settings: Settings, command: str) -> None:
    if settings.clickhouse.embedded:
        raise ConfigError(f"`odnos {command}` is for server mode: set ODNOS_CLICKHOUSE_URL to a ClickHouse "
                          "server (the embedded store runs in one process: use `odnos serve`)")


def run_collector(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _server_mode(settings, "collector")
    return _serve(settings, "tracker.wsgi:collector", settings.workers, "collector")


def run_dashboard(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _server_mode(settings, "dashboard")
    return _serve(settings, "tracker.wsgi:dashboard", 1, "dashboard")


def run_scheduler(args: argparse.Namespace) -> int:
    from tracker.runtime import Runtime
    from tracker.scheduler import run_scheduler as run_jobs

    settings = load_settings()
    _server_mode(settings, "scheduler")
    forward_stop_signals()
    runtime = Runtime.open(settings, migrate_schema=True)
    try:
        run_jobs(runtime)
    finally:
        runtime.close()
    return 0
