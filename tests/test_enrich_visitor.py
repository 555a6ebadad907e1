"""Cookieless visitor ids: keyed, daily, per site, and no salt I/O per hit."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tracker.enrich.visitor import MemorySaltSource, VisitorIds, day_of

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
NOON = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC).timestamp()
DAY = 86_400


class CountingSalts:
    """A SaltSource that records which days were asked for (stands in for the database)."""

    def __init__(self, salt_len: int = 32) -> None:
        self.asked: list[dt.date] = []
        self._salt_len = salt_len

    def salt_for(self, day: dt.date) -> bytes:
        self.asked.append(day)
        return day.isoformat().encode().ljust(self._salt_len, b"#")


def test_ids_are_16_hex_and_stable_within_a_day():
    ids = VisitorIds(MemorySaltSource())
    today, yesterday = ids.candidates(1, "203.0.113.9", UA, NOON)
    assert re.fullmatch(r"[0-9a-f]{16}", today) and re.fullmatch(r"[0-9a-f]{16}", yesterday)
    assert today != yesterday
    assert ids.candidates(1, "203.0.113.9", UA, NOON + 3600) == (today, yesterday)


@pytest.mark.parametrize(
    "other",
    [(2, "203.0.113.9", UA), (1, "203.0.113.10", UA), (1, "203.0.113.9", UA + " x")],
)
def test_site_ip_and_user_agent_each_change_the_id(other):
    ids = VisitorIds(MemorySaltSource())
    assert ids.candidates(*other, NOON)[0] != ids.candidates(1, "203.0.113.9", UA, NOON)[0]


def test_yesterdays_candidate_is_yesterdays_id():
    """What makes a visit across midnight one visit: tomorrow's second candidate is today's id."""
    ids = VisitorIds(MemorySaltSource())
    today, _ = ids.candidates(1, "203.0.113.9", UA, NOON)
    tomorrow, from_today = ids.candidates(1, "203.0.113.9", UA, NOON + DAY)
    assert from_today == today
    assert tomorrow != today


def test_the_hash_is_keyed_by_the_salt():
    a = VisitorIds(MemorySaltSource()).candidates(1, "203.0.113.9", UA, NOON)
    b = VisitorIds(MemorySaltSource()).candidates(1, "203.0.113.9", UA, NOON)
    assert a != b


def test_salts_are_fetched_once_per_day_not_per_hit():
    salts = CountingSalts()
    ids = VisitorIds(salts)
    for i in range(100):
        ids.candidates(1, f"203.0.113.{i}", UA, NOON + i)
    assert sorted(salts.asked) == [dt.date(2025, 3, 9), dt.date(2025, 3, 10)]


def test_short_salts_are_refused():
    with pytest.raises(ValueError, match="16 to 64 bytes"):
        VisitorIds(CountingSalts(salt_len=8)).candidates(1, "203.0.113.9", UA, NOON)


def test_memory_salts_rotate_and_forget():
    salts = MemorySaltSource(keep_days=2)
    d0 = dt.date(2025, 3, 10)
    first = salts.salt_for(d0)
    assert salts.salt_for(d0) == first and len(first) == 32
    assert salts.salt_for(d0 + dt.timedelta(days=1)) != first
    salts.salt_for(d0 + dt.timedelta(days=2))
    assert salts.salt_for(d0) != first  # forgotten, so a new one: old ids cannot be recomputed


def test_day_of_is_utc():
    assert day_of(dt.datetime(2025, 3, 10, 23, 59, 59, tzinfo=dt.UTC).timestamp()) == dt.date(2025, 3, 10)
    assert day_of(dt.datetime(2025, 3, 11, 0, 0, 0, tzinfo=dt.UTC).timestamp()) == dt.date(2025, 3, 11)
