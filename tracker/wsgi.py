"""WSGI entry points for the server (granian) to build in each worker process.

Each factory reads the settings from the ODNOS_* variables the CLI passed down, opens this
worker's runtime (stores, control plane) and returns the Flask app with its parts: ``embedded``
(all parts, one process: chDB holds its folder for one process), ``collector`` and ``dashboard``
(server mode, each scaled on its own). Background parts (the ingestion writer, the scheduler) start
here, in the worker, never in the parent that forks it.
"""

from __future__ import annotations

import atexit
import gc
import logging
from multiprocessing import util as mp_util

from flask import Flask

from tracker.app import create_app
from tracker.runtime import Runtime, forward_stop_signals
from tracker.settings import load_settings


def _build(parts: tuple[str, ...], *, migrate_schema: bool) -> Flask:
    forward_stop_signals()  # in the main thread, first: a stop signal must wake it
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)
    runtime = Runtime.open(settings, migrate_schema=migrate_schema)
    runtime.store.announce_holder(f"odnos {' '.join(parts)} at {settings.effective_public_url()}")
    app = create_app(runtime, parts)
    if settings.clickhouse.embedded:  # the folder is this process's: commands come to it
        from tracker.remote.server import publish_key

        publish_key(app, runtime)
    if "scheduler" in parts:
        from tracker.scheduler import start_scheduler

        start_scheduler(runtime)
    # granian's workers are multiprocessing children: they exit through os._exit, which skips atexit
    # but runs multiprocessing's finalizers. Register both, so a graceful stop flushes the writer.
    atexit.register(runtime.close)
    mp_util.Finalize(None, runtime.close, exitpriority=100)
    # Everything built so far lives as long as the worker: keep it out of the collector's passes,
    # which otherwise pause a worker for about 100 ms each time (a latency spike under load).
    gc.collect()
    gc.freeze()
    return app


def embedded() -> Flask:
    """Collector, dashboard and scheduler on the embedded store, in this one worker."""
    return _build(("collector", "dashboard", "scheduler"), migrate_schema=True)


def collector() -> Flask:
    """The collector alone (server mode; `odnos migrate` has prepared the databases)."""
    return _build(("collector",), migrate_schema=False)


def dashboard() -> Flask:
    """The dashboard alone (server mode)."""
    return _build(("dashboard",), migrate_schema=False)
