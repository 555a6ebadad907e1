"""Plausible's ``POST /api/event`` and Umami's ``POST /api/send`` through real HTTP, on both engines.

`odnos serve` runs on the embedded store (chDB) and on the ClickHouse server; hand-made requests in
each tracker's documented shape must land as odnos events with the right site, page, referrer,
name and props, enriched like beacons (device, bot verdict, visitor), and answered the way the
tracker expects. Malformed payloads get a 4xx with a JSON reason and land nothing. What landed is
read with `odnos sql` once the server has written its queue (and, on chDB, stopped: the embedded
store is held by one process). The real tracker scripts run in tests/test_dropin_browser.py.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.collector import CHROME, DOMAIN, NEW_KEY
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos

pytestmark = pytest.mark.server
OTHER_DOMAIN = "blog.example.org"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
COLUMNS = ("site_id, name, url, pathname, referrer, referrer_source, engaged_ms, scroll, is_bot, browser, "
           "visitor_id, "
           "arrayStringConcat(arrayMap((k, v) -> concat(k, '=', v), props.key, props.value), '&')")
FIELDS = ("site_id", "name", "url", "pathname", "referrer", "referrer_source", "engaged_ms", "scroll",
          "is_bot", "browser", "visitor_id", "props")


@dataclass
class Served:
    """`odnos serve` on one engine with two sites; ``landed`` reads what it wrote, once, at the end."""

    engine: str
    server: OdnosServer
    env: dict[str, str]
    sites: dict[str, str]  # domain -> site id

    def request(self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None,
                ) -> tuple[int, dict[str, str], bytes]:
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=15)
        conn.request(method, path, body=data, headers={"User-Agent": CHROME, **(headers or {})})
        response = conn.getresponse()
        answer = response.read()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, answer

    def inserted(self) -> int:
        status, _, body = self.request("GET", "/healthz")
        assert status == 200, body
        ingestion = json.loads(body)["ingestion"]
        return ingestion["inserted_rows"] if ingestion["pending_bytes"] == 0 else -1

    def landed(self, where: str, expected: int, timeout: float = 30) -> list[dict]:
        """Rows of ``events`` matching ``where`` (literal SQL), once ``expected`` rows were written."""
        deadline = time.monotonic() + timeout
        while self.inserted() < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # a few batch intervals more: a row that should not be there would be by now
        if self.engine == "chdb":
            self.server.stop()
        done = run_odnos("sql", f"SELECT {COLUMNS} FROM events WHERE {where} ORDER BY ts, ts_ms, name",
                         env=self.env)
        assert done.returncode == 0, done.stderr
        rows = [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in done.stdout.splitlines()]
        for row in rows:
            row["props"] = dict(p.split("=", 1) for p in row["props"].split("&")) if row["props"] else {}
        return rows


def serve(engine: str, data: Path, clickhouse_url: str = "",
          before: Callable[[dict[str, str]], None] | None = None, **extra: str) -> Served:
    """`odnos serve` on ``engine`` with the two sites; ``before(env)`` runs first (imports, keys)."""
    env = odnos_env(data, ODNOS_SECRET_KEYS=NEW_KEY, ODNOS_BATCH_INTERVAL="0.05", **extra)
    if clickhouse_url:
        env["ODNOS_CLICKHOUSE_URL"] = clickhouse_url
    sites = {}
    for name, domain in (("Shop", DOMAIN), ("Blog", OTHER_DOMAIN)):
        added = run_odnos("site", "add", name, "--domain", domain, env=env)
        assert added.returncode == 0, added.stderr
        sites[domain] = added.stdout.strip().splitlines()[-1]
    if before is not None:
        before(env)
    return Served(engine, OdnosServer(env).start(), env, sites)


def engine_url(request: pytest.FixtureRequest, prefix: str) -> str:
    """The ClickHouse URL of a fresh database for the "server" parametrisation; '' (chDB) otherwise."""
    if request.param != "server":
        return ""
    return request.getfixturevalue("clickhouse_server").url_for(prefix + uuid.uuid4().hex[:8])


@pytest.fixture(params=["chdb", "server"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    running = serve(request.param, tmp_path / "data", engine_url(request, "dropin_"))
    yield running
    running.server.stop()


def plausible(served: Served, payload: object, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return served.request("POST", "/api/event", payload, {"Content-Type": "text/plain", **headers})


def umami(served: Served, payload: object, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return served.request("POST", "/api/send", payload, {"Content-Type": "application/json", **headers})


def test_plausible_and_umami_events_land_as_odnos_events(served: Served) -> None:
    shop, blog = served.sites[DOMAIN], served.sites[OTHER_DOMAIN]
    origin = {"Origin": f"https://www.{DOMAIN}"}
    answers = [
        plausible(served, {"n": "pageview", "u": f"https://www.{DOMAIN}/pricing?utm_source=news", "d": DOMAIN,
                           "r": "https://www.google.com/search?q=shop", "v": 36}, **origin),
        plausible(served, {"name": "Signup", "url": f"https://{DOMAIN}/join", "domain": DOMAIN,
                           "props": {"plan": "pro", "seats": 3, "trial": True, "gone": None},
                           "revenue": {"amount": 15.99, "currency": "usd"}, "interactive": False}),
        plausible(served, {"n": "engagement", "u": f"https://{DOMAIN}/join", "d": DOMAIN, "e": 4200,
                           "sd": 180, "p": '{"plan": "pro"}'}),
        plausible(served, {"n": "pageview", "u": f"https://{DOMAIN}/app#/settings", "d": DOMAIN, "h": 1}),
        # A site named twice (a roll-up list): one event for it.
        plausible(served, {"n": "Outbound Link: Click", "u": f"https://{DOMAIN}/", "d": f"{DOMAIN}, {DOMAIN}",
                           "p": {"url": "https://elsewhere.example.net/"}}),
        plausible(served, {"n": "pageview", "u": f"https://{DOMAIN}/", "d": DOMAIN},
                  **{"User-Agent": GOOGLEBOT}),
    ]
    for status, headers, body in answers:
        assert (status, body) == (202, b"ok"), body
        assert headers["content-type"].startswith("text/plain")
    assert answers[0][1]["access-control-allow-origin"] == f"https://www.{DOMAIN}"

    umami_answers = [
        umami(served, {"type": "event", "payload": {
            "website": "8a2b1c9e-0000-4000-8000-000000000001", "hostname": OTHER_DOMAIN, "screen": "1280x720",
            "language": "en-GB", "title": "Hello", "url": "/posts/first?ref=x",
            "referrer": "https://news.ycombinator.com/item?id=1"}}, Origin=f"https://{OTHER_DOMAIN}"),
        umami(served, {"type": "event", "payload": {
            "website": "8a2b1c9e-0000-4000-8000-000000000001", "hostname": OTHER_DOMAIN,
            "url": "/posts/first", "name": "subscribe",
            "data": {"list": "weekly", "count": 2, "nested": {"a": 1}}}}),
        umami(served, {"type": "identify", "payload": {
            "website": "w", "hostname": OTHER_DOMAIN, "url": f"https://{OTHER_DOMAIN}/account",
            "data": {"tier": "gold"}}}),
    ]
    for status, headers, body in umami_answers:
        assert status == 200 and json.loads(body) == {"ok": True}, body
        assert headers["content-type"] == "application/json"
    assert umami_answers[0][1]["access-control-allow-origin"] == f"https://{OTHER_DOMAIN}"

    rows = served.landed(f"site_id IN ('{shop}', '{blog}')", expected=10)
    by_site = {site: [r for r in rows if r["site_id"] == site] for site in (shop, blog)}
    # Requests a millisecond apart may land in either order: rows are compared by (name, path).
    shop_rows = {(r["name"], r["pathname"]): r for r in by_site[shop]}
    assert {key: row["props"] for key, row in shop_rows.items()} == {
        ("pageview", "/pricing"): {},
        ("Signup", "/join"): {"plan": "pro", "seats": "3", "trial": "true", "revenue_amount": "15.99",
                              "revenue_currency": "USD", "interactive": "false"},
        ("engagement", "/join"): {"plan": "pro"},
        ("pageview", "/app"): {"hash": "#/settings"},
        ("Outbound Link: Click", "/"): {"url": "https://elsewhere.example.net/"},
        ("pageview", "/"): {},
    }
    assert len(by_site[shop]) == 6
    first, engagement = shop_rows["pageview", "/pricing"], shop_rows["engagement", "/join"]
    assert first["url"] == f"https://www.{DOMAIN}/pricing?utm_source=news"
    assert (first["referrer"], first["referrer_source"]) == ("https://www.google.com/search?q=shop", "search")
    assert (first["browser"], first["is_bot"]) == ("Chrome", "0") and first["visitor_id"]
    assert (engagement["engaged_ms"], engagement["scroll"]) == ("4200", "100")  # a scroll depth past 100 %
    assert shop_rows["pageview", "/"]["is_bot"] == "1"

    blog_rows = sorted((r["name"], r["url"], r["referrer"], r["props"]) for r in by_site[blog])
    assert blog_rows == [
        ("pageview", f"https://{OTHER_DOMAIN}/posts/first?ref=x", "https://news.ycombinator.com/item?id=1",
         {}),
        ("session_data", f"https://{OTHER_DOMAIN}/account", "", {"tier": "gold"}),
        ("subscribe", f"https://{OTHER_DOMAIN}/posts/first", "",
         {"list": "weekly", "count": "2", "nested": '{"a":1}'}),
    ]
    assert [r["referrer_source"] for r in by_site[blog] if r["referrer"]] == ["social"]


@pytest.mark.parametrize(("path", "payload", "status", "code", "field"), [
    ("/api/event", b"", 400, "empty_body", None),
    ("/api/event", b"{not json", 400, "bad_json", None),
    ("/api/event", [], 400, "bad_event", "body"),
    ("/api/event", {"u": f"https://{DOMAIN}/", "d": DOMAIN}, 400, "bad_event", "n"),
    ("/api/event", {"n": "pageview", "d": DOMAIN}, 400, "bad_event", "u"),
    ("/api/event", {"n": "pageview", "u": f"https://{DOMAIN}/"}, 400, "bad_event", "d"),
    ("/api/event", {"n": "pageview", "u": f"https://{DOMAIN}/", "d": "unknown.example.net"}, 400,
     "unknown_site", "d"),
    ("/api/event", {"n": "pageview", "u": "https://evil.example.net/", "d": DOMAIN}, 403, "foreign_host",
     None),
    ("/api/event", {"n": 5, "u": f"https://{DOMAIN}/", "d": DOMAIN}, 400, "bad_event", "n"),
    ("/api/event", {"n": "x", "u": f"https://{DOMAIN}/", "d": DOMAIN, "p": "[1"}, 400, "bad_event", "p"),
    ("/api/event", {"n": "x", "u": f"https://{DOMAIN}/", "d": DOMAIN, "p": [1]}, 400, "bad_event", "p"),
    ("/api/event", {"n": "x", "u": f"https://{DOMAIN}/", "d": DOMAIN, "revenue": {"amount": "lots",
                                                                                  "currency": "EUR"}},
     400, "bad_event", "revenue.amount"),
    ("/api/event", {"n": "x", "u": f"https://{DOMAIN}/", "d": DOMAIN, "i": "no"}, 400, "bad_event", "i"),
    ("/api/event", {"n": "engagement", "u": f"https://{DOMAIN}/", "d": DOMAIN, "e": -1}, 400, "bad_event",
     "e"),
    ("/api/event", {"n": "x", "u": f"https://{DOMAIN}/", "d": DOMAIN,
                    "p": {f"k{i}": "v" for i in range(31)}}, 400, "bad_event", None),
    ("/api/send", {"type": "event"}, 400, "bad_event", "payload"),
    ("/api/send", {"type": "click", "payload": {}}, 400, "bad_event", "type"),
    ("/api/send", {"payload": {"url": "/"}}, 400, "bad_event", "payload.hostname"),
    ("/api/send", {"payload": {"hostname": "nowhere.example.net", "url": "/"}}, 400, "unknown_site",
     "payload.hostname"),
    ("/api/send", {"payload": {"hostname": DOMAIN}}, 400, "bad_event", "payload.url"),
    ("/api/send", {"payload": {"hostname": DOMAIN, "url": "relative"}}, 400, "bad_event", "payload.url"),
    ("/api/send", {"payload": {"hostname": DOMAIN, "url": "/", "data": "x"}}, 400, "bad_event",
     "payload.data"),
])
def test_malformed_requests_get_a_json_reason_and_land_nothing(
        path: str, payload: object, status: int, code: str, field: str | None, shared: Served) -> None:
    answer, headers, body = shared.request("POST", path, payload, {"Content-Type": "text/plain"})
    assert answer == status, body
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"]
    assert error.get("field") == field


@pytest.fixture(scope="module")
def shared(clickhouse_server, tmp_path_factory) -> Iterator[Served]:
    """One server for the refusals (the ClickHouse server engine: the mapping is the same on both)."""
    url = clickhouse_server.url_for("dropin_bad_" + uuid.uuid4().hex[:8])
    running = serve("server", tmp_path_factory.mktemp("dropin-bad"), url)
    yield running
    running.server.stop()


def test_refusals_landed_nothing_and_methods_and_preflights(shared: Served) -> None:
    status, headers, _ = shared.request("GET", "/api/event")
    assert status == 405 and headers["content-type"] == "application/json"
    status, _, _ = shared.request("POST", "/api/send", b"{}",
                                  {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    status, headers, _ = shared.request("OPTIONS", "/api/send", None, {
        "Origin": f"http://{DOMAIN}:8080", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-umami-cache"})
    assert status == 204
    assert headers["access-control-allow-origin"] == f"http://{DOMAIN}:8080"
    assert "x-umami-cache" in headers["access-control-allow-headers"]
    status, headers, _ = shared.request("OPTIONS", "/api/event", None, {"Origin": "https://evil.example.net"})
    assert status == 204 and "access-control-allow-origin" not in headers
    time.sleep(0.5)  # the refusals above, had any been accepted, would be written by now
    assert shared.inserted() == 0
