"""The overview page through the real server and a real browser: its figures are the query layer's.

`odnos demo` on a ClickHouse server database, `odnos serve`, a viewer signed in. Over HTTP the page
the router draws is compared with ``tracker.queries`` run here on the same store for the same view;
in headless Chromium the KPI cards show those numbers, a click on a table row filters the whole
view (the URL and the cards change), and the console stays clean. Hand-edited URLs get a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.format import number
from dashboard.pages.overview import KPIS
from dashboard.view import View
from tests.fixtures.dashboard import Served, as_rows, grid_rows, page, serve_demo, severe, sign_in, texts
from tests.fixtures.processes import wait_until
from tests.fixtures.web import WebClient, component
from tracker.queries.filters import Filters
from tracker.queries.site.countries import countries
from tracker.queries.site.overview_kpis import overview_kpis
from tracker.queries.site.top_pages import top_pages

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def demo(clickhouse_server, tmp_path_factory) -> Iterator[Served]:
    yield from serve_demo(clickhouse_server, tmp_path_factory.mktemp("dash-overview"))


@pytest.fixture(scope="module")
def viewer(demo: Served) -> WebClient:
    return demo.client()


def _expected(demo: Served, **query: str) -> dict[str, str]:
    view = View.parse({"site": demo.site_id, **query}, default_site=demo.site_id)
    kpis = overview_kpis(demo.runtime.store, view.site_id, view.period, view.filters).kpis()
    return {k.name: KPIS[k.name][1](k.value) for k in kpis}


def test_the_cards_and_tables_are_the_query_layers(demo: Served, viewer: WebClient) -> None:
    drawn = page(viewer, "/", {"site": demo.site_id, "period": "30d"})
    expected = _expected(demo, period="30d")
    assert component(drawn, "page-problem") is None, component(drawn, "page-problem")
    shown = {name: component(drawn, f"kpi-{name}")["children"] for name in KPIS}
    assert shown == expected
    assert int(expected["visitors"].replace(",", "")) > 100, "the demo should have visitors to show"
    view = View.parse({"site": demo.site_id}, default_site=demo.site_id)
    assert grid_rows(drawn, "top_pages", "page") == as_rows(
        top_pages(demo.runtime.store, demo.site_id, view.period, view.filters))
    every = countries(demo.runtime.store, demo.site_id, view.period, view.filters)
    assert grid_rows(drawn, "countries", "country") == as_rows(every[:10])
    world = component(drawn, "overview-map")["figure"]["data"][0]
    assert world["z"] == [r.visitors for r in every if r.value] and len(world["z"]) > 10  # all, not 10


def test_a_filter_in_the_url_applies_to_every_card(demo: Served, viewer: WebClient) -> None:
    everyone = _expected(demo)
    drawn = page(viewer, "/", {"site": demo.site_id, "period": "30d", "device": "mobile"})
    mobile = _expected(demo, device="mobile")
    assert component(drawn, "kpi-visitors")["children"] == mobile["visitors"] != everyone["visitors"]
    assert "Device: mobile " in texts(component(drawn, "chip-device"))


@pytest.mark.parametrize(("query", "fragment"), [
    ({"period": "custom", "from": "2026-05-01", "to": "2026-04-01"}, "swap the dates"),
    ({"period": "custom", "from": "2010-01-01", "to": "2020-01-01"}, "the longest is"),
    ({"period": "custom", "from": "yesterday", "to": "2026-04-01"}, "must look like"),
    ({"period": "forever"}, "unknown period"),
    ({"site": "s_nosuchsite"}, "There is no site"),
    ({"colour": "blue"}, "unknown filter"),
])
def test_a_hand_edited_url_gets_a_message(demo: Served, viewer: WebClient, query: dict,
                                          fragment: str) -> None:
    drawn = page(viewer, "/", query)
    problem = component(drawn, "page-problem")
    assert problem is not None and fragment in problem["children"], drawn


def test_quotes_and_sql_in_a_filter_match_nothing(demo: Served, viewer: WebClient) -> None:
    hostile = "x'); DROP TABLE events; --\\"
    drawn = page(viewer, "/", {"site": demo.site_id, "page": hostile})
    assert component(drawn, "kpi-visitors")["children"] == "0"
    assert component(page(viewer, "/", {"site": demo.site_id}), "kpi-visitors")["children"] != "0"


def test_the_realtime_count_answers(demo: Served, viewer: WebClient) -> None:
    answer = viewer.callback("overview-live.children", [{"id": "overview-tick", "property": "n_intervals",
                                                          "value": 1}],
                             state=[{"id": "overview-site", "property": "data", "value": demo.site_id}])
    assert answer.status == 200 and b"in the last 5 minutes" in answer.body


def test_in_a_browser_the_cards_show_the_numbers_and_a_row_click_filters(demo: Served, browser) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    sign_in(browser, demo)
    browser.get(demo.server.url + "/")
    expected = _expected(demo)

    def card(name: str) -> str:
        found = browser.find_elements(By.ID, f"kpi-{name}")
        return found[0].text if found else ""

    def now(read: Callable[[], Any]) -> Callable[[], Any]:
        """``read`` the page as it is: an element redrawn under our hands counts as not there yet."""
        def attempt() -> Any:
            try:
                return read()
            except StaleElementReferenceException:
                return None
        return attempt

    def click_first_page() -> str:
        found = browser.find_elements(By.CSS_SELECTOR, "#table-top_pages .ag-center-cols-container "
                                                       ".ag-row [col-id='page']")
        if not found:
            return ""
        text = found[0].text
        found[0].click()
        return text

    assert wait_until(now(lambda: card("visitors") == expected["visitors"]), 20), "the cards did not fill"
    assert wait_until(now(lambda: {name: card(name) for name in KPIS} == expected), 5), \
        {name: card(name) for name in KPIS}
    # The map's shapes come from the server itself: this Chromium resolves no other host.
    view = View.parse({"site": demo.site_id}, default_site=demo.site_id)
    known = [r.value for r in countries(demo.runtime.store, view.site_id, view.period) if r.value]
    assert len(known) > 5
    shapes = "#overview-map path.choroplethlocation"
    assert wait_until(lambda: len(browser.find_elements(By.CSS_SELECTOR, shapes)) == len(known), 20), \
        "the map did not draw every country"
    path = wait_until(now(click_first_page), 20)
    assert path, "the top pages table stayed empty"
    assert wait_until(lambda: "page=" in browser.current_url, 20), browser.current_url
    assert parse_qs(urlsplit(browser.current_url).query)["page"] == [path]
    filtered = _expected(demo, page=path)
    assert wait_until(now(lambda: card("visitors") == filtered["visitors"]), 20), "the filter did not apply"
    assert filtered["visitors"] != expected["visitors"]
    assert severe(browser) == []
    assert number(0) == "0" and Filters(page=path).page == path
