"""The scheduler: APScheduler running odnos's periodic jobs in the background of one process.

Embedded mode runs it inside the single worker; server mode runs exactly one with `odnos
scheduler`. Parts register their jobs through ``JOBS`` (a name, an interval in seconds and a
function of the runtime); mailing rules add theirs here when they land.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from tracker.runtime import Runtime

log = logging.getLogger(__name__)

JOBS: list[tuple[str, float, Callable[[Runtime], Any]]] = []


def _configure(scheduler: Any, runtime: Runtime) -> Any:
    for name, seconds, job in JOBS:
        scheduler.add_job(job, "interval", seconds=seconds, args=[runtime], id=name, name=name,
                          coalesce=True, max_instances=1, misfire_grace_time=int(seconds))
    return scheduler


def start_scheduler(runtime: Runtime) -> BackgroundScheduler:
    """Start the jobs in a background thread of this process; stopped with the runtime."""
    scheduler = _configure(BackgroundScheduler(timezone="UTC", daemon=True), runtime)
    scheduler.start()
    runtime.extras.setdefault("closers", []).append(lambda: scheduler.shutdown(wait=False))
    runtime.extras["scheduler"] = scheduler
    log.info("scheduler started with %d job(s)", len(JOBS))
    return scheduler


def run_scheduler(runtime: Runtime) -> None:
    """Run the jobs in the foreground until interrupted (`odnos scheduler`)."""
    scheduler = _configure(BlockingScheduler(timezone="UTC"), runtime)
    log.info("scheduler running %d job(s)", len(JOBS))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
