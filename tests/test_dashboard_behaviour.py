"""The behaviour page through the real server: its figures are the query layer's, bad URLs get a message.

`odnos demo` fills a ClickHouse server database; `odnos serve` serves it; a viewer signs in and asks
for the page the way the browser's router does (a Dash callback over HTTP). Every table, the funnel,
the goals, retention and the bot line are compared with the ``tracker.queries`` functions run here
on the same store for the same period. Hand-edited URLs (a goal of an unknown kind, a funnel of one
step, a negative window, SQL in a goal) give a message in the page, never an error. One headless
Chromium test opens the page and changes the funnel through its input.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode

import pytest

from dashboard.format import number
from dashboard.pages.behaviour import TAB_GROUPS
from dashboard.view import View
from tests.fixtures.dashboard import (
    Served,
    as_rows,
    callback_output,
    grid_rows,
    page,
    serve_demo,
    severe,
    sign_in,
)
from tests.fixtures.web import WebClient, component
from tracker.queries.site.bots_excluded import bots_excluded
from tracker.queries.site.countries import countries
from tracker.queries.site.custom_events import custom_events
from tracker.queries.site.devices import devices
from tracker.queries.site.entry_pages import entry_pages
from tracker.queries.site.event_properties import event_properties
from tracker.queries.site.exit_pages import exit_pages
from tracker.queries.site.funnel import funnel
from tracker.queries.site.goals import Goal, goals
from tracker.queries.site.retention import retention
from tracker.queries.site.sources import sources
from tracker.queries.site.utm import utm

pytestmark = pytest.mark.server


FUNNEL_ROWS = "#table-funnel .ag-center-cols-container .ag-row"
ALPHA_3 = {"US": "USA", "DE": "DEU", "GB": "GBR", "RS": "SRB", "FR": "FRA", "NL": "NLD", "CA": "CAN",
           "IN": "IND", "BR": "BRA", "ES": "ESP", "IT": "ITA", "SE": "SWE", "PL": "POL", "JP": "JPN",
           "AU": "AUS"}
"""The demo's countries (``tracker.demo.COUNTRIES``) as the map's shapes name them (ISO 3166 alpha-3)."""


@pytest.fixture(scope="module")
def demo(clickhouse_server, tmp_path_factory) -> Iterator[Served]:
    yield from serve_demo(clickhouse_server, tmp_path_factory.mktemp("dash-behaviour"))


@pytest.fixture(scope="module")
def viewer(demo: Served) -> WebClient:
    return demo.client()


def _view(demo: Served, **query: str) -> View:
    return View.parse({"site": demo.site_id, **query}, default_site=demo.site_id)


def _shown(viewer: WebClient, search: str, group: str, label: str) -> dict:
    """What the page draws when the tab ``label`` of ``group`` is first shown (its table's box)."""
    later = TAB_GROUPS[group][1:]
    answer = viewer.callback(callback_output(viewer, f"behaviour-{group}-tabs"), [
        {"id": f"behaviour-{group}-tabs", "property": "value", "value": label}], state=[
        *({"id": f"behaviour-{tab.table}-later", "property": "children", "value": None} for tab in later),
        {"id": "url", "property": "search", "value": search}])
    assert answer.status == 200, answer.body
    return json.loads(answer.body)["response"]


def test_every_table_shows_what_the_query_layer_answers(demo: Served, viewer: WebClient) -> None:
    tree = page(viewer, "/behaviour", {"site": demo.site_id})
    for group, tabs in TAB_GROUPS.items():  # the other tabs are drawn when shown
        for tab in tabs[1:]:
            assert component(tree, {"type": "table", "name": tab.table, "dim": tab.dim}) is None
            shown = _shown(viewer, f"?site={demo.site_id}", group, tab.label)
            assert set(shown) == {f"behaviour-{tab.table}-later"}, "the shown tab alone is drawn"
            tree = [tree, shown[f"behaviour-{tab.table}-later"]["children"]]
    view, store = _view(demo), demo.runtime.reader
    site, period = view.site_id, view.period
    expected = {
        ("entry_pages", "page"): entry_pages(store, site, period),
        ("exit_pages", "page"): exit_pages(store, site, period),
        ("sources", "referrer_source"): sources(store, site, period),
        ("referrers", "referrer_domain"): sources(store, site, period, dimension="referrer_domain"),
        **{(dim, dim): utm(store, site, period, dimension=dim)
           for dim in ("utm_source", "utm_medium", "utm_campaign")},
        ("countries", "country"): countries(store, site, period),
        ("devices", "device"): devices(store, site, period),
        ("browsers", "browser"): devices(store, site, period, dimension="browser"),
        ("os", "os"): devices(store, site, period, dimension="os"),
        ("events", ""): custom_events(store, site, period),
    }
    for (name, dim), rows in expected.items():
        assert rows, f"the demo has no {name}: the comparison would prove nothing"
        assert grid_rows(tree, name, dim) == as_rows(rows), name
    first = custom_events(store, site, period)[0].name
    assert grid_rows(tree, "event_properties") == as_rows(event_properties(store, site, period, first))
    world = component(tree, "behaviour-countries-map")["figure"]["data"][0]
    every = [r for r in countries(store, site, period) if r.value]
    assert world["type"] == "choropleth" and world["locationmode"] == "ISO-3"
    assert world["locations"] == [ALPHA_3[r.value] for r in every]  # every country, not a top 10
    assert world["z"] == [r.visitors for r in every]


def test_the_bot_line_counts_what_was_left_out(demo: Served, viewer: WebClient) -> None:
    tree = page(viewer, "/behaviour", {"site": demo.site_id, "period": "7d"})
    view = _view(demo, period="7d")
    bots = bots_excluded(demo.runtime.reader, view.site_id, view.period)
    counted = demo.runtime.reader.query(
        "SELECT count() FROM events WHERE site_id = %(site)s AND name = 'pageview' AND is_bot = 1 "
        "AND ts >= %(start)s AND ts < %(end)s", {"site": demo.site_id, **view.period.params()}).scalar()
    assert bots.pageviews == counted > 0
    line = component(tree, "behaviour-bots")["children"]
    assert f"{number(bots.pageviews)} pageviews from {number(bots.visitors)} bot visitors" in line
    assert bots.rows[0].agent in line


def test_retention_cells_are_each_cohorts_share(demo: Served, viewer: WebClient) -> None:
    tree = page(viewer, "/behaviour", {"site": demo.site_id})
    view = _view(demo)
    cohorts = retention(demo.runtime.reader, view.site_id, view.period)
    assert len(cohorts) >= 4 and any(c.retained[1:] and c.retained[1] for c in cohorts)
    body = component(tree, "behaviour-retention")["children"][1]["props"]["children"]
    assert len(body) == len(cohorts)
    for row, cohort in zip(body, cohorts, strict=True):
        cells = row["props"]["children"]
        assert cells[1]["props"]["children"] == f"{cohort.visitors:,}"
        shown = [cell["props"]["children"] for cell in cells[2:2 + len(cohort.retained)]]
        assert shown == [f"{100 * n / cohort.visitors:.1f}%" for n in cohort.retained]
        future = cells[2 + len(cohort.retained):]  # the weeks that have not come yet
        assert all(cell["props"]["children"] == "" for cell in future)


def test_without_goals_in_the_url_the_top_custom_events_are_the_goals(demo: Served,
                                                                      viewer: WebClient) -> None:
    tree = page(viewer, "/behaviour", {"site": demo.site_id})
    view = _view(demo)
    events = custom_events(demo.runtime.reader, view.site_id, view.period, limit=5)
    top = [Goal("event", row.name) for row in events]
    assert component(tree, "behaviour-goals-input")["value"] == [f"event:{g.value}" for g in top]
    found = goals(demo.runtime.reader, view.site_id, view.period, top)
    assert [(r["visitors"], r["conversions"], r["conversion_rate"]) for r in grid_rows(tree, "goals")] == \
        [(r.visitors, r.conversions, r.conversion_rate) for r in found]


def test_goals_and_funnel_from_the_url_are_the_query_layers(demo: Served, viewer: WebClient) -> None:
    query = {"site": demo.site_id, "goals": "page:/products/*,event:signup",
             "funnel": "page:/,page:/products,event:add_to_cart", "window": "3600"}
    tree = page(viewer, "/behaviour", query)
    view = _view(demo)
    wanted = [Goal("page", "/products/*"), Goal("event", "signup")]
    found = goals(demo.runtime.reader, view.site_id, view.period, wanted)
    assert [r["goal"] for r in grid_rows(tree, "goals")] == ["Page /products/*", "Event signup"]
    assert [(r["visitors"], r["conversion_rate"]) for r in grid_rows(tree, "goals")] == \
        [(r.visitors, r.conversion_rate) for r in found] and found[0].visitors > 0
    steps = funnel(demo.runtime.reader, view.site_id, view.period,
                   [Goal("page", "/"), Goal("page", "/products"), Goal("event", "add_to_cart")], window=3600)
    shown = grid_rows(tree, "funnel")
    assert [(r["visitors"], r["dropoff"], r["conversion_rate"]) for r in shown] == \
        [(s.visitors, s.dropoff, s.conversion_rate) for s in steps]
    assert steps[0].visitors > steps[1].visitors > steps[2].visitors > 0
    chart = component(tree, "behaviour-funnel-chart")["figure"]["data"]
    assert chart[0]["y"] == [s.visitors for s in steps] and chart[1]["y"] == [s.dropoff for s in steps]
    assert component(tree, "behaviour-funnel-window")["value"] == "3600"


@pytest.mark.parametrize(("query", "problem", "says"), [
    ({"goals": "visit:/signup"}, "behaviour-goals-problem", "unknown goal kind 'visit'"),
    ({"goals": "/signup"}, "behaviour-goals-problem", "needs a kind"),
    ({"funnel": "page:/pricing"}, "behaviour-funnel-problem", "2 to 20 steps"),
    ({"funnel": "page:/pricing,page:/signup", "window": "-5"}, "behaviour-funnel-problem", "window"),
    ({"funnel": "page:/pricing,page:/signup", "window": "a day"}, "behaviour-funnel-problem", "window"),
    ({"funnel": "page:/pricing,banana:/signup"}, "behaviour-funnel-problem", "unknown funnel step kind"),
])
def test_a_bad_goal_or_funnel_is_a_message_beside_the_rest_of_the_page(
        demo: Served, viewer: WebClient, query: dict[str, str], problem: str, says: str) -> None:
    tree = page(viewer, "/behaviour", {"site": demo.site_id, **query})
    shown = component(tree, problem)
    assert shown is not None and says in shown["children"], shown
    assert grid_rows(tree, "entry_pages", "page")  # the rest of the page is there


@pytest.mark.parametrize("hostile", ["event:x'); DROP TABLE events; --", "page:/' OR '1'='1",
                                     'event:"\\\x00'])
def test_quotes_and_sql_in_a_goal_match_nothing_and_break_nothing(
        demo: Served, viewer: WebClient, hostile: str) -> None:
    before = demo.runtime.reader.query("SELECT count() FROM events").scalar()
    tree = page(viewer, "/behaviour", {"site": demo.site_id, "goals": f"event:signup,{hostile}"})
    rows = grid_rows(tree, "goals")
    assert rows[0]["visitors"] > 0 and rows[1]["visitors"] == 0 and rows[1]["conversions"] == 0
    assert demo.runtime.reader.query("SELECT count() FROM events").scalar() == before


def test_unknown_parameters_and_sites_are_messages(demo: Served, viewer: WebClient) -> None:
    for query, says in (({"site": demo.site_id, "goal": "page:/x"}, "unknown filter 'goal'"),
                        ({"site": "nope"}, "There is no site 'nope'"),
                        ({"site": demo.site_id, "period": "custom", "from": "2026-05-01", "to": "2026-01-01"},
                         "")):
        problem = component(page(viewer, "/behaviour", query), "page-problem")
        assert problem is not None and says in problem["children"], (query, problem)


def test_the_inputs_write_the_url_and_keep_the_rest_of_the_view(demo: Served, viewer: WebClient) -> None:
    search = "?" + urlencode({"site": demo.site_id, "period": "7d", "country": "DE", "goals": "event:signup"})
    answer = viewer.callback(callback_output(viewer, "behaviour-funnel-apply"), [
        {"id": "behaviour-funnel-apply", "property": "n_clicks", "value": 1}], state=[
        {"id": "behaviour-funnel-input", "property": "value", "value": ["page:/pricing", "event:signup"]},
        {"id": "behaviour-funnel-window", "property": "value", "value": "604800"},
        {"id": "url", "property": "search", "value": search}])
    new = parse_qs(json.loads(answer.body)["response"]["url"]["search"].lstrip("?"))
    assert new == {"site": [demo.site_id], "period": ["7d"], "country": ["DE"], "goals": ["event:signup"],
                   "funnel": ["page:/pricing,event:signup"], "window": ["604800"]}
    answer = viewer.callback(callback_output(viewer, "behaviour-goals-apply"), [
        {"id": "behaviour-goals-apply", "property": "n_clicks", "value": 1}], state=[
        {"id": "behaviour-goals-input", "property": "value", "value": ["page:/signup"]},
        {"id": "url", "property": "search", "value": search}])
    new = parse_qs(json.loads(answer.body)["response"]["url"]["search"].lstrip("?"))
    assert new["goals"] == ["page:/signup"] and new["country"] == ["DE"]
    # the filter bar keeps the page's own parameters when the period changes
    kept = search + "&" + urlencode({"funnel": "page:/,page:/products", "window": "3600"})
    answer = viewer.callback(callback_output(viewer, "filter-period"), [
        {"id": "filter-site", "property": "value", "value": demo.site_id},
        {"id": "filter-period", "property": "value", "value": "30d"},
        {"id": "filter-range", "property": "value", "value": None}],
        state=[{"id": "url", "property": "search", "value": kept}], changed=["filter-period.value"])
    new = parse_qs(json.loads(answer.body)["response"]["url"]["search"].lstrip("?"))
    assert new["period"] == ["30d"] and new["window"] == ["3600"]
    assert new["funnel"] == ["page:/,page:/products"]
    assert new["goals"] == ["event:signup"]


def test_picking_an_event_shows_its_properties(demo: Served, viewer: WebClient) -> None:
    view = _view(demo)
    answer = viewer.callback(callback_output(viewer, "behaviour-event-pick"), [
        {"id": "behaviour-event-pick", "property": "value", "value": "signup"}],
        state=[{"id": "url", "property": "search", "value": f"?site={demo.site_id}"}])
    tree = json.loads(answer.body)["response"]["behaviour-event-props"]["children"]
    expected = event_properties(demo.runtime.reader, view.site_id, view.period, "signup")
    assert {r.key for r in expected} == {"plan"} and grid_rows(tree, "event_properties") == as_rows(expected)


@pytest.mark.browser
def test_in_chromium_the_page_loads_clean_and_the_funnel_follows_its_input(demo: Served, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    sign_in(browser, demo)
    started = time.monotonic()
    browser.get(f"{demo.server.url}/behaviour?site={demo.site_id}")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#table-entry_pages .ag-row")
               and d.find_elements(By.CSS_SELECTOR, "#behaviour-retention tbody tr"))
    loaded = time.monotonic() - started
    # The map's shapes come from the server itself: this Chromium resolves no other host.
    view = _view(demo)
    known = [r.value for r in countries(demo.runtime.reader, view.site_id, view.period) if r.value]
    shapes = "#behaviour-countries-map path.choroplethlocation"
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, shapes)) == len(known))
    # The countries table names each country (the row keeps its code, which a click filters by).
    names = browser.execute_script(
        "const n = new Intl.DisplayNames(['en'], {type: 'region'}); return arguments[0].map(c => n.of(c));",
        known)
    cells = [cell.text for cell in browser.find_elements(
        By.CSS_SELECTOR, "#table-countries .ag-center-cols-container [col-id='value']") if cell.text]
    assert cells and set(cells) <= set(names) | {"(unknown)"}, (cells, names)
    assert "Germany" in names and not set(cells) & set(known)  # names, never bare codes
    # A tab not shown at first is asked for when it is clicked.
    assert not browser.find_elements(By.ID, "table-referrers")
    browser.find_element(By.XPATH, "//*[@id='behaviour-sources-tabs']//button[.='Referrer']").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#table-referrers .ag-row"))
    top = sources(demo.runtime.reader, view.site_id, view.period, dimension="referrer_domain")[0]
    cell = "#table-referrers .ag-row[row-index='0'] [col-id='visitors']"
    assert browser.find_element(By.CSS_SELECTOR, cell).text == f"{top.visitors:,}"
    steps = browser.find_element(By.ID, "behaviour-funnel-input")
    for step in ("page:/", "page:/products"):
        steps.send_keys(step, Keys.ENTER)
    browser.find_element(By.ID, "behaviour-funnel-apply").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, FUNNEL_ROWS)) == 2)
    assert "funnel=page%3A%2F%2Cpage%3A%2Fproducts" in browser.current_url
    expected = funnel(demo.runtime.reader, view.site_id, view.period,
                      [Goal("page", "/"), Goal("page", "/products")])
    first = browser.find_element(By.CSS_SELECTOR, f"{FUNNEL_ROWS}[row-index='0'] [col-id='visitors']")
    assert first.text == f"{expected[0].visitors:,}"
    assert not severe(browser)
    print(f"behaviour page rendered in {loaded:.2f} s")
