"""Security headers through the real server: every route of the app, checked by kind of route.

Routes come from the app's own URL map, so a route added later is checked the moment it exists.
Pages for a person (sign-in, the dashboard and Dash's routes, unsubscribe, survey, health, anything
new) must carry the full set; the snippet keeps its CORS and cache headers and no page policy; the
hot collector routes, answered before Flask, keep what embedding sites need. The CSP's script
hashes are checked against hashes computed here from the inline scripts of the page the browser
gets, and headless Chromium renders every dashboard page without a CSP violation.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.fixtures.dashboard import PASSWORD, Served, serve_demo, severe
from tests.fixtures.web import WebClient
from tracker.app import create_app
from tracker.control.models import Role
from tracker.control.users import add_user
from tracker.runtime import Runtime
from tracker.settings import load_settings
from tracker.tokens import TokenCodec

ADMIN = "admin@example.com"
SHOP = "https://shop.example.com"
_ARG = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
_INLINE_SCRIPT = re.compile(rb"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S)
_COMMENT = re.compile(rb"<!--.*?-->", re.S)
PAGE_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin"}


def _prepare(runtime: Runtime, site_id: str) -> None:
    with runtime.control.session() as db:
        add_user(db, ADMIN, PASSWORD, Role.admin)
        db.commit()


@pytest.fixture(scope="module")
def demo(clickhouse_server, tmp_path_factory) -> Iterator[Served]:
    yield from serve_demo(clickhouse_server, tmp_path_factory.mktemp("security-headers"), _prepare)


@pytest.fixture(scope="module")
def app_map(clickhouse_server, tmp_path_factory) -> Iterator[Flask]:
    """The same app in this process (all parts), on an https public URL: its URL map and its HSTS."""
    environ = {"ODNOS_DATA_DIR": str(tmp_path_factory.mktemp("security-map")),
               "ODNOS_CLICKHOUSE_URL": clickhouse_server.url_for("headers_" + uuid.uuid4().hex[:8]),
               "ODNOS_PUBLIC_URL": "https://odnos.example.com"}
    runtime = Runtime.open(load_settings(environ=environ))
    yield create_app(runtime)
    runtime.store.command(f"DROP DATABASE IF EXISTS {runtime.store.database}")
    runtime.close()


def _csp(response) -> dict[str, list[str]]:
    policy = response.getheader("Content-Security-Policy") or ""
    return {name: sources for name, *sources in (part.split() for part in policy.split(";") if part.strip())}


def _assert_page_headers(response, what: str) -> None:
    for name, value in PAGE_HEADERS.items():
        assert response.getheader(name) == value, f"{what}: {name} is {response.getheader(name)!r}"
    csp = _csp(response)
    assert csp.get("default-src") == ["'self'"], f"{what}: {csp}"
    assert csp.get("frame-ancestors") == ["'none'"], f"{what}: {csp}"
    assert csp.get("object-src") == ["'none'"], f"{what}: {csp}"
    script = csp.get("script-src", [])
    assert script[:1] == ["'self'"] and all(s.startswith("'sha256-") for s in script[1:]), what
    sources = {source for values in csp.values() for source in values}
    assert not sources & {"*", "http:", "https:"}, f"{what}: {csp}"
    assert response.getheader("Strict-Transport-Security") is None, f"{what}: HSTS on plain http"


def _paths(app: Flask) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, _ARG.sub("x", rule.rule)))
    return found


@pytest.mark.server
def test_every_route_carries_the_headers_of_its_kind(demo: Served, app_map: Flask) -> None:
    admin, anonymous = WebClient(demo.server.port), WebClient(demo.server.port)
    admin.log_in(ADMIN, PASSWORD)
    routes = _paths(app_map)
    assert {"auth.login", "collect.unsubscribe", "survey.answer", "collect.snippet"} <= {r[0] for r in routes}
    assert len(app_map.extensions["odnos.dash_endpoints"]) >= 6
    checked = 0
    for endpoint, method, path in routes:
        if endpoint == "auth.logout":
            continue  # signing out is checked below, with the anonymous client
        client = admin if method == "GET" else anonymous
        response = client.request(method, path, json_body={} if method == "POST" else None)
        assert response.status < 500, f"{method} {path}: {response.status}"
        what = f"{method} {path} ({endpoint}, {response.status})"
        if endpoint == "collect.snippet":
            assert response.getheader("Content-Security-Policy") is None, what
            assert response.getheader("X-Frame-Options") is None, what
            assert response.getheader("Access-Control-Allow-Origin") == "*", what
            assert response.getheader("Cache-Control") == "public, max-age=3600", what
            assert response.getheader("X-Content-Type-Options") == "nosniff", what
        else:
            _assert_page_headers(response, what)
        checked += 1
    assert checked >= 10
    _assert_page_headers(anonymous.request("POST", "/logout", {"csrf": "none"}), "POST /logout")
    _assert_page_headers(anonymous.request("GET", "/no/such/page/"), "GET an unknown path")


@pytest.mark.server
def test_the_csp_allows_exactly_the_inline_scripts_of_the_dashboard(demo: Served) -> None:
    admin = WebClient(demo.server.port)
    admin.log_in(ADMIN, PASSWORD)
    index = admin.request("GET", "/")
    assert index.status == 200
    html = _COMMENT.sub(b"", index.body)  # Dash's IE notice sits in a conditional comment: never run
    inline = [m["body"] for m in _INLINE_SCRIPT.finditer(html)
              if b"src=" not in m["attrs"] and b"application/json" not in m["attrs"]]
    assert inline, "Dash's index page has no inline script: the test reads the wrong page"
    expected = {f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'" for body in inline}
    allowed = set(_csp(index)["script-src"][1:])
    assert expected <= allowed, expected - allowed
    # The sign-in page has no inline script to allow: hashes for Dash's do not make it unsafe.
    login = admin.request("GET", "/login")
    assert not [m for m in _INLINE_SCRIPT.finditer(login.body) if b"src=" not in m["attrs"]]


@pytest.mark.server
def test_the_collector_routes_keep_what_embedding_sites_need(demo: Served) -> None:
    client = WebClient(demo.server.port)
    codec = TokenCodec(demo.runtime.keys)
    beacon = client.request("POST", "/e", json_body={"site": demo.site_id, "name": "pageview",
                                                     "url": SHOP + "/"}, headers={"Origin": SHOP})
    pixel = client.request("GET", "/o/" + codec.open("c_headers", 1))
    gif = client.request("GET", f"/e.gif?site={demo.site_id}&name=pageview&url={SHOP}/")
    click = client.request("GET", "/c/" + codec.click("c_headers", 1, 1, SHOP + "/spring"))
    assert beacon.status == 202 and beacon.getheader("Access-Control-Allow-Origin") == SHOP
    assert pixel.status == 200 and gif.status == 200
    assert click.status == 302 and click.getheader("Referrer-Policy") == "no-referrer"
    for response in (beacon, pixel, gif, click):
        for name in ("Content-Security-Policy", "X-Frame-Options", "Cross-Origin-Resource-Policy"):
            assert response.getheader(name) is None, (response.status, name)


def test_hsts_only_when_the_public_url_is_https(app_map: Flask) -> None:
    response = app_map.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert response.headers["X-Frame-Options"] == "DENY"
    snippet = app_map.test_client().get("/s.js")
    assert "Strict-Transport-Security" not in snippet.headers


@pytest.mark.server
def test_every_page_renders_in_chromium_without_a_csp_violation(demo: Served, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from dashboard.pages import PAGES

    codec = TokenCodec(demo.runtime.keys)
    browser.get(demo.server.url + "/login")
    browser.find_element(By.ID, "email").send_keys(ADMIN)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 20).until(lambda d: "/login" not in d.current_url)
    for page in PAGES:
        browser.get(demo.server.url + page.PATH)
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#page > *"))
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script("return !document.querySelector('[data-dash-is-loading]')"))
        assert severe(browser) == [], page.PATH
    for path in ("/u/" + codec.unsubscribe("c_headers"), "/r/" + codec.survey("c_headers", 1, "nps", 9)):
        browser.get(demo.server.url + path)
        WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.TAG_NAME, "form"))
        assert severe(browser) == [], path
