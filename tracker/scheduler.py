"""The scheduler: APScheduler running odnos's periodic jobs in the background of one process.

Embedded mode runs it inside the single worker; server mode runs exactly one with `odnos
scheduler`. Parts register their jobs through ``JOBS`` (a name, an interval in seconds, or a
function of the settings giving it, and a function of the runtime). The mailing-rules job acts in
one process only, whichever holds its lock in the control database (tracker/crm/rules/job.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from tracker.crm.rules.job import evaluate_rules, rules_interval
from tracker.runtime import Runtime
from tracker.settings import Settings
from tracker.store.retention import drop_old_partitions

log = logging.getLogger(__name__)



def apply_retention(runtime: Runtime) -> None:
    """Drop the months of events past ``ODNOS_RETENTION_MONTHS`` (``tracker.store.retention``)."""
    drop_old_partitions(runtime.store, runtime.settings.retention_months, datetime.now(UTC).date())


JOBS: list[tuple[str, float | Callable[[Settings], float], Callable[[Runtime], Any]]] = [
    ("mailing-rules", rules_interval, evaluate_rules),
    ("retention", 24 * 3600, apply_retention),
]


class _DaemonThreads(BaseExecutor):
    """Runs each job in a daemon thread, so stopping the process never waits for a job in flight.

    APScheduler's default pool joins its threads when the interpreter exits: Ctrl+C during a long
    round waited for the round, past the server's stop timeout. A job cut short is safe: the rules'
    ledger records a send before the message leaves.
    """

    def _do_submit_job(self, job: Any, run_times: list) -> None:
        def run() -> None:
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException as exc:  # noqa: BLE001 - reported to the scheduler, as its pool does
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, events)

        threading.Thread(target=run, name=f"odnos-job-{job.id}", daemon=True).start()


def _configure(scheduler: Any, runtime: Runtime) -> Any:
    scheduler.add_executor(_DaemonThreads(), "default")
    for name, interval, job in JOBS:
        seconds = interval(runtime.settings) if callable(interval) else interval
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
