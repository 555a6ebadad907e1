"""Rollups against raw events, on chDB and the ClickHouse server, over synthetic data.

``tracker.synthetic.load_synthetic`` fills the store inside ClickHouse; every question is then
asked through its fast path and with ``raw=True`` for a spread of filters and periods, and the
answers must be equal. The rollup migrations must also backfill events stored before them, keep
counting what lands afterwards through their views, and add nothing when their backfill runs again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tracker.queries.campaigns.campaign_list import campaign_list
from tracker.queries.campaigns.campaign_report import campaign_report
from tracker.queries.campaigns.click_map import click_map
from tracker.queries.filters import Filters
from tracker.queries.finish_sessions import finish_sessions
from tracker.queries.period import Period
from tracker.queries.site.bots_excluded import bots_excluded
from tracker.queries.site.countries import countries
from tracker.queries.site.custom_events import custom_events
from tracker.queries.site.devices import devices
from tracker.queries.site.entry_pages import entry_pages
from tracker.queries.site.exit_pages import exit_pages
from tracker.queries.site.funnel import funnel
from tracker.queries.site.goals import Goal, goals
from tracker.queries.site.overview_kpis import overview_kpis
from tracker.queries.site.retention import retention
from tracker.queries.site.sources import sources
from tracker.queries.site.timeseries import timeseries
from tracker.queries.site.top_pages import top_pages
from tracker.queries.site.utm import utm
from tracker.store import migrate as migrations
from tracker.synthetic import CAMPAIGN_IDS, load_synthetic

END = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
SITE = "syn"
PERIODS = [
    Period.days(date(2026, 5, 4), date(2026, 5, 31)),
    Period.days(date(2026, 5, 20), date(2026, 5, 20)),
    Period(datetime(2026, 5, 10, 6), datetime(2026, 5, 12, 18)),
    Period(datetime(2026, 5, 10, 6, 30), datetime(2026, 5, 25, 18, 15)),
]
FILTERS = [
    Filters(),
    Filters(country="DE"),
    Filters(device="mobile", browser="Mobile Safari"),
    Filters(page="/products/*"),
    Filters(referrer_source="search"),
    Filters(utm_campaign="autumn-sale"),
    Filters(page="/", referrer_domain="google.com"),
]
GOALS = [Goal("page", "/checkout"), Goal("event", "purchase"), Goal("page", "/blog/*")]
STEPS = [Goal("page", "/"), Goal("page", "/products/*"), Goal("event", "add_to_cart"),
         Goal("event", "purchase")]
QUESTIONS = {
    "overview": lambda s, p, f, raw: overview_kpis(s, SITE, p, f, raw=raw),
    "visitors series": lambda s, p, f, raw: timeseries(s, SITE, p, f, "visitors", raw=raw),
    "bounce series": lambda s, p, f, raw: timeseries(s, SITE, p, f, "bounce_rate", raw=raw),
    "top pages": lambda s, p, f, raw: top_pages(s, SITE, p, f, limit=50, raw=raw),
    "entry pages": lambda s, p, f, raw: entry_pages(s, SITE, p, f, limit=50, raw=raw),
    "exit pages": lambda s, p, f, raw: exit_pages(s, SITE, p, f, limit=50, raw=raw),
    "sources": lambda s, p, f, raw: sources(s, SITE, p, f, raw=raw),
    "domains": lambda s, p, f, raw: sources(s, SITE, p, f, "referrer_domain", raw=raw),
    "utm": lambda s, p, f, raw: utm(s, SITE, p, f, "utm_source", raw=raw),
    "countries": lambda s, p, f, raw: countries(s, SITE, p, f, raw=raw),
    "os": lambda s, p, f, raw: devices(s, SITE, p, f, "os", raw=raw),
    "custom events": lambda s, p, f, raw: custom_events(s, SITE, p, f, raw=raw),
    "goals": lambda s, p, f, raw: goals(s, SITE, p, GOALS, f, raw=raw),
    "funnel": lambda s, p, f, raw: funnel(s, SITE, p, STEPS, f, window=3600, raw=raw),
    "retention": lambda s, p, f, raw: retention(s, SITE, p, f, raw=raw),
    "bots": lambda s, p, f, raw: bots_excluded(s, SITE, p, f, raw=raw),
}


def assert_paths_agree(store, periods=PERIODS, filters=FILTERS) -> None:
    for period in periods:
        for wanted in filters:
            for name, ask in QUESTIONS.items():
                assert ask(store, period, wanted, False) == ask(store, period, wanted, True), (
                    name,
                    period,
                    wanted,
                )
    for campaign in CAMPAIGN_IDS[:3]:
        assert campaign_report(store, campaign) == campaign_report(store, campaign, raw=True)
        assert click_map(store, campaign) == click_map(store, campaign, raw=True)
    assert campaign_list(store) == campaign_list(store, raw=True)


def test_synthetic_data_has_its_shape_and_every_rollup_agrees_with_raw_events(store) -> None:
    migrations.migrate(store)
    loaded = load_synthetic(store, SITE, 40_000, seed=3, days=28, end=END, finish=False)
    assert abs(loaded.events - 40_000) < 400
    assert (loaded.start, loaded.end) == (END - 28 * 86400, END)
    kinds = dict(store.query("SELECT name, count() FROM events GROUP BY name").rows)
    assert {
        "pageview",
        "engagement",
        "add_to_cart",
        "purchase",
        "signup",
        "outbound",
        "email_sent",
        "email_open",
        "email_click",
        "email_bounce",
        "unsubscribe",
        "survey_response",
    } <= set(kinds)
    shape = store.query(
        "SELECT countIf(is_bot = 1), countIf(is_machine = 1), min(ts), max(ts), "
        "uniqExact(visitor_id), uniqExact(session_id) FROM events WHERE name IN "
        "('pageview', 'email_open', 'email_click')"
    ).first()
    bots, machines, first, last, visitors, sessions = shape
    assert bots > 0 and machines > 0 and sessions > visitors * 1.2  # visitors come back
    assert datetime.fromtimestamp(loaded.start, UTC).replace(tzinfo=None) <= first
    assert last < datetime.fromtimestamp(END, UTC).replace(tzinfo=None)
    month = PERIODS[0]
    kpis = overview_kpis(store, SITE, month).current
    assert 10 < kpis.bounce_rate < 40 and kpis.visit_duration > 20 and kpis.views_per_visit > 2
    top = [page.visitors for page in top_pages(store, SITE, month)]
    assert len(top) == 10 and top == sorted(top, reverse=True)
    assert_paths_agree(store)  # no day finished: sessions from rollup_sessions alone
    finished = finish_sessions(store)
    assert (finished[0], finished[-1], len(finished)) == (date(2026, 5, 4), date(2026, 5, 31), 28)
    assert finish_sessions(store) == []  # nothing changed since
    assert_paths_agree(store)  # every day finished: sessions from rollup_sessions_final alone


def test_late_events_refinish_their_days_and_a_half_finished_day_is_read_from_the_rollup(store) -> None:
    migrations.migrate(store)
    load_synthetic(store, SITE, 12_000, seed=6, days=14, end=END)  # finishes every day
    fortnight = [Period.days(date(2026, 5, 18), date(2026, 5, 31))]
    assert_paths_agree(store, fortnight, [Filters(), Filters(device="desktop")])
    load_synthetic(store, "late", 3_000, seed=7, days=14, end=END, finish=False)  # old days, landing late
    late = overview_kpis(store, "late", fortnight[0], raw=True).current
    assert late.visits > 0
    assert overview_kpis(store, "late", fortnight[0]).current.visits == 0  # stale until the job runs again
    assert finish_sessions(store)[0] == date(2026, 5, 18)
    assert overview_kpis(store, "late", fortnight[0]).current == late
    # A day half rewritten (marked not done, partition dropped, crash) is read from rollup_sessions.
    store.insert("rollup_sessions_final_days", [{"day": "2026-05-20", "started": 4_000_000_000, "done": 0}])
    store.command("ALTER TABLE rollup_sessions_final DROP PARTITION '2026-05-20'")
    assert_paths_agree(store, fortnight, [Filters(), Filters(referrer_source="social")])
    assert date(2026, 5, 20) in finish_sessions(store)


def test_synthetic_loads_repeat_for_the_same_seed(store) -> None:
    migrations.migrate(store)
    load_synthetic(store, "a", 6_000, seed=9, days=7, end=END)
    load_synthetic(store, "b", 6_000, seed=9, days=7, end=END)
    load_synthetic(store, "c", 6_000, seed=10, days=7, end=END)
    week = Period(datetime(2026, 5, 25), datetime(2026, 6, 1))
    a, b, c = (overview_kpis(store, site, week).current for site in "abc")
    assert a == b and a != c
    assert top_pages(store, "a", week) == top_pages(store, "b", week)


def test_rollup_migrations_backfill_old_events_then_follow_new_ones(store, monkeypatch) -> None:
    every = migrations.available()
    monkeypatch.setattr(migrations, "available", lambda: [m for m in every if m.version < "0010"])
    migrations.migrate(store)
    load_synthetic(store, SITE, 15_000, seed=4, days=14, end=END, finish=False)  # before the rollups exist
    monkeypatch.setattr(migrations, "available", lambda: every)
    ran = migrations.migrate(store)
    rollups = [m for m in every if m.version >= "0010"]
    assert [f"{m.version}_{m.name}" for m in rollups] == [name for name in ran if name >= "0010"]
    two_weeks = [
        Period.days(date(2026, 5, 18), date(2026, 5, 31)),
        Period(datetime(2026, 5, 20, 3), datetime(2026, 5, 27, 9)),
    ]
    some = [Filters(), Filters(os="iOS"), Filters(page="/cart")]
    assert overview_kpis(store, SITE, two_weeks[0]).current.visits > 0
    assert_paths_agree(store, two_weeks, some)
    assert finish_sessions(store)  # the changes backfilled by 0017 make every old day due
    before = overview_kpis(store, SITE, two_weeks[0])
    load_synthetic(store, "later", 5_000, seed=5, days=14, end=END)  # after: through the views
    assert overview_kpis(store, "later", two_weeks[0]).current.visits > 0
    for migration in rollups:  # a second backfill adds nothing
        store.command(migration.statements()[-1])
    assert overview_kpis(store, SITE, two_weeks[0]) == before
    assert_paths_agree(store, two_weeks, some)


@pytest.mark.parametrize("events", [0, 1])
def test_tiny_loads(store, events) -> None:
    migrations.migrate(store)
    loaded = load_synthetic(store, SITE, events, seed=1, days=1, end=END)
    assert loaded.events <= 3


def test_questions_run_on_the_dashboards_read_only_connection(store_factory) -> None:
    writer = store_factory()
    migrations.migrate(writer)
    load_synthetic(writer, SITE, 5_000, seed=2, days=7, end=END)
    reader = store_factory(readonly=True)  # the connection the dashboard's pages query through
    week = [Period.days(date(2026, 5, 25), date(2026, 5, 31))]
    for wanted in (Filters(), Filters(page="/cart"), Filters(referrer_source="search")):
        for name, ask in QUESTIONS.items():
            assert ask(reader, week[0], wanted, False) == ask(writer, week[0], wanted, False), name
    assert overview_kpis(reader, SITE, week[0]).current.visits > 0
    assert campaign_list(reader) == campaign_list(writer)
