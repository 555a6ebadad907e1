"""The dashboard's ingestion banner: collector workers report their spool to the control database,
and the dashboard, in a process of its own, warns while events wait to be stored.

Through the real parts: a ClickHouse server of the test's own, stopped and started again; `odnos
collector` and `odnos dashboard` as separate processes on one data folder (its SQLite control
database is what they share); the banner read through the dashboard's own callback over HTTP.
The rule itself (which reports count, what is said) is checked on a real SQLite control database.
"""

from __future__ import annotations

import http.client
import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.fixtures.clickhouse import ClickHouseServer
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos, wait_until
from tests.fixtures.web import WebClient
from tracker.control.db import ControlPlane
from tracker.control.models import utcnow
from tracker.ingest.report import RECENT, problems, report

EMAIL, PASSWORD = "ops@example.com", "ops-test-password"
DOMAIN = "shop.example.com"


def _stats(directory: str, oldest: float | None, waiting: int = 0, dead: int = 0) -> dict:
    return {"directory": directory, "oldest_pending_seconds": oldest, "pending_bytes": waiting,
            "dead_letter_rows": dead}


def test_recent_waiting_events_and_dead_letters_are_said_and_old_reports_are_not(tmp_path: Path) -> None:
    control = ControlPlane(f"sqlite:///{tmp_path / 'control.sqlite3'}")
    control.migrate()
    now = utcnow()
    with control.sessions() as session:
        assert problems(session, lag_seconds=60, now=now) == []
    report(control.sessions, _stats("/spool/0", 12.0, 100), now=now)
    report(control.sessions, _stats("/spool/1", None), now=now)
    with control.sessions() as session:
        assert problems(session, lag_seconds=60, now=now) == []  # 12 s is not a lag yet
    report(control.sessions, _stats("/spool/0", 185.0, 3 * 1024 * 1024), now=now)  # rewrites its row
    report(control.sessions, _stats("/spool/2", 4000.0, 10, dead=3), now=now - RECENT - timedelta(seconds=1))
    with control.sessions() as session:
        said = problems(session, lag_seconds=60, now=now)
    # /spool/2 stopped reporting: its lag and dead letters are a stopped worker's, not said
    assert len(said) == 1 and "the oldest arrived 3 min ago (3.0 MB waiting on 1 collector worker)" in said[0]
    report(control.sessions, _stats("/spool/1", None, dead=2), now=now)
    with control.sessions() as session:
        said = problems(session, lag_seconds=60, now=now)
    assert len(said) == 2 and said[1].startswith("2 events refused by ClickHouse wait in a dead-letter file")
    assert "odnos ingest replay-dead-letters" in said[1]
    control.dispose()


def _banner(web: WebClient) -> list[str]:
    answer = web.callback("ingestion-banner.children", [{"id": "ingestion-tick", "property": "n_intervals",
                                                         "value": None}])
    assert answer.status == 200, answer.body
    alerts = json.loads(answer.body)["response"]["ingestion-banner"]["children"]
    return [json.dumps(alert) for alert in alerts]


@pytest.mark.server
def test_the_dashboard_warns_while_clickhouse_is_down_and_stops_once_events_land(tmp_path: Path) -> None:
    clickhouse = ClickHouseServer(tmp_path / "clickhouse")
    clickhouse.start()
    servers: list[OdnosServer] = []
    try:
        env = odnos_env(tmp_path / "data", ODNOS_CLICKHOUSE_URL=clickhouse.url_for("lagging"),
                        ODNOS_LANDING_ALERT_SECONDS="2", ODNOS_LOG_LEVEL="WARNING")
        added = run_odnos("site", "add", "Shop", "--domain", DOMAIN, env=env)
        assert added.returncode == 0, added.stdout + added.stderr
        site = added.stdout.strip().splitlines()[-1]
        user = run_odnos("user", "add", "--email", EMAIL, "--password", PASSWORD, "--role", "viewer", env=env)
        assert user.returncode == 0, user.stderr
        collector = OdnosServer(env, command="collector").start()
        dashboard = OdnosServer(env, command="dashboard").start()
        servers += [collector, dashboard]
        web = WebClient(dashboard.port)
        web.log_in(EMAIL, PASSWORD)
        assert _banner(web) == []

        clickhouse.stop()
        conn = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=10)
        conn.request("POST", "/e", body=json.dumps({"site": site, "name": "pageview",
                                                    "url": f"https://{DOMAIN}/"}).encode(),
                     headers={"Content-Type": "text/plain"})
        assert conn.getresponse().status == 202
        conn.close()
        assert wait_until(lambda: _banner(web)), "no banner while ClickHouse was down"
        [alert] = _banner(web)
        assert "Events are waiting to be stored" in alert and "Is ClickHouse up?" in alert

        clickhouse.start()
        assert wait_until(lambda: _banner(web) == []), _banner(web)  # landed, and the next report says so
    finally:
        for server in servers:
            server.stop()
        clickhouse.stop()
