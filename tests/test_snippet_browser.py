"""The snippet end to end in headless Chromium: a test site, the real collector, the ClickHouse server.

The browser loads pages, scrolls, stays, navigates an SPA route, fires a custom event, clicks a
download and an outbound link, then follows a tracked email link back to the site; ClickHouse must
then hold exactly those events, with engaged time, scroll depth and the visitor linked to the
contact. A host page whose own scripts throw, and a collector that is down, never see the snippet
break the page.

Engaged time in headless Chromium (156, new headless): pages are "visible" and, most of the time,
focused, so a page counts as engaged for all the time it is open (the snippet has no idle timer).
Two findings shaped this module:

- A new document sometimes starts with ``document.hasFocus()`` false (about 1 load in 8 here);
  usually a window ``focus`` event follows within 50 ms, but sometimes focus arrives with no
  event at all. The snippet samples focus only at its start and on focus, blur and visibility
  events, so such a page reports ``engaged_ms: 0`` however long it is looked at (caught here on
  /app in 3 runs of 50, with the page's own focus probe showing no focus event at all). The tests
  therefore turn on DevTools' focus emulation (``Emulation.setFocusEmulationEnabled``: the page
  always has focus, as a person's window would) and check on each page that the snippet started
  focused; the weakness itself is reported to the snippet's owners, not hidden.
- Leaving a page by navigation fires ``pagehide`` while the page is still "visible", then
  ``visibilitychange`` to hidden: an order the jsdom tests did not cover (the snippet used to send
  a second report of the milliseconds in between). The exact event list holds one engagement
  report per page.

Each ``engaged_ms`` is bounded by the time the test stayed on the page (below) and the time since
the test opened it (above).
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

from tests.fixtures.browser import OTHER_HOST, SITE_HOST, ScriptHost, SiteServer
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tracker.contacts import contact_id_for
from tracker.settings import ClickHouseTarget
from tracker.store.clickhouse_store import ClickHouseStore
from tracker.tokens import TokenCodec

pytestmark = [pytest.mark.server, pytest.mark.browser]

KEYS = ["browser-key-" + "k" * 24]
COLUMNS = ("name, pathname, url, referrer, engaged_ms, scroll, contact_id, visitor_id, session_id, "
           "props.key AS prop_keys, props.value AS prop_values, is_bot, is_machine, browser, ts, ts_ms")


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
        return self.rows("site_id = %(s)s AND visitor_id = %(v)s", {"s": self.site_id, "v": visitor},
                         expected)


@pytest.fixture(scope="module")
def collector(clickhouse_server, tmp_path_factory) -> Collector:
    data = tmp_path_factory.mktemp("browser-collector")
    database = "browser_" + uuid.uuid4().hex[:8]
    env = odnos_env(data, ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for(database),
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
    WebDriverWait(driver, timeout, poll_frequency=0.02).until(
        lambda d: d.execute_script("return !!(window.odnos && window.odnos.track)"))


def severe(entries: list[dict]) -> list[tuple[str, str]]:
    return [(e["source"], e["message"]) for e in entries if e["level"] == "SEVERE"]


def test_a_visit_end_to_end(browser, collector: Collector, site: SiteServer, tmp_path: Path) -> None:
    driver = browser
    opened = {}  # when the test opened each page, in ms: no page is engaged for longer than it is open
    stayed = {}  # how long the test stayed on a page after it had focus, in ms: it is engaged at least that
    probes = {}  # what each document saw of focus and visibility (site/probe.js), for failure messages

    def stay(path: str, seconds: float) -> None:
        start = time.monotonic()
        time.sleep(seconds)
        stayed[path] = (time.monotonic() - start) * 1000

    # 1. A long page: scroll down (real wheel input), back up, stay a few seconds.
    opened["/long"] = _now()
    driver.get(site.url("/long"))
    wait_for_snippet(driver)
    visitor = driver.execute_script("return localStorage.odnos_vid")
    assert visitor
    assert driver.execute_script("return [document.hasFocus(), document.visibilityState]") == [
        True, "visible"]
    ActionChains(driver).scroll_by_amount(0, 1800).perform()
    WebDriverWait(driver, 5, 0.05).until(lambda d: d.execute_script("return scrollY") >= 1800)
    depth = driver.execute_script("return Math.min(100, Math.round("
                                  "(scrollY + innerHeight) / document.documentElement.scrollHeight * 100))")
    assert 0 < depth < 100
    driver.save_screenshot(str(tmp_path / "long-page.png"))
    driver.execute_script("scrollTo(0, 0)")  # the report keeps the deepest point seen
    stay("/long", 2.5)
    probes["/long"] = driver.execute_script("return probe")

    # 2. The SPA: its page, a pushState route, a custom event, a download, an outbound link.
    opened["/app"] = _now()
    driver.get(site.url("/app"))
    wait_for_snippet(driver)
    stay("/app", 0.2)
    opened["/app/pricing"] = _now()
    driver.find_element(By.ID, "to-pricing").click()
    assert driver.find_element(By.ID, "view").text == "Pricing"
    assert driver.current_url == site.url("/app/pricing")
    driver.find_element(By.ID, "signup").click()
    driver.find_element(By.ID, "download").click()
    probes["/app"] = probes["/app/pricing"] = driver.execute_script("return probe")
    driver.find_element(By.ID, "outbound").click()
    WebDriverWait(driver, 10, 0.05).until(lambda d: d.find_elements(By.ID, "elsewhere"))

    # 3. A tracked email link back to the site: the collector redirects with _odn, the snippet
    # takes it out of the address bar and hands it to the collector with the pageview.
    contact = contact_id_for(f"{visitor}@example.com")
    message = "camp-browser." + uuid.uuid4().hex[:8]
    # Issued a minute ago: a click within 10 s of the send is a link scanner's, with no hand-off.
    codec = TokenCodec(KEYS, clock=lambda: time.time() - 60)
    token = codec.click(contact, message, "7", site.url("/landing"))
    opened["/landing"] = _now()
    driver.get(f"{collector.server.url}/c/{token}")
    wait_for_snippet(driver)
    assert driver.current_url == site.url("/landing")
    [landed] = [path for method, host, path in site.requests if path.startswith("/landing")]
    assert landed.startswith("/landing?_odn=") and "&" not in landed  # the collector's redirect
    assert TokenCodec(KEYS).read_handoff(landed.removeprefix("/landing?_odn=")) == contact
    stay("/landing", 0.2)
    probes["/landing"] = driver.execute_script("return probe")
    driver.get("about:blank")  # leave the landing page: its engagement report
    logged = severe(driver.get_log("browser"))

    # ClickHouse: exactly this visit, in order.
    rows = collector.visit(visitor, 11)
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
    ], f"browser console: {logged}"
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
    assert engagements.keys() == opened.keys()
    for path, probe in probes.items():  # each page was focused and visible when the snippet started
        assert [p[2:] for p in probe if p[0] == "snippet started"] == [[True, "visible"]], (path, probe)
    for path, engagement in engagements.items():
        engaged = engagement["engaged_ms"]
        assert 0 < engaged <= _ms(engagement) - opened[path], (path, probes[path])
        assert engaged >= stayed.get(path, 0) - 2, (path, probes[path])  # 2 ms: two clocks, rounded apart
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
    assert (click["name"], click["contact_id"], click["is_machine"]) == ("email_click", contact, 0)

    # The console's only error is Chromium's own warning about an http download, not the snippet's.
    assert logged == [
        ("other", f"{site.url('/app/pricing')} - The file at '{site.url('/files/report.pdf')}' was loaded "
                  "over an insecure connection. This file should be served over HTTPS.")]


def _ms(row: dict) -> int:
    return int(row["ts"].timestamp()) * 1000 + row["ts_ms"]


def _now() -> int:
    return int(time.time() * 1000)


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
    """The collector is down behind a cached s.js; with ``fetch``, sendBeacon refuses (fetch fallback)."""
    driver = browser
    # The browser caches s.js (as a visitor's browser would), then its collector goes down.
    driver.get(site.url("/warm"))
    WebDriverWait(driver, 10, 0.05).until(lambda d: d.find_elements(By.ID, "warm"))
    script_host.stop()
    assert severe(driver.get_log("browser")) == []

    driver.get(site.url(f"/down?transport={transport}"))
    wait_for_snippet(driver)  # the snippet runs, from the cache
    driver.find_element(By.ID, "signup").click()
    driver.find_element(By.ID, "signup").click()
    driver.find_element(By.ID, "to-pricing").click()
    driver.find_element(By.ID, "download").click()
    # The page's own code works, the URL changed, and every send reached a transport: pageview,
    # two signups, engagement and pageview for the SPA route, download.
    assert driver.find_element(By.ID, "clicks").text == "2"
    assert driver.current_url == site.url("/down/pricing")
    assert driver.execute_script("return transports") == (
        {"beacon": 6, "fetch": 0} if transport == "beacon" else {"beacon": 6, "fetch": 6})

    # The console holds what the browser itself logs for each failed request, and Chromium's
    # warning about the http download; no uncaught error, no unhandled rejection.
    refused = ("network", f"{script_host.url}/e - Failed to load resource: net::ERR_CONNECTION_REFUSED")
    insecure = ("other", f"{site.url('/down/pricing')} - The file at '{site.url('/files/report.pdf')}' was "
                         "loaded over an insecure connection. This file should be served over HTTPS.")
    logged = []
    deadline = time.monotonic() + 10
    while len(logged) < 7 and time.monotonic() < deadline:
        logged += severe(driver.get_log("browser"))
        time.sleep(0.05)
    time.sleep(0.3)
    logged += severe(driver.get_log("browser"))
    assert sorted(logged) == sorted([refused] * 6 + [insecure])
    assert driver.execute_script("return pageErrors") == []
    driver.get("about:blank")  # the engagement report on leaving fails too, silently
    assert severe(driver.get_log("browser")) == []
    assert [r for r in script_host.requests if r[0] != "GET"] == []  # nothing got through
