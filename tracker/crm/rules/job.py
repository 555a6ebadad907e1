"""The scheduler's mailing-rules job: every ``ODNOS_RULES_INTERVAL`` seconds, if this process holds
the one-scheduler lock, evaluate every enabled rule once.

The lock (tracker/crm/rules/lock.py) lives ``LOCK_ROUNDS`` intervals: the holder renews it at each
round and between chunks of a long run, so it keeps acting round after round; if it dies, another
scheduler takes over within that time. The lock is released when the runtime closes.
"""

from __future__ import annotations

import logging

from tracker.crm.rules.lock import DatabaseLock
from tracker.crm.rules.runner import run_rules
from tracker.runtime import Runtime
from tracker.settings import Settings

log = logging.getLogger(__name__)

LOCK_NAME = "mailing-rules"
LOCK_ROUNDS = 3


def rules_interval(settings: Settings) -> float:
    """Seconds between rounds (the job's interval in tracker.scheduler.JOBS)."""
    return float(settings.rules_interval)


def _lock(runtime: Runtime) -> DatabaseLock:
    lock = runtime.extras.get("rules_lock")
    if lock is None:
        lock = DatabaseLock(runtime.control, LOCK_NAME, ttl=LOCK_ROUNDS * rules_interval(runtime.settings))
        runtime.extras["rules_lock"] = lock
        runtime.extras.setdefault("closers", []).append(lock.release)
    return lock


def evaluate_rules(runtime: Runtime) -> None:
    """One round: take (or renew) the lock, then run the enabled rules; otherwise say who holds it."""
    lock = _lock(runtime)
    if not lock.acquire():
        held = lock.current()
        log.info("mailing rules: not this round, %s holds the scheduler lock", held[0] if held else "another")
        return
    reports = run_rules(runtime, heartbeat=lock.acquire)
    log.info("mailing rules: round by %s, %d rule(s) evaluated", lock.holder, len(reports))
    for report in reports:
        if report.sent or report.error or report.unknown:
            log.info("mailing rules: %s", report.summary())
