"""Cookieless sessions through `odnos collector --workers 2`: one visit is one session whichever
worker each hit reaches.

One visitor (one address through a trusted proxy, one user agent) sends pageviews, each on a new
connection and several at once, as a browser's tabs do; the workers' own ``/metrics`` prove that
both took some, so the test cannot pass with one worker doing all the work.
"""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fixtures.collector import DOMAIN, Collector, running_collector

pytestmark = pytest.mark.server

HITS = 60
VISITOR_IP = "198.51.100.23"
ACCEPTED = re.compile(r'^odnos_events_accepted_total\{worker="(\d+)"\} (\S+)$', re.MULTILINE)


def _accepted_by_worker(collector: Collector, workers: int) -> dict[int, int]:
    """Events each worker accepted, from its ``/metrics``: asked on new connections until all answered."""
    accepted: dict[int, int] = {}
    deadline = time.monotonic() + 30
    while len(accepted) < workers and time.monotonic() < deadline:
        status, _, body = collector.request("GET", "/metrics")
        assert status == 200, body
        worker, count = ACCEPTED.search(body.decode()).groups()
        accepted[int(worker)] = int(float(count))
    return accepted


def test_a_visit_spread_over_two_workers_is_one_session(clickhouse_server, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex[:12]
    with running_collector(clickhouse_server, tmp_path / "data", workers=2,
                           ODNOS_TRUSTED_PROXIES="127.0.0.1") as collector:

        def pageview(n: int) -> int:  # Collector.request opens a new connection each time
            status, _, _ = collector.post(collector.event(marker, url=f"https://{DOMAIN}/p{n}"),
                                          **{"X-Forwarded-For": VISITOR_IP})
            return status

        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(pageview, range(HITS))) == {202}
        rows = collector.marked(marker, HITS)
        accepted = _accepted_by_worker(collector, 2)
    assert len(accepted) == 2 and sum(accepted.values()) == HITS, accepted
    assert min(accepted.values()) > 0, f"one worker took every hit: {accepted}"
    assert len(rows) == HITS
    assert len({row["visitor_id"] for row in rows}) == 1 and rows[0]["visitor_id"]
    sessions = {row["session_id"] for row in rows}
    assert len(sessions) == 1, f"the visit was split between the workers {accepted}: {sessions}"
    assert (tmp_path / "data" / "sessions.map").exists()
