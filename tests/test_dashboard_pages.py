"""Every dashboard page on the demo, list and detail: grids keyed soundly, and a clean browser console.

AG Grid refuses rows whose ids repeat (an error in the console, rows missing) and warns about ids
that are not strings, so a grid is keyed only where its rows have a natural unique key (a filter
dimension's values, an email, a database id), always as a string; the others number their rows
themselves. Checked on the pages the router draws over HTTP and then in headless Chromium, where
the console must hold no error and no AG Grid message on any page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.fixtures.dashboard import Served, page, serve_demo, sign_in
from tests.fixtures.web import WebClient
from tracker.control.models import Campaign, Rule, Segment

pytestmark = pytest.mark.server
KEY = re.compile(r"odnosRowId\(params\.data\.(\w+)\)")


@pytest.fixture(scope="module")
def demo(clickhouse_server, tmp_path_factory) -> Iterator[Served]:
    yield from serve_demo(clickhouse_server, tmp_path_factory.mktemp("dash-pages"))


@pytest.fixture(scope="module")
def paths(demo: Served) -> list[str]:
    """Every page, and one of each detail page, as URLs (path and query)."""
    with demo.runtime.control.session() as db:
        campaign = db.scalars(select(Campaign.id)).first()
        segment = db.scalars(select(Segment.id)).first()
        rule = db.scalars(select(Rule.id)).first()
    email = demo.runtime.store.query("SELECT min(email) FROM contacts WHERE email != ''").scalar()
    assert campaign and segment and rule and email
    return ["/", f"/?site={demo.site_id}&period=7d&country=DE", "/behaviour",
            "/behaviour?funnel=page%3A%2F%2Cpage%3A%2Fproducts%2Cpage%3A%2F", "/campaigns",
            f"/campaigns?id={campaign}", "/contacts", f"/contacts?email={email}", "/segments",
            f"/segments?segment={segment}", "/rules", f"/rules?rule={rule}", "/rules?new=1", "/settings"]


def _grids(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        if tree.get("type") == "AgGrid" and isinstance(tree.get("props"), dict):
            yield tree["props"]
        for value in tree.values():
            yield from _grids(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _grids(value)


def test_a_grid_is_keyed_by_unique_strings_or_not_at_all(demo: Served, paths: list[str]) -> None:
    viewer: WebClient = demo.client()
    keyed = unkeyed = 0
    for url in paths:
        path, _, query = url.partition("?")
        for grid in _grids(page(viewer, path, "?" + query if query else "")):
            rows = grid.get("rowData") or []
            if not grid.get("getRowId"):
                unkeyed += 1
                assert not grid["id"].get("dim"), f"{url}: a filtering grid needs its rows' values as ids"
                continue
            field = KEY.fullmatch(grid["getRowId"])
            assert field, f"{url} {grid['id']}: {grid['getRowId']!r} does not make string ids"
            ids = [str(row[field.group(1)]) for row in rows]
            assert len(set(ids)) == len(ids), f"{url} {grid['id']}: repeated row ids"
            keyed += 1
    assert keyed >= 10 and unkeyed >= 5, (keyed, unkeyed)  # both kinds were seen


def test_in_chromium_no_page_logs_an_error_or_an_ag_grid_message(demo: Served, paths: list[str],
                                                                  browser) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, demo)
    browser.get_log("browser")
    for url in paths:
        browser.get(demo.server.url + url)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
                browser.find_elements(By.CSS_SELECTOR, "#page > *")
                and not browser.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']")):
            time.sleep(0.1)
        time.sleep(0.8)  # grids and figures draw after the callbacks answer
        logged = [entry["message"] for entry in browser.get_log("browser")
                  if entry["level"] == "SEVERE" or "AG Grid" in entry["message"]]
        assert logged == [], url


def test_on_a_phone_the_navigation_folds_behind_a_burger(demo: Served, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    sign_in(browser, demo)
    browser.set_window_size(390, 844)
    browser.get(demo.server.url + "/")
    burger = wait.until(lambda d: d.find_element(By.ID, "nav-burger"))
    wait.until(lambda d: d.find_elements(By.ID, "kpi-visitors"))
    link = browser.find_element(By.ID, "nav-campaigns")
    assert burger.is_displayed() and not link.is_displayed()
    burger.click()
    wait.until(lambda d: link.is_displayed())
    link.click()
    wait.until(lambda d: d.current_url.split("?")[0].endswith("/campaigns"))
    wait.until(lambda d: not link.is_displayed())  # choosing a page closes the panel
    browser.set_window_size(1280, 900)
    wait.until(lambda d: link.is_displayed() and not burger.is_displayed())
    assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
