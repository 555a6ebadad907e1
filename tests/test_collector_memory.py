"""The collector's lookup tables stay shared after a worker is restarted.

The user-agent parser, crawler patterns, country database and network tables (about 80 MB) are
loaded in the server's parent before it forks the workers, so the workers share those pages. When
a worker dies, granian forks a new one from the same parent: it must share them too, not load
its own copy. Measured from ``/proc/PID/smaps_rollup`` of the real ``odnos collector`` processes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.fixtures.collector import Collector, running_collector

MB = 1024 * 1024


def _workers(collector: Collector) -> set[int]:
    parent = collector.server.process.pid
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return {int(pid) for pid in children}


def _memory(pid: int) -> dict[str, int]:
    """Bytes of the process: ``private`` (its own pages) and ``shared`` (pages it shares)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value) * 1024
    return {"private": fields["Private_Clean"] + fields["Private_Dirty"],
            "shared": fields["Shared_Clean"] + fields["Shared_Dirty"]}


def _hits(collector: Collector, count: int) -> None:
    """Cookieless pageviews from many addresses and agents, each on its own connection."""
    for n in range(count):
        agent = (f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/{100 + n % 30}.0 "
                 "Safari/537.36")
        status, _, body = collector.post(collector.event(f"mem-{n}"), **{
            "User-Agent": agent, "X-Forwarded-For": f"198.51.{n % 200}.{n % 250 + 1}"})
        assert status == 202, body


@pytest.mark.server
def test_a_restarted_worker_shares_the_lookup_tables_like_the_first_ones(clickhouse_server,
                                                                        tmp_path: Path) -> None:
    with running_collector(clickhouse_server, tmp_path / "data", workers=2,
                           ODNOS_TRUSTED_PROXIES="127.0.0.1") as collector:
        _hits(collector, 200)
        first = _workers(collector)
        assert len(first) == 2
        before = {pid: _memory(pid) for pid in first}
        assert all(m["shared"] > 50 * MB for m in before.values()), before  # the tables, from the parent

        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (len(_workers(collector)) < 2
                                               or killed in _workers(collector)):
            time.sleep(0.2)
        (new,) = _workers(collector) - first
        _hits(collector, 200)
        after = _memory(new)
        survivor = before[max(first)]
        assert after["shared"] > 0.8 * survivor["shared"], (after, before)
        # A worker that loaded the tables itself would hold them privately: 80 MB more.
        assert after["private"] < survivor["private"] + 30 * MB, (after, before)
