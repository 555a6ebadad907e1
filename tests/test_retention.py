"""Retention on both engines: whole months past ODNOS_RETENTION_MONTHS leave events and rollups alike."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tracker.events import event_row
from tracker.store.migrate import migrate
from tracker.store.retention import drop_old_partitions, first_kept_month

TODAY = date(2026, 3, 15)


@pytest.mark.parametrize(("today", "months", "expected"), [
    (date(2026, 3, 15), 1, 202603), (date(2026, 3, 15), 3, 202601), (date(2026, 3, 15), 4, 202512),
    (date(2026, 1, 1), 13, 202501), (date(2026, 12, 31), 12, 202601)])
def test_first_kept_month(today: date, months: int, expected: int) -> None:
    assert first_kept_month(today, months) == expected


def _ts(year: int, month: int, day: int = 10) -> float:
    return datetime(year, month, day, 12, tzinfo=UTC).timestamp()


def test_months_past_retention_are_dropped_from_events_and_rollups(store) -> None:
    migrate(store)
    months = [(2025, 11), (2025, 12), (2026, 1), (2026, 2), (2026, 3)]
    rows = [event_row("pageview", _ts(y, m, d), site_id="s", visitor_id=f"v{y}{m}{d}",
                      session_id=f"s{y}{m}{d}", pathname="/", hostname="shop.example.com")
            for y, m in months for d in (3, 20)]
    store.insert("events", rows)
    store.insert("contacts", [{"contact_id": "c1", "email": "a@example.com",
                               "updated_at": int(_ts(2024, 1))}])

    def months_held(table: str, column: str) -> list[int]:
        sql = f"SELECT DISTINCT toYYYYMM({column}) AS m FROM {table} ORDER BY m"
        return [r[0] for r in store.query(sql).rows]

    assert months_held("events", "ts") == [202511, 202512, 202601, 202602, 202603]
    assert months_held("rollup_pages_daily", "day") == [202511, 202512, 202601, 202602, 202603]
    assert drop_old_partitions(store, 0, TODAY) == []  # 0: keep everything
    dropped = drop_old_partitions(store, 3, TODAY)
    assert {d.table for d in dropped} >= {"events", "rollup_pages_daily", "rollup_hourly"}
    assert months_held("events", "ts") == [202601, 202602, 202603]
    assert months_held("rollup_pages_daily", "day") == [202601, 202602, 202603]
    assert store.query("SELECT count() FROM events").scalar() == 6
    assert store.query("SELECT count() FROM contacts").scalar() == 1  # no time partition: never touched
    assert drop_old_partitions(store, 3, TODAY) == []  # nothing left to drop
