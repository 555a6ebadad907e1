"""The snippet end to end in headless Chromium: a test site, the real collector, the ClickHouse server.

The browser loads pages, scrolls, stays, navigates an SPA route, fires a custom event, clicks a
download and an outbound link, then follows a tracked email link back to the site; ClickHouse must
then hold exactly those events, with engaged time, scroll depth and the visitor linked to the
contact. A host page whose own scripts throw, and a collector that is down, never see the snippet
break the page.

Engaged time in headless Chromium: ``document.hasFocus()`` is true and ``visibilityState`` is
"visible" from the first load on (no focus emulation needed), so a page counts as engaged for all
the time it is open, and leaving it (``driver.get`` to another page: ``visibilitychange`` to
hidden, then ``pagehide``) sends its one engagement report. The tests assert that this report's
``engaged_ms`` is at least the time the test deliberately stayed, and at most the time between the
page's pageview and the report.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.fixtures.browser import OTHER_HOST, SITE_HOST, ScriptHost, SiteServer, browser  # noqa: F401
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tracker.contacts import contact_id_for
from tracker.settings import ClickHouseTarget
from tracker.store.clickhouse_store import ClickHouseStore
from tracker.tokens import TokenCodec

pytestmark = [pytest.mark.server, pytest.mark.browser]

KEYS = ["browser-key-" + "k" * 24]
COLUMNS = ("name, pathname, url, referrer, engaged_ms, scroll, contact_id, visitor_id, session_id, "
           "props.key AS prop_keys, props.value AS prop_values, is_bot, browser, ts, ts_ms")


@dataclass
class Collector:
    server: OdnosServer
    store: ClickHouseStore
    site_id: str

    def rows(self, where: str, params: dict, expected: int, timeout: float = 15) -> list[dict]:
        """Wait for ``expected`` rows (the writer batches), then a moment longer for any extra one.

        Same-millisecond ties are ordered with the pageview last: the snippet reports leaving a page
        (engagement) before it counts the next one (pageview), in the same call.
        """
        sql = f"SELECT {COLUMNS} FROM events WHERE {where}"
        deadline = time.monotonic() + timeout
        while len(found := self.store.query(sql, params).dicts()) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # ten batch intervals: an event that should not be there would be by now
        found = self.store.query(sql, params).dicts()
        return sorted(found, key=lambda r: (r["ts"], r["ts_ms"], r["name"] == "pageview"))

    def visit(self, visitor: str, expected: int) -> list[dict]:
        return self.rows("site_id = %(s)s AND visitor_id = %(v)s", {"s": self.site_id, "v": visitor}, expected)


@pytest.fixture(scope="module")
def collector(clickhouse_server, tmp_path_factory) -> Collector:
    data = tmp_path_factory.mktemp("browser-collector")
    database = "browser_" + uuid.uuid4().hex[:8]
    env = odnos_env(data, ODNOS_CLICKHOUSE_URL=f"{clickhouse_server.url}/{database}",
                    ODNOS_SECRET_KEYS=",".join(KEYS), ODNOS_BATCH_INTERVAL="0.05")
    added = run_odnos("site", "add", "Shop", "--domain", SITE_HOST, env=env)
    assert added.returncode == 0, added.stderr
    site_id = added.stdout.strip().splitlines()[-1]
    server = OdnosServer(env, "collector", extra_args=("--workers", "1")).start()
    store = ClickHouseStore(ClickHouseTarget(embedded=False, database=database, host="127.0.0.1",
                                             port=clickhouse_server.tcp_port))
    yield Collector(server, store, site_id)
    server.stop()
    store.close()


@pytest.fixture(scope="module")
def site(collector: Collector) -> SiteServer:
    server = SiteServer(COLLECTOR=collector.server.url, SITE=collector.site_id, DEAD="")
    yield server
    server.stop()


@pytest.fixture
def script_host(site: SiteServer) -> ScriptHost:
    """The collector that will be down ({{DEAD}} in the pages): it serves s.js until stopped."""
    host = ScriptHost()
    site.values["DEAD"] = host.url
    yield host
    host.stop()


def wait_for_snippet(driver, timeout: float = 10) -> None:
    """Until the snippet has started on the current page (its API replaced any stub)."""
    WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script("return !!(window.odnos && window.odnos.track)"))


def severe(entries: list[dict]) -> list[tuple[str, str]]:
    return [(e["source"], e["message"]) for e in entries if e["level"] == "SEVERE"]


def test_a_visit_end_to_end(browser, collector: Collector, site: SiteServer, tmp_path: Path) -> None:
    driver = browser
    # 1. A long page: scroll down (real wheel input), back up, stay a few seconds.
    driver.get(site.url("/long"))
    wait_for_snippet(driver)
    visitor = driver.execute_script("return localStorage.odnos_vid")
    assert visitor
    assert driver.execute_script("return [document.hasFocus(), document.visibilityState]") == [True, "visible"]
    ActionChains(driver).scroll_by_amount(0, 1800).perform()
    WebDriverWait(driver, 5, 0.05).until(lambda d: d.execute_script("return scrollY") >= 1800)
    depth = driver.execute_script(
        "return Math.min(100, Math.round((scrollY + innerHeight) / document.documentElement.scrollHeight * 100))")
    assert 0 < depth < 100
    driver.save_screenshot(str(tmp_path / "long-page.png"))
    driver.execute_script("scrollTo(0, 0)")  # the report keeps the deepest point seen
    stayed = time.monotonic()
    time.sleep(2.5)
    stayed = time.monotonic() - stayed

    # 2. The SPA: its page, a pushState route, a custom event, a download, an outbound link.
    driver.get(site.url("/app"))
    wait_for_snippet(driver)
    driver.find_element(By.ID, "to-pricing").click()
    assert driver.find_element(By.ID, "view").text == "Pricing"
    assert driver.current_url == site.url("/app/pricing")
    driver.find_element(By.ID, "signup").click()
    driver.find_element(By.ID, "download").click()
    driver.find_element(By.ID, "outbound").click()
    WebDriverWait(driver, 10, 0.05).until(lambda d: d.find_elements(By.ID, "elsewhere"))

    # 3. A tracked email link back to the site: the collector redirects with _odn, the snippet
    # takes it out of the address bar and hands it to the collector with the pageview.
    contact = contact_id_for(f"{visitor}@example.com")
    message = "camp-browser." + uuid.uuid4().hex[:8]
    # Issued a minute ago: a click within 10 s of the send is a link scanner's, with no hand-off.
    token = TokenCodec(KEYS, clock=lambda: time.time() - 60).click(contact, message, "7", site.url("/landing"))
    driver.get(f"{collector.server.url}/c/{token}")
    wait_for_snippet(driver)
    assert driver.current_url == site.url("/landing")
    [landed] = [path for method, host, path in site.requests if path.startswith("/landing")]
    assert landed.startswith("/landing?_odn=") and "&" not in landed
    driver.get("about:blank")  # leave the landing page: its engagement report

    # ClickHouse: exactly this visit, in order.
    rows = collector.visit(visitor, 11)
    for r in rows: print(r["name"], r["pathname"], r["referrer"], r["engaged_ms"], r["scroll"], _ms(r), r["prop_values"])
    for r in collector.rows("site_id = %(s)s", {"s": collector.site_id}, 1): print("ALL", r["name"], r["pathname"], r["visitor_id"], r["session_id"], _ms(r))
    print("visitor", visitor)
    print("OUT", "".join(collector.server.output)[-3000:])
    app = site.url("/app")
    assert [(r["name"], r["pathname"], r["referrer"]) for r in rows] == [
        ("pageview", "/long", ""),
        ("engagement", "/long", ""),
        ("pageview", "/app", ""),
        ("engagement", "/app", ""),
        ("pageview", "/app/pricing", app),  # an SPA route's referrer is the previous page
        ("signup", "/app/pricing", ""),
        ("download", "/app/pricing", ""),
        ("outbound", "/app/pricing", ""),
        ("engagement", "/app/pricing", ""),
        ("pageview", "/landing", ""),
        ("engagement", "/landing", ""),
    ]
    assert {(r["browser"], r["is_bot"]) for r in rows} == {("Chrome", 0)}
    assert len({r["session_id"] for r in rows}) == 1 and rows[0]["session_id"]
    assert all("_odn" not in r["url"] for r in rows)
    props = {r["name"]: dict(zip(r["prop_keys"], r["prop_values"], strict=True)) for r in rows}
    assert props["signup"] == {"plan": "pro"}
    assert props["download"] == {"url": site.url("/files/report.pdf")}
    assert props["outbound"] == {"url": site.url("/partner", host=OTHER_HOST)}
    assert ("GET", f"{SITE_HOST}:{site.port}", "/files/report.pdf") in site.requests

    engagements = {r["pathname"]: r for r in rows if r["name"] == "engagement"}
    pageviews = {r["pathname"]: r for r in rows if r["name"] == "pageview"}
    for path, engagement in engagements.items():
        opened = _ms(pageviews[path])
        assert 0 < engagement["engaged_ms"] <= _ms(engagement) - opened, path
    assert engagements["/long"]["engaged_ms"] >= stayed * 1000 - 5  # the whole stay counted
    assert engagements["/long"]["scroll"] == depth
    assert {engagements[p]["scroll"] for p in ("/app", "/app/pricing", "/landing")} == {100}  # short pages

    # The hand-off: that pageview carries the contact, and identities links visitor and contact.
    assert [r["pathname"] for r in rows if r["contact_id"]] == ["/landing"]
    assert pageviews["/landing"]["contact_id"] == contact
    linked = collector.store.query(
        "SELECT contact_id, method FROM identities FINAL WHERE site_id = %(s)s AND visitor_id = %(v)s",
        {"s": collector.site_id, "v": visitor}).rows
    assert linked == [(contact, "email_link")]
    [click] = collector.rows("message_id = %(m)s", {"m": message}, 1)
    assert (click["name"], click["contact_id"], click["is_bot"]) == ("email_click", contact, 0)

    assert severe(driver.get_log("browser")) == []


def _ms(row: dict) -> int:
    return int(row["ts"].timestamp()) * 1000 + row["ts_ms"]


def test_a_page_whose_own_scripts_throw(browser, collector: Collector, site: SiteServer) -> None:
    driver = browser
    driver.get(site.url("/broken"))
    wait_for_snippet(driver)
    WebDriverWait(driver, 5, 0.05).until(
        lambda d: d.find_element(By.ID, "marker").text == "page code ran")
    visitor = driver.execute_script("return localStorage.odnos_vid")
    # The page's own later code ran, its pushState error reached it unchanged, and it saw exactly
    # its own two errors.
    assert driver.execute_script("return window.hostAfterRan") is True
    assert driver.find_element(By.ID, "marker").get_attribute("data-push-error") == "DataCloneError"
    assert driver.execute_script("return pageErrors") == [
        "Uncaught Error: host bug before the snippet", "Uncaught Error: host bug after the snippet"]
    logged = severe(driver.get_log("browser"))
    assert len(logged) == 2 and all(source == "javascript" for source, _ in logged)
    assert "host bug before the snippet" in logged[0][1] and "host bug after the snippet" in logged[1][1]
    driver.get("about:blank")

    rows = collector.visit(visitor, 4)
    assert [(r["name"], r["pathname"]) for r in rows] == [
        ("pageview", "/broken"), ("engagement", "/broken"),
        ("pageview", "/broken/routed"), ("engagement", "/broken/routed")]


@pytest.mark.parametrize("transport", ["beacon", "fetch"])
def test_a_collector_that_is_down(browser, site: SiteServer, script_host: ScriptHost, transport: str) -> None:
    driver = browser
    # The browser caches s.js (as a visitor's browser would), then its collector goes down.
    driver.get(site.url("/warm"))
    WebDriverWait(driver, 10, 0.05).until(lambda d: d.find_elements(By.ID, "warm"))
    script_host.stop()
    driver.get_log("browser")

    driver.get(site.url(f"/down?transport={transport}"))
    wait_for_snippet(driver)  # the snippet runs, from the cache
    driver.find_element(By.ID, "signup").click()
    driver.find_element(By.ID, "signup").click()
    driver.find_element(By.ID, "to-pricing").click()
    driver.find_element(By.ID, "download").click()
    assert driver.find_element(By.ID, "clicks").text == "2"  # the page's own code works
    assert driver.current_url == site.url("/down/pricing")
    assert driver.execute_script("return pageErrors") == []
    logged = driver.get_log("browser")
    driver.get("about:blank")
    print(transport, logged, driver.get_log("browser"))
    assert [m for m, _, path in script_host.requests if path.startswith("/e")] == []
