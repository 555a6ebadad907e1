"""`odnos demo --events N`: the demo at scale, bulk-loaded into the embedded store (chDB) once.

Runs the real command in a child process (chDB holds one folder per process) and reads the store
back with `odnos sql`, so what is checked is what the dashboard would read.
"""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.processes import odnos_env, run_odnos

EVENTS = 20_000


def _sql(env: dict[str, str], sql: str) -> list[list[str]]:
    result = run_odnos("sql", sql, env=env)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


def test_demo_events_adds_about_n_bulk_events_to_the_demo_site_once(tmp_path: Path) -> None:
    env = odnos_env(tmp_path / "data")
    first = run_odnos("demo", "--visitors", "50", "--days", "7", "--events", str(EVENTS), env=env)
    assert first.returncode == 0, first.stderr
    site_id = first.stdout.splitlines()[-1]
    assert "bulk insert inside ClickHouse, not through the collector" in first.stdout
    rows = _sql(env, "SELECT site_id, count(), uniqExact(event_id), uniqExact(visitor_id), "
                     "countIf(name = 'pageview'), countIf(is_machine = 1), dateDiff('day', min(ts), now()) "
                     "FROM events WHERE source = 'synthetic' GROUP BY site_id")
    assert len(rows) == 1, rows  # every bulk event is the demo site's
    site, count, ids, visitors, pageviews, machines, oldest_days = rows[0]
    assert site == site_id
    assert abs(int(count) - EVENTS) <= EVENTS * 0.02  # "about N"
    assert ids == count  # every event is its own (not one id per insert)
    assert int(visitors) > 500 and int(pageviews) > EVENTS // 3 and int(machines) > 0
    assert int(oldest_days) <= 7  # within --days
    collected = int(_sql(env, "SELECT count() FROM events WHERE source != 'synthetic'")[0][0])
    assert collected > 0  # the ordinary demo is there too

    again = run_odnos("demo", "--events", str(EVENTS), env=env)
    assert again.returncode == 0, again.stderr
    assert f"{int(count):,} synthetic events are already loaded" in again.stdout
    assert _sql(env, "SELECT count() FROM events WHERE source = 'synthetic'")[0][0] == count


def test_demo_refuses_a_negative_event_count(tmp_path: Path) -> None:
    result = run_odnos("demo", "--events", "-5", env=odnos_env(tmp_path / "data"))
    assert result.returncode == 2
    assert result.stderr.startswith("odnos: error: ") and "--events" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
