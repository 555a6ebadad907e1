"""The real Plausible and Umami trackers, from npm, in headless Chromium, pointed at odnos.

A test site on loopback (``shop.example.com`` through Chromium's host rules) serves pages that load
``@plausible-analytics/tracker`` (an ES module) and Umami's tracker script (from the ``umami``
package) unchanged from tests/dropin/ (installed by ``tests/dropin/install.sh``, which .ci/run
runs); only their endpoint points at the odnos server, as a site switching over would change it.
The visitor arrives from another site, moves to an SPA route, fires custom events with properties
and revenue; the ClickHouse server must then hold exactly those events for the right site, with
path, referrer, names and props. Umami's script posts JSON cross-origin, so its CORS preflights
(with its ``x-umami-cache`` header) must pass too.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.fixtures.browser import OTHER_HOST, SITE_HOST, _Handler, _Served
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tracker.settings import ClickHouseTarget
from tracker.store.clickhouse_store import ClickHouseStore

pytestmark = [pytest.mark.server, pytest.mark.browser]

DROPIN = Path(__file__).resolve().parent / "dropin"
SCRIPTS = {"/vendor/plausible.js": DROPIN / "node_modules/@plausible-analytics/tracker/plausible.js",
           "/vendor/umami.js": DROPIN / "vendor/umami/src/tracker/index.js"}
COLUMNS = ("name, pathname, url, referrer, referrer_source, utm_source, is_bot, visitor_id, "
           "props.key AS keys, props.value AS values, ts, ts_ms")


class _TrackerSite(_Handler):
    """The pages of tests/dropin/pages/ (``{{NAME}}`` filled in) and the two trackers' scripts."""

    def do_GET(self) -> None:  # noqa: N802
        self.record()
        path = urlsplit(self.path).path
        if path in SCRIPTS:
            self.reply(HTTPStatus.OK, SCRIPTS[path].read_bytes(), "application/javascript; charset=utf-8")
            return
        page = DROPIN / "pages" / path.strip("/")
        if not re.fullmatch(r"/[a-z]+\.html", path) or not page.is_file():
            self.reply(HTTPStatus.NOT_FOUND, b"not found")
            return
        values = self.owner.values
        text = re.sub(r"\{\{([A-Z]+)\}\}", lambda m: str(values[m.group(1)]), page.read_text())
        self.reply(HTTPStatus.OK, text.encode(), "text/html; charset=utf-8")


class TrackerSite(_Served):
    def __init__(self, **values: object) -> None:
        super().__init__(_TrackerSite)
        self.values = {"SITE": f"http://{SITE_HOST}:{self.port}", **values}

    def url(self, path: str, host: str = SITE_HOST) -> str:
        return f"http://{host}:{self.port}{path}"


class Odnos:
    def __init__(self, clickhouse_server, data: Path) -> None:
        database = "dropin_browser_" + uuid.uuid4().hex[:8]
        env = odnos_env(data, ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for(database),
                        ODNOS_BATCH_INTERVAL="0.05")
        added = run_odnos("site", "add", "Shop", "--domain", SITE_HOST, env=env)
        assert added.returncode == 0, added.stderr
        self.site_id = added.stdout.strip().splitlines()[-1]
        self.server = OdnosServer(env, "collector", extra_args=("--workers", "1")).start()
        self.store = ClickHouseStore(ClickHouseTarget(embedded=False, database=database, host="127.0.0.1",
                                                      port=clickhouse_server.tcp_port))

    def rows(self, path_like: str, expected: int, timeout: float = 15) -> list[dict]:
        """The site's events on paths LIKE ``path_like`` but engagement reports (sent whenever the
        tracker decides the page was left), once ``expected`` are there, then a moment more."""
        sql = (f"SELECT {COLUMNS} FROM events WHERE site_id = %(s)s AND pathname LIKE %(p)s "
               "AND name != 'engagement' ORDER BY ts, ts_ms")
        params = {"s": self.site_id, "p": path_like}
        deadline = time.monotonic() + timeout
        while len(self.store.query(sql, params).rows) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # ten batch intervals: an event that should not be there would be by now
        rows = self.store.query(sql, params).dicts()
        for row in rows:
            row["props"] = dict(zip(row.pop("keys"), row.pop("values"), strict=True))
        return rows


@pytest.fixture(scope="module")
def odnos(clickhouse_server, tmp_path_factory) -> Iterator[Odnos]:
    missing = [str(p.relative_to(DROPIN.parent.parent)) for p in SCRIPTS.values() if not p.is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `bash tests/dropin/install.sh` (.ci/run does)")
    running = Odnos(clickhouse_server, tmp_path_factory.mktemp("dropin-browser"))
    yield running
    running.server.stop()
    running.store.close()


@pytest.fixture(scope="module")
def site(odnos: Odnos) -> Iterator[TrackerSite]:
    served = TrackerSite(COLLECTOR=odnos.server.url, DOMAIN=SITE_HOST)
    yield served
    served.stop()


def arrive(browser, site: TrackerSite, link: str) -> None:
    """Open the other site's page and follow its link to the shop: the shop's page has a referrer."""
    browser.get(site.url("/from.html", OTHER_HOST))
    browser.find_element(By.ID, link).click()
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")


def test_plausibles_tracker_from_npm(browser, odnos: Odnos, site: TrackerSite) -> None:
    arrive(browser, site, "to-plausible")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return window.ready === true"))
    # The pageview first: sent side by side, the two requests could be stamped in either order.
    odnos.rows("/plausible.html", expected=1)
    browser.execute_script("window.signup()")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return window.results.length === 1"))
    # The tracker's callback has the answer's status: CORS let the page read odnos's 202.
    assert browser.execute_script("return window.results[0]") == {"status": 202}
    browser.execute_script("window.route('/plausible/pricing')")

    rows = odnos.rows("/plausible%", expected=3)
    referrer = f"http://{OTHER_HOST}:{site.port}/"  # cross-origin: the browser sends the origin only
    assert [(r["name"], r["pathname"], r["props"]) for r in rows] == [
        ("pageview", "/plausible.html", {}),
        ("Signup", "/plausible.html", {"plan": "pro", "seats": "3", "revenue_amount": "15.99",
                                       "revenue_currency": "EUR"}),
        ("pageview", "/plausible/pricing", {}),
    ]
    first = rows[0]
    assert first["url"] == site.url("/plausible.html?utm_source=partner")
    assert (first["referrer"], first["utm_source"]) == (referrer, "partner")
    assert {r["visitor_id"] for r in rows} == {first["visitor_id"]} and first["visitor_id"]
    assert [r["is_bot"] for r in rows] == [0, 0, 0]


def test_umamis_tracker_from_npm(browser, odnos: Odnos, site: TrackerSite) -> None:
    arrive(browser, site, "to-umami")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return !!window.umami"))
    # The pageview first, so the next requests carry the script's x-umami-cache header (a JSON
    # request: each needed its CORS preflight to pass to be sent at all).
    odnos.rows("/umami.html", expected=1)
    browser.find_element(By.ID, "buy").click()
    odnos.rows("/umami.html", expected=2)  # the purchase before the next event, for the same reason
    browser.execute_script("return window.umami.track('newsletter', {list: 'weekly', count: 2})")

    rows = odnos.rows("/umami%", expected=3)
    referrer = f"http://{OTHER_HOST}:{site.port}/"
    assert [(r["name"], r["pathname"], r["props"]) for r in rows] == [
        ("pageview", "/umami.html", {}),
        ("purchase", "/umami.html", {"plan": "pro", "seats": "3"}),
        ("newsletter", "/umami.html", {"list": "weekly", "count": "2"}),
    ]
    assert rows[0]["referrer"] == referrer and rows[0]["url"] == f"https://{SITE_HOST}/umami.html"
    assert {r["visitor_id"] for r in rows} == {rows[0]["visitor_id"]} and rows[0]["visitor_id"]
