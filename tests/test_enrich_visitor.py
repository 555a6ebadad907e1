"""Cookieless visitor ids: keyed, daily, per site, no salt I/O per hit, and hits go on while the
salts' keeper is down."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time

import pytest

from tracker.enrich.visitor import MemorySaltSource, VisitorIds, day_of
from tracker.errors import StoreUnavailable

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


class FlakySalts(CountingSalts):
    """A keeper that can go down (as the control database does) and come back."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def salt_for(self, day: dt.date) -> bytes:
        if self.down:
            self.asked.append(day)
            raise StoreUnavailable("the control database is down")
        return super().salt_for(day)


def test_midnight_during_an_outage_keeps_yesterdays_salt_until_the_keeper_returns():
    salts = FlakySalts()
    ids = VisitorIds(salts)
    before = ids.candidates(1, "203.0.113.9", UA, NOON)  # the 10th's salt (and the 9th's) cached
    salts.down = True
    after_midnight = ids.candidates(1, "203.0.113.9", UA, NOON + DAY / 2 + 60)  # 00:01 on the 11th
    assert after_midnight == (before[0], before[0])  # hashed with the 10th's salt: the visit goes on
    assert dt.date(2025, 3, 11) in salts.asked  # and the keeper was asked for the new day's salt
    salts.down = False
    back = ids.candidates(1, "203.0.113.9", UA, NOON + DAY / 2 + 120)
    real_today = VisitorIds(CountingSalts()).candidates(1, "203.0.113.9", UA, NOON + DAY / 2)[0]
    assert back == (real_today, before[0])  # the real salt as soon as it can be read


def test_a_process_with_no_salt_at_all_hashes_with_its_own_until_the_keeper_returns():
    salts = FlakySalts()
    salts.down = True
    ids = VisitorIds(salts)
    first = ids.candidates(1, "203.0.113.9", UA, NOON)
    assert ids.candidates(1, "203.0.113.9", UA, NOON + 60) == first  # stable while it lasts
    assert first[0] == first[1]
    salts.down = False
    real = VisitorIds(CountingSalts()).candidates(1, "203.0.113.9", UA, NOON)
    assert ids.candidates(1, "203.0.113.9", UA, NOON + 120) == real


def test_a_hit_never_queues_behind_a_slow_keeper_when_it_has_a_stand_in():
    class SlowSalts(CountingSalts):
        def __init__(self) -> None:
            super().__init__()
            self.entered, self.release = threading.Event(), threading.Event()

        def salt_for(self, day: dt.date) -> bytes:
            if day == dt.date(2025, 3, 11):
                self.entered.set()
                self.release.wait(10)
            return super().salt_for(day)

    salts = SlowSalts()
    ids = VisitorIds(salts)
    ids.candidates(1, "203.0.113.9", UA, NOON)
    slow = threading.Thread(target=ids.candidates, args=(1, "203.0.113.1", UA, NOON + DAY))
    slow.start()
    try:
        assert salts.entered.wait(5)
        started = time.monotonic()
        ids.candidates(1, "203.0.113.2", UA, NOON + DAY)
        assert time.monotonic() - started < 0.5
    finally:
        salts.release.set()
        slow.join(5)


def test_hits_on_yesterday_and_today_do_not_evict_each_others_salts():
    salts = CountingSalts()
    ids = VisitorIds(salts)
    for i in range(20):
        ids.candidates(1, "203.0.113.9", UA, NOON - (DAY if i % 2 else 0))
    assert sorted(salts.asked) == [dt.date(2025, 3, 8), dt.date(2025, 3, 9), dt.date(2025, 3, 10)]
