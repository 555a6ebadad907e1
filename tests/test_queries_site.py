"""Site analytics questions on chDB and the ClickHouse server, against numbers computed here in Python.

The data set is built with ``event_row`` from a seeded generator: visitors with several sessions
over four weeks, landing referrers and UTM tags, devices and countries, engagement reports, custom
events, bots, a second site, and a few hand-made visits at the edges (a one-page visit read for
40 s, visits crossing the period's start and end). The expected figures are computed from those
rows by the plain-Python reference below, which follows the definitions in
``tracker.queries.sessions`` and ``tracker.queries.scope`` and never calls the code under test.
Each question is asked through its fast path (rollups) and with ``raw=True``; both must match.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tracker.errors import OdnosError
from tracker.events import event_row
from tracker.queries.filters import Filters
from tracker.queries.finish_sessions import finish_sessions
from tracker.queries.period import Period
from tracker.queries.site.bots_excluded import bots_excluded
from tracker.queries.site.countries import countries
from tracker.queries.site.custom_events import custom_events
from tracker.queries.site.devices import devices
from tracker.queries.site.entry_pages import entry_pages
from tracker.queries.site.event_properties import event_properties
from tracker.queries.site.exit_pages import exit_pages
from tracker.queries.site.funnel import funnel
from tracker.queries.site.goals import Goal, goals
from tracker.queries.site.overview_kpis import overview_kpis
from tracker.queries.site.realtime import realtime_visitors
from tracker.queries.site.retention import retention
from tracker.queries.site.sources import sources
from tracker.queries.site.timeseries import timeseries
from tracker.queries.site.top_pages import top_pages
from tracker.queries.site.utm import utm
from tracker.store.migrate import migrate

SITE, OTHER = "site-a", "site-b"
PERIOD = Period.days(date(2026, 3, 2), date(2026, 3, 15))  # two ISO weeks
EMPTY_DAY = date(2026, 3, 10)  # no visit starts near it: a gap the series must fill
PAGES = [
    "/",
    "/products",
    "/products/shoes",
    "/products/hat",
    "/pricing",
    "/blog/post",
    "/signup",
    "/checkout",
]
SOURCES = [  # referrer, domain, source, (utm source, medium, campaign)
    ("", "", "direct", ("", "", "")),
    ("https://www.google.com/", "google.com", "search", ("", "", "")),
    ("https://duckduckgo.com/", "duckduckgo.com", "search", ("", "", "")),
    ("https://www.facebook.com/", "facebook.com", "social", ("", "", "")),
    ("", "", "email", ("newsletter", "email", "spring")),
    ("https://www.google.com/", "google.com", "search", ("google", "cpc", "brand")),
]
DEVICES = [
    ("desktop", "Chrome", "Windows"),
    ("desktop", "Firefox", "Linux"),
    ("mobile", "Mobile Safari", "iOS"),
    ("mobile", "Chrome Mobile", "Android"),
    ("tablet", "Mobile Safari", "iOS"),
]
COUNTRIES = ["US", "DE", "RS", "FR", "JP"]
NOT_ACTIONS = {"pageview", "engagement", "identify", "404"}
NOT_CUSTOM = {
    "pageview",
    "engagement",
    "identify",
    "email_sent",
    "email_open",
    "email_click",
    "email_bounce",
    "unsubscribe",
    "survey_response",
}
HOSTILE = [
    "it's",
    "'); DROP TABLE events; --",
    "back\\slash",
    "trailing\\",
    "nul\x00byte",
    "%",
    "_",
    "*'*",
    "%(site_id)s",
    '"quoted"',
]


def epoch(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def visit(
    site: str,
    visitor: str,
    session: str,
    start: float,
    pages: list[tuple[str, int]],
    source: tuple,
    device: tuple,
    country: str,
    extra: list[tuple[int, str, dict]] = (),
) -> list[dict]:
    """A session's rows: pageviews ``(path, engaged_ms)`` 60 s apart, each followed by its engagement
    report (none when engaged_ms is 0), and custom events ``(page index, name, props)`` 3 s in."""
    referrer, domain, kind, (utm_source, utm_medium, utm_campaign) = source
    common = {
        "site_id": site,
        "visitor_id": visitor,
        "session_id": session,
        "device": device[0],
        "browser": device[1],
        "os": device[2],
        "country": country,
        "hostname": "a.example",
    }
    rows, previous = [], ""
    for index, (path, engaged) in enumerate(pages):
        ts = start + 60 * index + 0.123
        landing = index == 0
        rows.append(
            event_row(
                "pageview",
                ts,
                pathname=path,
                url=f"https://a.example{path}",
                referrer=referrer if landing else previous,
                referrer_domain=domain if landing else "a.example",
                referrer_source=kind if landing else "internal",
                utm_source=utm_source if landing else "",
                utm_medium=utm_medium if landing else "",
                utm_campaign=utm_campaign if landing else "",
                **common,
            )
        )
        if engaged:
            rows.append(
                event_row(
                    "engagement", ts + engaged / 1000 % 50 + 1.5, pathname=path, engaged_ms=engaged, **common
                )
            )
        for at, name, props in extra:
            if at == index:
                rows.append(event_row(name, ts + 3.25, props, pathname=path, **common))
        previous = f"https://a.example{path}"
    return rows


def make_rows(seed: int = 11) -> list[dict]:
    """The data set: ~150 visitors of SITE, bots, a second site, and the hand-made edge visits."""
    rng = random.Random(seed)
    rows: list[dict] = []
    first, last = epoch(datetime(2026, 2, 14)), epoch(datetime(2026, 3, 17))
    for n in range(150):
        site = SITE if n < 130 else OTHER
        visitor = f"v{n:03d}"
        device, country = rng.choice(DEVICES), rng.choice(COUNTRIES)
        for k in range(rng.choice([1, 1, 2, 3, 4])):
            start = rng.uniform(first, last)
            if abs(start - epoch(datetime(2026, 3, 10, 12))) < 14 * 3600:
                continue
            count = 1 if rng.random() < 0.4 else rng.randint(2, 5)
            paths = [rng.choice(["/", "/", "/products", "/blog/post"])] + rng.choices(PAGES, k=count - 1)
            if rng.random() < 0.25:  # the shop funnel
                paths = ["/", "/products", "/products/shoes", "/checkout"][: max(count, 2)]
            pages = [(path, rng.choice([0, 2_000, 6_000, 9_999, 15_000, 45_000])) for path in paths]
            extra = []
            for index, path in enumerate(paths):
                if path == "/checkout" and rng.random() < 0.7:
                    extra.append((index, "purchase", {"value": str(rng.choice([20, 35, 99]))}))
                if path == "/signup" and rng.random() < 0.6:
                    extra.append((index, "signup", {"plan": rng.choice(["free", "pro"])}))
                if rng.random() < 0.05:
                    extra.append((index, "outbound", {"url": "https://partner.example/"}))
            rows += visit(
                site, visitor, f"s{n:03d}-{k}", start, pages, rng.choice(SOURCES), device, country, extra
            )
    for n in range(40):  # crawlers: stored, flagged, left out of every number but the bot count
        name, reason = rng.choice([("Googlebot", "crawler_list"), ("HeadlessChrome", "headless")])
        rows.append(
            event_row(
                "pageview",
                rng.uniform(first, last),
                site_id=SITE,
                visitor_id=f"bot{n % 13}",
                session_id=f"bot-s{n}",
                pathname=rng.choice(PAGES),
                browser=name,
                device="bot",
                country="US",
                is_bot=1,
                bot_reason=reason,
                referrer_source="direct",
            )
        )
    search = SOURCES[1]
    # Hand-made visits, each with a browser no other visitor has, so a filter isolates it.
    # A one-page visit read for 40 s: lasts 40 s and is no bounce; a 5 s one is a bounce.
    rows += visit(
        SITE,
        "edge-read",
        "edge-read-1",
        epoch(datetime(2026, 3, 4, 9)),
        [("/blog/post", 40_000)],
        search,
        ("desktop", "Edge", "Windows"),
        "DE",
    )
    rows += visit(
        SITE,
        "edge-quick",
        "edge-quick-1",
        epoch(datetime(2026, 3, 4, 9, 30)),
        [("/blog/post", 5_000)],
        search,
        ("desktop", "Edge", "Windows"),
        "DE",
    )
    # Begins 90 s before the period (a visit of the previous period, measured whole), continues in it.
    rows += visit(
        SITE,
        "edge-early",
        "edge-early-1",
        epoch(datetime(2026, 3, 1, 23, 58, 30)),
        [("/", 2_000), ("/pricing", 2_000), ("/signup", 2_000)],
        SOURCES[3],
        ("desktop", "Opera", "Windows"),
        "FR",
    )
    # Begins 90 s before the period's end: a visit of the period, its last pageview after the end.
    rows += visit(
        SITE,
        "edge-late",
        "edge-late-1",
        epoch(datetime(2026, 3, 15, 23, 58, 30)),
        [("/pricing", 2_000), ("/checkout", 2_000), ("/", 2_000)],
        SOURCES[4],
        ("mobile", "Vivaldi", "Android"),
        "RS",
    )
    return rows


# -- the reference ----------------------------------------------------------------------------------


def key(row: dict) -> int:
    return row["ts"] * 1000 + row["ts_ms"]


def when(row: dict) -> datetime:
    return datetime.fromtimestamp(row["ts"], UTC).replace(tzinfo=None)


HIT = {"page": "pathname", "country": "country", "device": "device", "browser": "browser", "os": "os"}
LANDING = ("referrer_source", "referrer_domain", "utm_source", "utm_medium", "utm_campaign")


def page_match(pattern: str, path: str) -> bool:
    """The page filter's pattern language: ``*`` is any text, everything else literal."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return path == pattern
    if (
        not path.startswith(parts[0])
        or not path.endswith(parts[-1])
        or len(path) < len(parts[0]) + len(parts[-1])
    ):
        return False
    at = len(parts[0])
    for part in parts[1:-1]:
        found = path.find(part, at, len(path) - len(parts[-1]))
        if found < 0:
            return False
        at = found + len(part)
    return True


def hit_ok(row: dict, filters: dict) -> bool:
    for name, value in filters.items():
        if name == "page":
            if not page_match(value, row["pathname"]):
                return False
        elif name in HIT and row[HIT[name]] != value:
            return False
    return True


def window(period: Period) -> tuple[date, date]:
    """The days a period's sessions are read from: one before its first, one after its last."""
    last = (period.end - timedelta(seconds=1)).date()
    return period.start.date() - timedelta(days=1), last + timedelta(days=1)


def ref_sessions(rows: list[dict], period: Period, filters: dict) -> list[dict]:
    """Sessions that began in the period, whole, matching every filter, as defined."""
    lo, hi = window(period)
    grouped = defaultdict(list)
    for row in rows:
        if (
            row["site_id"] == SITE
            and not row["is_bot"]
            and row["session_id"]
            and lo <= when(row).date() <= hi
        ):
            grouped[row["session_id"]].append(row)
    found = []
    for events in grouped.values():
        views = sorted((e for e in events if e["name"] == "pageview"), key=key)
        if not views or not period.start <= when(views[0]) < period.end:
            continue
        entry = views[0]
        session = {
            "visitor": entry["visitor_id"],
            "views": len(views),
            "entry": entry["pathname"],
            "exit": views[-1]["pathname"],
            "began": when(entry),
            "engaged": sum(e["engaged_ms"] for e in events if e["name"] == "engagement"),
            "actions": sum(1 for e in events if e["name"] not in NOT_ACTIONS),
            "paths": [v["pathname"] for v in views],
            "id": entry["session_id"],
            **{name: entry[name] for name in (*LANDING, "country", "device", "browser", "os")},
        }
        session["bounced"] = session["views"] == 1 and session["actions"] == 0 and session["engaged"] < 10_000
        if any(session[name] != value for name, value in filters.items() if name != "page"):
            continue
        if "page" in filters and not any(page_match(filters["page"], p) for p in session["paths"]):
            continue
        found.append(session)
    return found


def ref_events(rows: list[dict], period: Period, filters: dict, names: set[str] | None = None) -> list[dict]:
    """Non-bot events of SITE named ``names`` (default pageviews) in the period passing the hit
    filters; under a landing filter, the events of the matching visits instead (in their window)."""
    names = names or {"pageview"}
    if any(k in LANDING for k in filters):
        allowed = {s["id"] for s in ref_sessions(rows, period, filters)}
        lo, hi = window(period)
        inside = [r for r in rows if r["session_id"] in allowed and lo <= when(r).date() <= hi]
    else:
        inside = [r for r in rows if period.start <= when(r) < period.end]
    return [r for r in inside if r["site_id"] == SITE and not r["is_bot"] and r["name"] in names
            and hit_ok(r, filters)]


def ref_metrics(rows: list[dict], period: Period, filters: dict) -> dict:
    views = ref_events(rows, period, filters)
    sessions = ref_sessions(rows, period, filters)
    visits = len(sessions)
    if any(k in LANDING for k in filters):  # a view of visits: their visitors, all their pageviews
        visitors, pageviews = len({s["visitor"] for s in sessions}), sum(s["views"] for s in sessions)
    else:
        visitors, pageviews = len({r["visitor_id"] for r in views}), len(views)
    return {
        "visitors": visitors,
        "pageviews": pageviews,
        "visits": visits,
        "views_per_visit": sum(s["views"] for s in sessions) / visits if visits else 0.0,
        "bounce_rate": 100 * sum(s["bounced"] for s in sessions) / visits if visits else 0.0,
        "visit_duration": sum(s["engaged"] for s in sessions) / visits / 1000 if visits else 0.0,
    }


def as_dict(metrics) -> dict:
    return {
        name: getattr(metrics, name)
        for name in ("visitors", "pageviews", "visits", "views_per_visit", "bounce_rate", "visit_duration")
    }


def close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], abs=1e-9) for k in a)


def ranked(counts: dict, *tiebreak) -> list:
    return sorted(counts, key=lambda value: (*(-t[value] for t in tiebreak), value))


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def loaded(store):
    migrate(store)
    rows = make_rows()
    store.insert("events", rows)
    # Days up to 7 March are finished (rollup_sessions_final), the later ones are not: every
    # question over PERIOD reads both.
    assert finish_sessions(store, now=datetime(2026, 3, 9, 3))[-1] == date(2026, 3, 7)
    return store, rows


FILTER_SETS = [
    {},
    {"page": "/products*"},
    {"page": "/pricing"},
    {"country": "DE"},
    {"device": "mobile"},
    {"browser": "Firefox"},
    {"os": "iOS"},
    {"referrer_source": "search"},
    {"referrer_domain": "google.com"},
    {"utm_source": "newsletter"},
    {"utm_medium": "cpc"},
    {"utm_campaign": "spring"},
    {"country": "DE", "referrer_source": "search"},
    {"page": "/products/*", "device": "desktop"},
    {"page": "/checkout", "utm_campaign": "spring"},
]


# -- overview ---------------------------------------------------------------------------------------


def test_overview_numbers_match_python_for_every_filter_on_both_paths(loaded) -> None:
    store, rows = loaded
    for wanted in FILTER_SETS:
        filters = Filters(**wanted)
        expected = ref_metrics(rows, PERIOD, wanted)
        assert expected["visits"] > 0, wanted  # every filter keeps something: the test can fail
        for raw in (False, True):
            got = overview_kpis(store, SITE, PERIOD, filters, raw=raw)
            assert close(as_dict(got.current), expected), (wanted, raw)
            assert close(as_dict(got.previous), ref_metrics(rows, PERIOD.previous(), wanted)), (wanted, raw)


def test_changes_against_the_previous_period(loaded) -> None:
    store, rows = loaded
    now, before = ref_metrics(rows, PERIOD, {}), ref_metrics(rows, PERIOD.previous(), {})
    kpis = {k.name: k for k in overview_kpis(store, SITE, PERIOD).kpis()}
    assert list(kpis) == [
        "visitors",
        "visits",
        "pageviews",
        "views_per_visit",
        "bounce_rate",
        "visit_duration",
    ]
    assert kpis["visitors"].change == pytest.approx(
        (now["visitors"] - before["visitors"]) / before["visitors"] * 100
    )
    assert kpis["bounce_rate"].change == pytest.approx(now["bounce_rate"] - before["bounce_rate"])  # points
    quiet = overview_kpis(store, SITE, Period.days(date(2025, 1, 1), date(2025, 1, 7)))
    assert all(k.change is None and k.value == 0 for k in quiet.kpis())


def test_a_one_page_visit_lasts_its_engaged_time_and_the_quick_one_bounces(loaded) -> None:
    store, _ = loaded
    edge = Filters(browser="Edge")
    for raw in (False, True):
        both = overview_kpis(
            store, SITE, Period(datetime(2026, 3, 4, 8), datetime(2026, 3, 4, 10)), edge, raw=raw
        )
        assert (both.current.visits, both.current.visit_duration, both.current.bounce_rate) == (2, 22.5, 50.0)
        read = overview_kpis(
            store, SITE, Period(datetime(2026, 3, 4, 9), datetime(2026, 3, 4, 9, 20)), edge, raw=raw
        )
        assert (read.current.visits, read.current.visit_duration, read.current.bounce_rate) == (1, 40.0, 0.0)


def test_visits_crossing_the_period_edges_belong_to_the_period_they_began_in(loaded) -> None:
    store, _ = loaded
    for raw in (False, True):
        # edge-early began 90 s before PERIOD: not one of its visits, but its last pageview counts;
        # in the previous period it is a visit of three pages, two of them inside that period.
        early = overview_kpis(store, SITE, PERIOD, Filters(browser="Opera"), raw=raw)
        assert (early.current.visits, early.current.pageviews, early.current.visitors) == (0, 1, 1)
        assert (early.previous.visits, early.previous.views_per_visit, early.previous.pageviews) == (
            1,
            3.0,
            2,
        )
        # edge-late began 90 s before the end: a visit of PERIOD with all three pages, two inside it.
        late = overview_kpis(store, SITE, PERIOD, Filters(browser="Vivaldi"), raw=raw).current
        assert (late.visits, late.views_per_visit, late.pageviews) == (1, 3.0, 2)
        exits = exit_pages(store, SITE, PERIOD, Filters(browser="Vivaldi"), raw=raw)
        assert [(e.page, e.exits) for e in exits] == [("/", 1)]  # it ended after the period's end
        assert [
            (e.value, e.visits) for e in entry_pages(store, SITE, PERIOD, Filters(browser="Vivaldi"), raw=raw)
        ] == [("/pricing", 1)]


# -- time series ------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["visitors", "pageviews", "visits", "bounce_rate", "visit_duration"])
def test_daily_series_fills_gaps_and_matches_python(loaded, metric) -> None:
    store, rows = loaded
    for raw in (False, True):
        series = timeseries(store, SITE, PERIOD, metric=metric, raw=raw)
        assert series.bucket == "day"
        assert [p.start.date() for p in series.points] == [
            date(2026, 3, 2) + timedelta(days=n) for n in range(14)
        ]
        assert len(series.previous) == 14 and series.previous[0].start == datetime(2026, 2, 16)
        for point in series.points:
            day = Period(point.start, point.start + timedelta(days=1))
            assert point.value == pytest.approx(ref_metrics(rows, day, {})[metric]), (
                metric,
                point.start,
                raw,
            )
        gap = next(p for p in series.points if p.start.date() == EMPTY_DAY)
        assert gap.value == 0


def test_series_buckets_follow_the_length(loaded) -> None:
    store, rows = loaded
    day = Period.days(date(2026, 3, 5), date(2026, 3, 5))
    hours = timeseries(store, SITE, day, metric="pageviews")
    assert hours.bucket == "hour" and len(hours.points) == 24
    for point in hours.points:
        hour = Period(point.start, point.start + timedelta(hours=1))
        assert point.value == ref_metrics(rows, hour, {})["pageviews"]
    assert timeseries(store, SITE, Period.days(date(2026, 1, 1), date(2026, 4, 30))).bucket == "week"
    months = timeseries(store, SITE, Period.days(date(2025, 1, 1), date(2026, 3, 31)), metric="visits")
    assert months.bucket == "month" and months.points[-1].start == datetime(2026, 3, 1)
    march = Period(datetime(2026, 3, 1), datetime(2026, 4, 1))
    assert months.points[-1].value == ref_metrics(rows, march, {})["visits"]
    weekly = timeseries(
        store, SITE, PERIOD, Filters(country="DE"), metric="visitors", bucket="week", raw=True
    )
    assert [p.value for p in weekly.points] == [
        ref_metrics(rows, Period(p.start, p.start + timedelta(days=7)), {"country": "DE"})["visitors"]
        for p in weekly.points
    ]


# -- breakdowns -------------------------------------------------------------------------------------


def ref_visit_rows(rows, period, filters, column, skip_empty=False) -> list[tuple]:
    groups = defaultdict(list)
    for session in ref_sessions(rows, period, filters):
        groups[session[column]].append(session)
    if skip_empty:
        groups.pop("", None)
    visitors = {v: len({s["visitor"] for s in g}) for v, g in groups.items()}
    visits = {v: len(g) for v, g in groups.items()}
    return [
        (
            v,
            visitors[v],
            visits[v],
            100 * sum(s["bounced"] for s in groups[v]) / visits[v],
            sum(s["engaged"] for s in groups[v]) / visits[v] / 1000,
        )
        for v in ranked(groups, visitors, visits)
    ]


def visit_rows(found) -> list[tuple]:
    return [
        (r.value, r.visitors, r.visits, pytest.approx(r.bounce_rate), pytest.approx(r.visit_duration))
        for r in found
    ]


@pytest.mark.parametrize(
    "wanted", [{}, {"country": "DE"}, {"page": "/products*"}, {"utm_source": "newsletter"}]
)
def test_visit_breakdowns_match_python(loaded, wanted) -> None:
    store, rows = loaded
    filters = Filters(**wanted)
    for raw in (False, True):
        assert visit_rows(entry_pages(store, SITE, PERIOD, filters, limit=50, raw=raw)) == ref_visit_rows(
            rows, PERIOD, wanted, "entry"
        )
        assert visit_rows(sources(store, SITE, PERIOD, filters, raw=raw)) == ref_visit_rows(
            rows, PERIOD, wanted, "referrer_source"
        )
        assert visit_rows(
            sources(store, SITE, PERIOD, filters, "referrer_domain", raw=raw)
        ) == ref_visit_rows(rows, PERIOD, wanted, "referrer_domain", skip_empty=True)
        for dimension in ("utm_source", "utm_medium", "utm_campaign"):
            assert visit_rows(utm(store, SITE, PERIOD, filters, dimension, raw=raw)) == ref_visit_rows(
                rows, PERIOD, wanted, dimension, skip_empty=True
            )


def test_exit_pages_and_rates_match_python(loaded) -> None:
    store, rows = loaded
    sessions = ref_sessions(rows, PERIOD, {})
    exits = defaultdict(list)
    for s in sessions:
        exits[s["exit"]].append(s)
    views = defaultdict(int)
    for r in ref_events(rows, PERIOD, {}):
        views[r["pathname"]] += 1
    visitors = {p: len({s["visitor"] for s in g}) for p, g in exits.items()}
    counts = {p: len(g) for p, g in exits.items()}
    expected = [
        (p, visitors[p], counts[p], pytest.approx(100 * counts[p] / views[p]))
        for p in ranked(exits, visitors, counts)
    ][:5]
    for raw in (False, True):
        got = exit_pages(store, SITE, PERIOD, limit=5, raw=raw)
        assert [(r.page, r.visitors, r.exits, r.exit_rate) for r in got] == expected


@pytest.mark.parametrize(
    "wanted", [{}, {"page": "/products/*"}, {"device": "mobile"}, {"referrer_source": "search"}]
)
def test_top_pages_match_python(loaded, wanted) -> None:
    store, rows = loaded
    views = ref_events(rows, PERIOD, wanted)
    engaged = ref_events(rows, PERIOD, wanted, {"engagement"})
    visitors = defaultdict(set)
    counts = defaultdict(int)
    for r in views:
        visitors[r["pathname"]].add(r["visitor_id"])
        counts[r["pathname"]] += 1
    time = defaultdict(int)
    for r in engaged:
        time[r["pathname"]] += r["engaged_ms"]
    unique = {p: len(v) for p, v in visitors.items()}
    expected = [
        (p, unique[p], counts[p], pytest.approx(time[p] / counts[p] / 1000))
        for p in ranked(counts, unique, counts)
    ]
    for raw in (False, True):
        got = top_pages(store, SITE, PERIOD, Filters(**wanted), limit=100, raw=raw)
        assert [(r.page, r.visitors, r.pageviews, r.time_on_page) for r in got] == expected


@pytest.mark.parametrize(
    "wanted",
    [{}, {"country": "US"}, {"os": "iOS", "device": "tablet"}, {"page": "/"}, {"utm_campaign": "spring"}],
)
def test_countries_and_devices_match_python(loaded, wanted) -> None:
    store, rows = loaded
    views = ref_events(rows, PERIOD, wanted)
    for column, ask in (
        ("country", lambda raw: countries(store, SITE, PERIOD, Filters(**wanted), raw=raw)),
        ("device", lambda raw: devices(store, SITE, PERIOD, Filters(**wanted), raw=raw)),
        ("browser", lambda raw: devices(store, SITE, PERIOD, Filters(**wanted), "browser", raw=raw)),
        ("os", lambda raw: devices(store, SITE, PERIOD, Filters(**wanted), "os", raw=raw)),
    ):
        visitors, counts = defaultdict(set), defaultdict(int)
        for r in views:
            visitors[r[column]].add(r["visitor_id"])
            counts[r[column]] += 1
        unique = {v: len(s) for v, s in visitors.items()}
        expected = [(v, unique[v], counts[v]) for v in ranked(counts, unique, counts)]
        for raw in (False, True):
            assert [(r.value, r.visitors, r.pageviews) for r in ask(raw)] == expected, (column, raw)


# -- events, goals, funnels, retention ----------------------------------------------------------------


@pytest.mark.parametrize("wanted", [{}, {"country": "DE"}, {"referrer_source": "direct"}])
def test_custom_events_goals_and_properties_match_python(loaded, wanted) -> None:
    store, rows = loaded
    filters = Filters(**wanted)
    total = len({r["visitor_id"] for r in ref_events(rows, PERIOD, wanted)})
    customs = [r for r in ref_events(rows, PERIOD, wanted, {r["name"] for r in rows} - NOT_CUSTOM)]
    visitors, counts = defaultdict(set), defaultdict(int)
    for r in customs:
        visitors[r["name"]].add(r["visitor_id"])
        counts[r["name"]] += 1
    unique = {n: len(v) for n, v in visitors.items()}
    expected = [
        (n, unique[n], counts[n], pytest.approx(100 * unique[n] / total))
        for n in ranked(counts, unique, counts)
    ]
    targets = [Goal("page", "/checkout"), Goal("event", "signup"), Goal("page", "/products/*")]
    views = ref_events(rows, PERIOD, wanted)
    reached = [
        [r for r in views if r["pathname"] == "/checkout"],
        [r for r in customs if r["name"] == "signup"],
        [r for r in views if r["pathname"].startswith("/products/")],
    ]
    for raw in (False, True):
        got = custom_events(store, SITE, PERIOD, filters, raw=raw)
        assert [(e.name, e.visitors, e.events, e.conversion_rate) for e in got] == expected
        assert {"purchase", "signup"} <= {e.name for e in got} or wanted
        found = goals(store, SITE, PERIOD, targets, filters, raw=raw)
        assert [(g.goal, g.visitors, g.conversions, g.conversion_rate) for g in found] == [
            (
                goal,
                len({r["visitor_id"] for r in hits}),
                len(hits),
                pytest.approx(100 * len({r["visitor_id"] for r in hits}) / total),
            )
            for goal, hits in zip(targets, reached, strict=True)
        ]
    plans = defaultdict(list)
    for r in customs:
        if r["name"] == "signup":
            plans[r["props.value"][0]].append(r["visitor_id"])
    props = event_properties(store, SITE, PERIOD, "signup", filters)
    assert sorted((p.key, p.value, p.visitors, p.events) for p in props) == sorted(
        ("plan", plan, len(set(who)), len(who)) for plan, who in plans.items()
    )


def ref_funnel(rows, period, steps, window, wanted) -> list[int]:
    def matches(row, goal):
        if goal.kind == "page":
            return row["name"] == "pageview" and page_match(goal.value, row["pathname"])
        return row["name"] == goal.value

    names = {r["name"] for r in rows}
    events = [r for r in ref_events(rows, period, wanted, names) if any(matches(r, g) for g in steps)]
    by_visitor = defaultdict(list)
    for r in events:
        by_visitor[r["visitor_id"]].append(r)
    levels = []
    for evs in by_visitor.values():
        evs.sort(key=key)
        best = 0
        for i, start in enumerate(evs):
            if not matches(start, steps[0]):
                continue
            level, at = 1, i
            for step in steps[1:]:
                nxt = next(
                    (
                        j
                        for j in range(at + 1, len(evs))
                        if matches(evs[j], step) and evs[j]["ts"] - start["ts"] <= window
                    ),
                    None,
                )
                if nxt is None:
                    break
                level, at = level + 1, nxt
            best = max(best, level)
        levels.append(best)
    return [sum(1 for lv in levels if lv >= n) for n in range(1, len(steps) + 1)]


@pytest.mark.parametrize("wanted", [{}, {"device": "mobile"}, {"referrer_source": "search"}])
def test_funnel_drop_off_matches_python(loaded, wanted) -> None:
    store, rows = loaded
    steps = [
        Goal("page", "/"),
        Goal("page", "/products*"),
        Goal("page", "/checkout"),
        Goal("event", "purchase"),
    ]
    expected = ref_funnel(rows, PERIOD, steps, 3600, wanted)
    assert expected[0] > expected[-1] > 0
    got = funnel(store, SITE, PERIOD, steps, Filters(**wanted), window=3600)
    assert [s.visitors for s in got] == expected
    assert [s.dropoff for s in got] == [0] + [a - b for a, b in zip(expected, expected[1:], strict=False)]
    assert got[-1].conversion_rate == pytest.approx(100 * expected[-1] / expected[0])
    tight = funnel(store, SITE, PERIOD, steps, Filters(**wanted), window=90)  # 60 s between pages
    assert [s.visitors for s in tight] == ref_funnel(rows, PERIOD, steps, 90, wanted)
    for window in (3600, 90):  # unfiltered, the hits come from rollup_funnel_hits: the same answer raw
        assert funnel(store, SITE, PERIOD, steps, Filters(**wanted), window=window, raw=True) == \
            funnel(store, SITE, PERIOD, steps, Filters(**wanted), window=window)


@pytest.mark.parametrize("wanted", [{}, {"country": "DE"}])
def test_steps_in_the_same_second_count_in_the_funnels_order(store, wanted) -> None:
    """windowFunnel alone orders same-second hits as they arrive: stored step 2 first, a visitor
    would fall out after step 1. Each visitor here is one insert, with its hits in another order."""
    migrate(store)
    at = epoch(datetime(2026, 3, 4, 10, 0, 0))
    steps = [Goal("page", "/"), Goal("page", "/pricing"), Goal("event", "signup")]

    def hit(visitor: str, step: int, seconds: float) -> dict:
        page = {"name": "pageview", "pathname": ["/", "/pricing"][step]} if step < 2 else {"name": "signup"}
        return event_row(page.pop("name"), at + seconds, site_id=SITE, visitor_id=visitor, session_id=visitor,
                         country="DE", **page)

    visitors = {  # hits in insert order -> the step the visitor reaches
        "v-reversed": ([hit("v-reversed", 2, 0.1), hit("v-reversed", 1, 0.2), hit("v-reversed", 0, 0.3)], 3),
        "v-in-order": ([hit("v-in-order", 0, 0.1), hit("v-in-order", 1, 0.2), hit("v-in-order", 2, 0.3)], 3),
        "v-late-pricing": ([hit("v-late-pricing", 2, 0.5), hit("v-late-pricing", 0, 0.5),
                            hit("v-late-pricing", 1, 4.0)], 2),  # its signup came before /pricing
        "v-window": ([hit("v-window", 1, 30.0), hit("v-window", 0, 0.0), hit("v-window", 2, 30.9)], 3),
        "v-too-late": ([hit("v-too-late", 1, 31.0), hit("v-too-late", 0, 0.0)], 1),  # 31 s > the window
    }
    for rows, _ in visitors.values():
        store.insert("events", rows)
    reached = [sum(1 for _, level in visitors.values() if level >= n) for n in (1, 2, 3)]
    assert reached == [5, 4, 3]
    for raw in (False, True):
        got = funnel(store, SITE, PERIOD, steps, Filters(**wanted), window=30, raw=raw)
        assert [s.visitors for s in got] == reached


@pytest.mark.parametrize("wanted", [{}, {"country": "US"}, {"referrer_source": "search"}])
def test_weekly_retention_cohorts_match_python(loaded, wanted) -> None:
    store, rows = loaded
    period = Period.days(date(2026, 2, 18), date(2026, 3, 11))  # widened to Mon 16 Feb .. Sun 15 Mar
    weeks = Period(datetime(2026, 2, 16), datetime(2026, 3, 16))
    seen = defaultdict(set)
    for r in ref_events(rows, weeks, wanted):
        if not weeks.start <= when(r) < weeks.end:  # a landing filter's visits reach a day further
            continue
        day = when(r).date()
        seen[r["visitor_id"]].add(day - timedelta(days=day.weekday()))
    cohorts = defaultdict(lambda: [0, 0, 0, 0])
    for visitor_weeks in seen.values():
        first = min(visitor_weeks)
        for week in visitor_weeks:
            cohorts[first][(week - first).days // 7] += 1
    expected = [
        (week, counts[0], counts[: 4 - (week - date(2026, 2, 16)).days // 7])
        for week, counts in sorted(cohorts.items())
    ]
    assert expected and any(sum(c[2][1:]) for c in expected)  # some visitors come back
    for raw in (False, True):
        got = retention(store, SITE, period, Filters(**wanted), raw=raw)
        assert [(c.week, c.visitors, c.retained) for c in got] == expected


def test_realtime_counts_visitors_of_the_last_minutes(store) -> None:
    migrate(store)
    now = datetime(2026, 5, 5, 12, 0, 0)
    at = epoch(now)
    store.insert(
        "events",
        [
            event_row("pageview", at - 120, site_id=SITE, visitor_id="r1", session_id="r1"),
            event_row("engagement", at - 30, site_id=SITE, visitor_id="r2", session_id="r2", engaged_ms=9000),
            event_row("pageview", at - 400, site_id=SITE, visitor_id="r3", session_id="r3"),
            event_row("pageview", at - 60, site_id=SITE, visitor_id="bot", is_bot=1),
            event_row("pageview", at - 60, site_id=OTHER, visitor_id="r4"),
        ],
    )
    assert realtime_visitors(store, SITE, now=now) == 2
    assert realtime_visitors(store, SITE, now=now, minutes=10) == 3
    assert realtime_visitors(store, SITE, now=now.replace(tzinfo=UTC)) == 2


def test_bots_are_counted_apart(loaded) -> None:
    store, rows = loaded
    bots = [r for r in rows if r["is_bot"] and r["site_id"] == SITE and PERIOD.start <= when(r) < PERIOD.end]
    by = defaultdict(int)
    for r in bots:
        by[(r["bot_reason"], r["browser"])] += 1
    for raw in (False, True):
        got = bots_excluded(store, SITE, PERIOD, raw=raw)
        assert (got.pageviews, got.visitors) == (len(bots), len({r["visitor_id"] for r in bots}))
        assert {(b.reason, b.agent): b.pageviews for b in got.rows} == by
    assert overview_kpis(store, SITE, PERIOD, Filters(browser="Googlebot")).current.pageviews == 0
    assert (
        bots_excluded(store, SITE, PERIOD, Filters(browser="Googlebot")).pageviews
        == by[("crawler_list", "Googlebot")]
    )


# -- bad input --------------------------------------------------------------------------------------


def test_hostile_filter_values_match_nothing_and_break_nothing(loaded) -> None:
    store, rows = loaded
    for dimension in (
        "page",
        "country",
        "device",
        "browser",
        "os",
        "referrer_source",
        "referrer_domain",
        "utm_source",
        "utm_medium",
        "utm_campaign",
    ):
        for value in HOSTILE:
            filters = Filters(**{dimension: value})
            for raw in (False, True):
                got = overview_kpis(store, SITE, PERIOD, filters, raw=raw).current
                assert (got.visitors, got.visits, got.pageviews) == (0, 0, 0), (dimension, value)
            assert top_pages(store, SITE, PERIOD, filters) == []
            assert entry_pages(store, SITE, PERIOD, filters) == []
    assert Filters(page="%").params() == {"f_page": "\\%"}  # literal, not "any"
    for site in HOSTILE:
        assert overview_kpis(store, site, PERIOD).current.visitors == 0
    assert store.query("SELECT count() FROM events").scalar() == len(rows)


@pytest.mark.parametrize(
    "ask, code",
    [
        (lambda s: Filters.parse({"colour": "red"}), "bad_filter"),
        (lambda s: Filters(country=7), "bad_filter"),
        (lambda s: Filters(page="x" * 5000), "bad_filter"),
        (lambda s: devices(s, SITE, PERIOD, dimension="screen"), "bad_dimension"),
        (lambda s: sources(s, SITE, PERIOD, dimension="pathname; DROP TABLE events"), "bad_dimension"),
        (lambda s: utm(s, SITE, PERIOD, dimension="utm_term"), "bad_dimension"),
        (lambda s: timeseries(s, SITE, PERIOD, metric="revenue"), "bad_metric"),
        (lambda s: timeseries(s, SITE, PERIOD, bucket="fortnight"), "bad_bucket"),
        (
            lambda s: timeseries(s, SITE, Period.days(date(2024, 1, 1), date(2025, 6, 1)), bucket="hour"),
            "bad_bucket",
        ),
        (lambda s: top_pages(s, SITE, PERIOD, limit=0), "bad_limit"),
        (lambda s: top_pages(s, SITE, PERIOD, limit="10"), "bad_limit"),
        (lambda s: Period(datetime(2026, 3, 10), datetime(2026, 3, 1)), "bad_period"),
        (lambda s: Period(datetime(2026, 3, 1), datetime(2026, 3, 1)), "bad_period"),
        (lambda s: Period.days(date(2016, 1, 1), date(2025, 12, 31)), "bad_period"),
        (lambda s: Period("2026-01-01", "2026-02-01"), "bad_period"),
        (lambda s: Period(datetime(1900, 1, 1), datetime(1900, 2, 1)), "bad_period"),
        (lambda s: overview_kpis(s, 42, PERIOD), "bad_site"),
        (lambda s: goals(s, SITE, PERIOD, [Goal("page", "/")] * 21), "bad_goal"),
        (lambda s: goals(s, SITE, PERIOD, [("page", "/")]), "bad_goal"),
        (lambda s: Goal("referrer", "x"), "bad_goal"),
        (lambda s: funnel(s, SITE, PERIOD, [Goal("page", "/")]), "bad_goal"),
        (lambda s: funnel(s, SITE, PERIOD, [Goal("page", "/"), Goal("page", "/x")], window=0), "bad_window"),
        (lambda s: realtime_visitors(s, SITE, minutes=600), "bad_period"),
    ],
)
def test_bad_input_is_a_clear_400(store, ask, code) -> None:
    migrate(store)
    with pytest.raises(OdnosError) as caught:
        ask(store)
    assert caught.value.code == code
    assert caught.value.status == 400
    assert caught.value.message


def test_periods_previous_alignment_and_time_zones() -> None:
    period = Period(datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 3, 10, tzinfo=UTC))
    assert period.start == datetime(2026, 3, 2, 10) and period.previous() == Period(
        datetime(2026, 3, 1, 10), datetime(2026, 3, 2, 10)
    )
    assert period.aligned("hour") and not period.aligned("day") and PERIOD.aligned("day")
    local = datetime(2026, 3, 2, 12, tzinfo=ZoneInfo("Europe/Belgrade"))
    assert Period(local, local + timedelta(hours=1)).start == datetime(2026, 3, 2, 11)
    assert Period.last(timedelta(days=7), now=datetime(2026, 3, 9)).start == datetime(2026, 3, 2)
    assert [Period.days(date(2026, 1, 1), date(2026, 1, d)).bucket() for d in (2, 3, 31)] == [
        "hour",
        "day",
        "day",
    ]


def test_unaligned_periods_fall_back_to_raw_events_with_the_same_answer(loaded) -> None:
    store, rows = loaded
    odd = Period(datetime(2026, 3, 3, 10, 30, 15), datetime(2026, 3, 9, 15, 45))
    for wanted in ({}, {"country": "DE"}, {"page": "/"}):
        got = overview_kpis(store, SITE, odd, Filters(**wanted))
        assert close(as_dict(got.current), ref_metrics(rows, odd, wanted))
        assert top_pages(store, SITE, odd, Filters(**wanted)) == top_pages(
            store, SITE, odd, Filters(**wanted), raw=True
        )
