"""Only one scheduler acts: the lock row on SQLite and PostgreSQL, then two real scheduler processes.

Both processes run the real scheduler loop with the real mailing-rules job every second; in each
round exactly one of them (the lock's holder) evaluates the rules, the other says who holds it.
When the holder is killed with SIGKILL, the other takes over once the lock has expired, and mails
the contacts that arrived since; nobody is mailed twice across the two.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from tests.fixtures.collector import NEW_KEY
from tests.fixtures.processes import odnos_env, wait_until
from tests.test_mailer_smtp import SmtpCapture
from tests.test_rules_world import FROM, World
from tracker.control.db import ControlPlane
from tracker.control.models import utcnow
from tracker.crm.rules.job import LOCK_NAME, LOCK_ROUNDS
from tracker.crm.rules.lock import DatabaseLock
from tracker.runtime import Runtime
from tracker.settings import load_settings


def test_the_lock_is_held_renewed_refused_taken_over_after_expiry_and_released(control: ControlPlane) -> None:
    first = DatabaseLock(control, "test", ttl=30, holder="first")
    second = DatabaseLock(control, "test", ttl=30, holder="second")
    now = utcnow()
    assert first.acquire(now)
    assert not second.acquire(now)
    assert first.acquire(now + timedelta(seconds=20))  # a renewal moves the expiry on
    assert not second.acquire(now + timedelta(seconds=40))  # 20 + 30: still held
    assert second.acquire(now + timedelta(seconds=51))  # expired: taken over
    assert first.current()[0] == "second"
    assert not first.acquire(now + timedelta(seconds=52))  # the old holder has lost it
    first.release()  # releasing a lock one does not hold changes nothing
    assert first.current()[0] == "second"
    second.release()
    assert first.current() is None
    assert first.acquire(now + timedelta(seconds=53))


def test_many_contenders_at_once_exactly_one_wins(control_url: str) -> None:
    planes = [ControlPlane(control_url) for _ in range(6)]
    planes[0].migrate()
    now = utcnow()
    barrier = threading.Barrier(len(planes))

    def contend(n: int) -> bool:
        barrier.wait()
        return DatabaseLock(planes[n], "race", ttl=30, holder=f"p{n}").acquire(now)

    try:
        with ThreadPoolExecutor(len(planes)) as pool:
            won = list(pool.map(contend, range(len(planes))))
    finally:
        for plane in planes:
            plane.dispose()
    assert won.count(True) == 1


_SCHEDULER = """
import logging, sys
from tracker.runtime import Runtime
from tracker.scheduler import run_scheduler
from tracker.settings import load_settings
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(created).3f %(message)s")
runtime = Runtime.open(load_settings())
try:
    run_scheduler(runtime)
finally:
    runtime.close()
"""


class Scheduler:
    """A child process running the real scheduler; ``lines`` are its log lines with their times."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _SCHEDULER], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines: list[tuple[float, str]] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            stamp, _, text = line.partition(" ")
            try:
                self.lines.append((float(stamp), text.strip()))
            except ValueError:
                self.lines.append((time.time(), line.strip()))

    def rounds(self, since: float = 0, until: float = float("inf")) -> tuple[int, int]:
        """(rounds it acted in, rounds it left to the holder) in the time range."""
        acted = sum(1 for t, text in self.lines if since <= t < until and "round by" in text)
        left = sum(1 for t, text in self.lines if since <= t < until and "not this round" in text)
        return acted, left

    def first_round_after(self, moment: float) -> float | None:
        return next((t for t, text in self.lines if t >= moment and "round by" in text), None)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def test_two_scheduler_processes_one_acts_and_the_other_takes_over_when_it_dies(
        clickhouse_server, control_url: str, tmp_path: Path) -> None:
    interval = 1
    with SmtpCapture() as smtp:
        database = "lock_" + os.urandom(4).hex()
        env = odnos_env(tmp_path, ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for(database),
                        ODNOS_DATABASE_URL=control_url, ODNOS_SECRET_KEYS=NEW_KEY, ODNOS_MAIL_FROM=FROM,
                        ODNOS_SMTP_URL=smtp.url, ODNOS_RULES_INTERVAL=str(interval),
                        ODNOS_PUBLIC_URL="http://t.example.test")
        runtime = Runtime.open(load_settings(environ=env))
        world = World(runtime, smtp)
        first = world.people("ann", "bob", "cy", "dan", "eve")
        world.rule(existing="mail")
        schedulers = [Scheduler(env), Scheduler(env)]
        try:
            assert wait_until(lambda: sum(world.received().values()) == 5, 60), "five messages"
            start = time.time()
            time.sleep(4 * interval)
            watched = [s.rounds(start, time.time()) for s in schedulers]
            holder_index = 0 if watched[0][0] else 1
            holder, other = schedulers[holder_index], schedulers[1 - holder_index]
            assert watched[holder_index][0] >= 3 and watched[holder_index][1] == 0, watched
            assert watched[1 - holder_index][0] == 0 and watched[1 - holder_index][1] >= 3, watched

            os.kill(holder.process.pid, signal.SIGKILL)
            killed = time.time()
            holder.process.wait()
            # A fresh connection: ClickHouseStore reuses an HTTP keep-alive connection that the server
            # has closed after seconds of idleness, and the insert fails (reported to the lead).
            runtime.store.close()
            late = world.people("fay", "gus", "hal")
            assert wait_until(lambda: other.first_round_after(killed) is not None, 30), \
                "the other scheduler did not take over"
            took_over = other.first_round_after(killed) - killed
            ttl = LOCK_ROUNDS * interval
            print(f"\nlock: rounds (acted, left) while both ran {watched}; takeover {took_over:.2f} s after "
                  f"the kill (ttl {ttl} s, interval {interval} s)")
            # The holder renewed at most one interval before it died; the lock then lived ttl.
            assert ttl - interval - 0.5 <= took_over <= ttl + interval + 2, took_over
            assert wait_until(lambda: sum(world.received().values()) == 8, 30), "the late contacts' messages"
            time.sleep(2 * interval)  # more rounds: still nobody twice
            assert world.received() == Counter(dict.fromkeys(first + late, 1))
        finally:
            for scheduler in schedulers:
                scheduler.stop()
        lock = DatabaseLock(runtime.control, LOCK_NAME, ttl=1)
        assert lock.current() is None  # the survivor released it when stopped cleanly
        runtime.close()
