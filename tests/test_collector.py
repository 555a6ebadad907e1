"""The collector through real HTTP: `odnos collector` (granian) in front of the ClickHouse server.

Every route, every refusal, and what lands in ClickHouse: enrichment, identity hand-off, identify,
machine opens and scanner clicks, unsubscribe. Each test marks its events with a unique property so
tests sharing the server never see each other's rows.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.collector import CHROME, NEW_KEY, OLD_KEY, Collector, running_collector
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tracker.contacts import contact_id_for
from tracker.control.consent import is_suppressed
from tracker.control.sites import get_site
from tracker.tokens import TokenCodec, identify_hash

pytestmark = pytest.mark.server

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Mobile/15E148")


@pytest.fixture(scope="module")
def collector(clickhouse_server, tmp_path_factory) -> Collector:
    with running_collector(clickhouse_server, tmp_path_factory.mktemp("collector")) as running:
        yield running


def _marker() -> str:
    return uuid.uuid4().hex[:12]


# -- beacons --------------------------------------------------------------------------------------


def test_beacon_is_enriched_and_lands(collector: Collector) -> None:
    m = _marker()
    status, headers, body = collector.post(collector.event(
        m, url="https://www.shop.example.com/products/blue?utm_source=news&utm_medium=email&utm_campaign=fall",
        referrer="https://www.google.com/search?q=shoes", visitor="v-" + m, session="s-" + m, scroll=55,
        engaged_ms=1234, ts=int(time.time() * 1000) - 5000))
    assert (status, json.loads(body)) == (202, {"ok": True, "accepted": 1})
    [row] = collector.marked(m, 1)
    assert row["site_id"] == collector.site_id
    assert (row["name"], row["hostname"], row["pathname"]) == (
        "pageview", "www.shop.example.com", "/products/blue")
    assert (row["browser"], row["os"], row["device"], row["is_bot"]) == ("Chrome", "Windows", "desktop", 0)
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == ("news", "email", "fall")
    assert row["referrer_domain"] == "google.com" and row["referrer_source"] == "email"  # utm_medium wins
    assert (row["visitor_id"], row["session_id"]) == ("v-" + m, "s-" + m)
    assert (row["scroll"], row["engaged_ms"]) == (55, 1234)
    assert abs(row["ts"].timestamp() - (time.time() - 5)) < 30  # the client's ts was kept


def test_batch_as_json_and_cookieless_visitors(collector: Collector) -> None:
    m = _marker()
    events = [collector.event(m, url=f"https://shop.example.com/p{i}", name="pageview" if i else "signup")
              for i in range(5)]
    status, _, body = collector.post(events, "application/json; charset=utf-8")
    assert status == 202 and json.loads(body)["accepted"] == 5
    rows = collector.marked(m, 5)
    assert len(rows) == 5
    assert len({r["visitor_id"] for r in rows}) == 1 and rows[0]["visitor_id"]  # same IP + UA, same day
    assert len({r["session_id"] for r in rows}) == 1
    assert {r["name"] for r in rows} == {"pageview", "signup"}


def test_bots_are_stored_flagged(collector: Collector) -> None:
    m = _marker()
    status, _, _ = collector.post(collector.event(m), **{"User-Agent": "Mozilla/5.0 (compatible; "
                                                          "Googlebot/2.1; +http://www.google.com/bot.html)"})
    assert status == 202
    [row] = collector.marked(m, 1)
    assert row["is_bot"] == 1 and row["bot_reason"]


@pytest.mark.parametrize(("body", "content_type", "status", "code"), [
    (b"{not json", "text/plain", 400, "bad_json"),
    (b"\xff\xfe\x00garbage", "text/plain", 400, "bad_json"),
    (b"", "text/plain", 400, "empty_body"),
    (b"[]", "text/plain", 400, "empty_body"),
    (b'{"site": 1, "name": "pageview", "url": "https://shop.example.com/"}', "text/plain", 400, "bad_event"),
    (b'{"name": "pageview", "url": "https://shop.example.com/"}', "text/plain", 400, "bad_event"),
    (b'{"site": "s_none", "name": "pageview", "url": "https://shop.example.com/", "x": 1}', "text/plain",
     400, "bad_event"),
    (b'{"site": "s_none", "name": "pageview", "url": "https://shop.example.com/"}', "text/plain", 400,
     "unknown_site"),
    (b'"just a string"', "text/plain", 400, "bad_event"),
    (b'{"site":"s","name":"p","url":"u"}', "application/x-www-form-urlencoded", 415,
     "unsupported_media_type"),
])
def test_bad_beacons_get_a_json_reason(collector: Collector, body: bytes, content_type: str, status: int,
                                       code: str) -> None:
    got, headers, data = collector.post(body, content_type)
    assert got == status, data
    assert headers["content-type"] == "application/json"
    assert json.loads(data)["error"]["code"] == code


def test_foreign_host_wrong_types_and_limits(collector: Collector) -> None:
    m = _marker()
    status, _, data = collector.post(collector.event(m, url="https://evil.example.org/"))
    assert (status, json.loads(data)["error"]["code"]) == (403, "foreign_host")
    status, _, data = collector.post(collector.event(m, scroll="deep"))
    assert status == 400 and "scroll" in json.loads(data)["error"]["message"]
    status, _, data = collector.post([collector.event(m)] * 101)
    assert (status, json.loads(data)["error"]["code"]) == (413, "too_many_events")
    big = json.dumps(collector.event(m, props={"t": m, "pad": "x" * 500})).encode()
    status, _, data = collector.post(b"[" + b",".join([big] * 200) + b"]")
    assert status == 413
    status, _, data = collector.request("GET", "/e")
    assert status == 405
    # One bad event refuses the whole batch: nothing of it lands.
    status, _, _ = collector.post([collector.event(m), collector.event(m, url="javascript:alert(1)")])
    assert status in (400, 403)
    collector.post(collector.event(m + "-after"))
    collector.marked(m + "-after", 1)
    assert collector.marked(m, 0) == []


def test_cors_only_for_the_sites_domains(collector: Collector) -> None:
    m = _marker()
    _, headers, _ = collector.post(collector.event(m), Origin="https://shop.example.com")
    assert headers.get("access-control-allow-origin") == "https://shop.example.com"
    _, headers, _ = collector.post(collector.event(m), Origin="https://evil.example.org")
    assert "access-control-allow-origin" not in headers
    status, headers, _ = collector.request("OPTIONS", "/e", headers={
        "Origin": "https://www.shop.example.com", "Access-Control-Request-Method": "POST"})
    assert status == 204 and headers["access-control-allow-origin"] == "https://www.shop.example.com"
    _, headers, _ = collector.request("OPTIONS", "/e", headers={"Origin": "https://evil.example.org"})
    assert "access-control-allow-origin" not in headers


def test_gif_fallback_for_pages_without_javascript(collector: Collector) -> None:
    m = _marker()
    query = (f"site={collector.site_id}&name=pageview&url=https%3A%2F%2Fshop.example.com%2Fnojs"
             f"&props=%7B%22t%22%3A%22{m}%22%7D")
    status, headers, body = collector.request("GET", "/e.gif?" + query)
    assert status == 200 and headers["content-type"] == "image/gif" and body.startswith(b"GIF89a")
    [row] = collector.marked(m, 1)
    assert row["pathname"] == "/nojs"
    status, _, data = collector.request("GET", "/e.gif?site=x&bogus=1")
    assert status == 400 and json.loads(data)["error"]["code"] == "bad_event"


def test_whole_number_floats_land_as_integers_and_block_nothing(collector: Collector) -> None:
    """A JSON ``50.0`` passes the schema as an integer: it must be stored as 50, not stall the writer."""
    m = _marker()
    sent_ms = int(time.time() * 1000) - 7000
    status, _, body = collector.post(collector.event(m, name="engagement", scroll=50.0, engaged_ms=1000.0,
                                                     ts=float(sent_ms)))
    assert (status, json.loads(body)) == (202, {"ok": True, "accepted": 1})
    for n in range(20):
        status, _, _ = collector.post(collector.event(m, url=f"https://shop.example.com/{n}", scroll=n))
        assert status == 202
    rows = collector.marked(m, 21)
    assert sorted(r["scroll"] for r in rows) == sorted([50, *range(20)])
    [engagement] = [r for r in rows if r["name"] == "engagement"]
    assert (engagement["scroll"], engagement["engaged_ms"]) == (50, 1000)
    assert abs(engagement["ts"].timestamp() + engagement["ts_ms"] / 1000 - sent_ms / 1000) < 0.002
    ingestion = collector.health()["ingestion"]
    assert (ingestion["failures"], ingestion["dead_letter_rows"]) == (0, 0)


@pytest.mark.parametrize(("query", "field"), [
    ("scroll=%C2%B2", "scroll"),  # superscript two: str.isdigit() says yes, int() says no
    ("engaged_ms=%D9%A3%D9%A0", "engaged_ms"),  # Arabic-Indic digits: int() would take them
    ("ts=%EF%BC%91%EF%BC%92", "ts"),  # fullwidth digits
    ("scroll=" + "9" * 5000, "scroll"),  # past Python's int-string limit
    ("ts=" + "9" * 400, "ts"),  # beyond any float: the pipeline would overflow
    ("ts=99999999999999", "ts"),  # past the last second a DateTime column holds
    ("engaged_ms=-5", "engaged_ms"),
    ("scroll=5.0", "scroll"),
])
def test_gif_numbers_are_ascii_digits_within_range(collector: Collector, query: str, field: str) -> None:
    logged = len(collector.server.output)
    base = f"site={collector.site_id}&name=pageview&url=https%3A%2F%2Fshop.example.com%2F"
    status, headers, data = collector.request("GET", f"/e.gif?{base}&{query}")
    assert (status, headers["content-type"]) == (400, "application/json"), data[:300]
    error = json.loads(data)["error"]
    assert error["code"] == "bad_event" and field in error["message"]
    assert not any("Traceback" in line for line in collector.server.output[logged:])


def test_gif_numbers_land(collector: Collector) -> None:
    m = _marker()
    sent_ms = int(time.time() * 1000) - 3000
    query = (f"site={collector.site_id}&name=engagement&url=https%3A%2F%2Fshop.example.com%2Fg"
             f"&props=%7B%22t%22%3A%22{m}%22%7D&scroll=0075&engaged_ms=86400000&ts={sent_ms}")
    assert collector.request("GET", "/e.gif?" + query)[0] == 200
    [row] = collector.marked(m, 1)
    assert (row["scroll"], row["engaged_ms"]) == (75, 86_400_000)
    assert abs(row["ts"].timestamp() + row["ts_ms"] / 1000 - sent_ms / 1000) < 0.002


def test_beacon_ts_has_a_maximum(collector: Collector) -> None:
    m = _marker()
    for ts in (10**19, 10**30, 4294967296000):
        status, _, data = collector.post(collector.event(m, ts=ts))
        assert status == 400 and "ts" in json.loads(data)["error"]["message"], ts
    assert collector.post(collector.event(m, ts=4294967295999))[0] == 202  # the column's last second


# -- identity ---------------------------------------------------------------------------------------


def test_handoff_links_the_visitor_to_the_contact(collector: Collector) -> None:
    m = _marker()
    contact = contact_id_for(f"{m}@example.com")
    status, _, _ = collector.post(collector.event(m, visitor="v" + m, odn=collector.codec.handoff(contact)))
    assert status == 202
    [row] = collector.marked(m, 1)
    assert row["contact_id"] == contact
    deadline = time.monotonic() + 10
    while not collector.store.query("SELECT count() FROM identities WHERE visitor_id = %(v)s",
                                    {"v": "v" + m}).scalar() and time.monotonic() < deadline:
        time.sleep(0.1)
    linked = collector.store.query("SELECT contact_id, method FROM identities FINAL WHERE visitor_id = %(v)s",
                                   {"v": "v" + m}).rows
    assert linked == [(contact, "email_link")]
    # A forged hand-off costs nothing but the link: the pageview still lands, with no contact.
    m2 = _marker()
    assert collector.post(collector.event(m2, odn="forged.token.here"))[0] == 202
    assert collector.marked(m2, 1)[0]["contact_id"] == ""


def test_identify_needs_the_sites_hmac(collector: Collector) -> None:
    with collector.control.session() as db:
        secret = get_site(db, collector.site_id).identify_secret
    m = _marker()
    email = f"{m}@Example.com"
    good = collector.event(m, name="identify", email=email, hash=identify_hash(secret, email))
    assert collector.post(good)[0] == 202
    [row] = collector.marked(m, 1)
    assert row["contact_id"] == contact_id_for(email)
    bad = collector.event(m, name="identify", email="ceo@example.com", hash=identify_hash("guess", "x@y.z"))
    status, _, data = collector.post(bad)
    assert (status, json.loads(data)["error"]["code"]) == (403, "bad_identify")


# -- email ------------------------------------------------------------------------------------------


def test_open_pixel_flags_machines(collector: Collector) -> None:
    message = "camp1." + _marker()
    token = collector.codec.open("c-open", message)
    status, headers, body = collector.request("GET", f"/o/{token}", headers={"User-Agent": "Mozilla/5.0"})
    assert status == 200 and headers["content-type"] == "image/gif" and "no-store" in headers["cache-control"]
    time.sleep(3.2)  # a person opens later than the "too fast" window after the send
    collector.request("GET", f"/o/{token}", headers={"User-Agent": IPHONE})
    rows = collector.rows("message_id = %(m)s", {"m": message}, 2)
    assert [(r["name"], r["is_machine"], r["machine_reason"]) for r in rows] == [
        ("email_open", 1, "apple_mpp"), ("email_open", 0, "")]
    assert rows[0]["campaign_id"] == "camp1" and rows[1]["contact_id"] == "c-open"


def test_click_redirects_hands_off_and_records(collector: Collector) -> None:
    message = "camp2." + _marker()
    target = "https://shop.example.com/products/blue?size=42#reviews"
    token = collector.codec.click("c-click", message, "3", target)
    time.sleep(10.5)  # clicks within 10 s of the send are scanner-like
    status, headers, _ = collector.request("GET", f"/c/{token}", headers={"User-Agent": IPHONE})
    assert status == 302
    location = urlsplit(headers["location"])
    assert (location.scheme, location.netloc, location.path, location.fragment) == (
        "https", "shop.example.com", "/products/blue", "reviews")
    query = parse_qs(location.query)
    assert query["size"] == ["42"]
    assert collector.codec.read_handoff(query["_odn"][0]) == "c-click"
    [row] = collector.rows("message_id = %(m)s", {"m": message}, 1)
    assert (row["name"], row["link_id"], row["target_url"], row["is_machine"], row["site_id"]) == (
        "email_click", "3", target, 0, collector.site_id)


def test_scanner_click_is_flagged_and_gets_no_handoff(collector: Collector) -> None:
    message = "camp3." + _marker()
    token = collector.codec.click("c-scan", message, "1", "https://shop.example.com/")
    status, headers, _ = collector.request("HEAD", f"/c/{token}")
    assert status == 302 and "_odn" not in headers["location"]
    [row] = collector.rows("message_id = %(m)s", {"m": message}, 1)
    assert row["is_machine"] == 1 and row["machine_reason"]


def test_old_key_still_verifies_and_bad_tokens_never_redirect(collector: Collector) -> None:
    old_codec = TokenCodec([OLD_KEY])
    status, headers, _ = collector.request("GET", "/c/" + old_codec.click("c", "m", "1", "https://shop.example.com/"))
    assert status == 302
    expired = TokenCodec([NEW_KEY], clock=lambda: time.time() - 500 * 86400).click(
        "c", "m", "1", "https://shop.example.com/")
    foreign = TokenCodec(["someone-elses-key-" + "x" * 20]).click("c", "m", "1", "https://evil.example.org/")
    good = collector.codec.click("c", "m", "1", "https://shop.example.com/")
    for token, code in [(expired, "expired_token"), (foreign, "bad_token"), (good[:-3], "bad_token"),
                        (good[:20], "bad_token"), ("%0d%0aLocation:%20https://evil", "bad_token"),
                        ("x" * 5000, "bad_token")]:
        status, headers, data = collector.request("GET", f"/c/{token}")
        assert status == 400 and "location" not in headers, token
        assert json.loads(data)["error"]["code"] == code
    assert collector.request("GET", "/o/" + good)[0] == 400  # a click token is not an open token


def test_unsubscribe_page_and_one_click(collector: Collector) -> None:
    contact = "c-unsub-" + _marker()
    token = collector.codec.unsubscribe(contact, "news")
    status, _, page = collector.request("GET", f"/u/{token}")
    assert status == 200 and b'id="confirm"' in page
    with collector.control.session() as db:
        assert not is_suppressed(db, contact, "news")  # a GET (a link scanner) unsubscribes nobody
    status, _, data = collector.request("POST", f"/u/{token}", "List-Unsubscribe=One-Click",
                                        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and json.loads(data)["unsubscribed"] is True
    with collector.control.session() as db:
        assert is_suppressed(db, contact, "news")  # effective at once
    status, _, page = collector.request("POST", f"/u/{token}", "confirm=yes",
                                        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and b'id="done"' in page
    rows = collector.rows("contact_id = %(c)s", {"c": contact}, 1)
    assert [r["name"] for r in rows] == ["unsubscribe"]  # recorded once, not twice
    status, _, page = collector.request("POST", f"/u/{token[:-4]}", "List-Unsubscribe=One-Click",
                                        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"does not work" in page


def test_healthz_reports_the_queue(collector: Collector) -> None:
    status, _, data = collector.request("GET", "/healthz")
    health = json.loads(data)
    assert status == 200 and health["status"] == "ok" and health["store"] == "server"
    assert health["ingestion"]["running"] is True and health["ingestion"]["failures"] == 0


def _metrics(collector: Collector) -> dict[str, float]:
    status, headers, data = collector.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    found = {}
    for line in data.decode().splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            name, labels = series.split("{", 1)
            reason = re.search(r'reason="([^"]+)"', labels)
            found[name + (f"/{reason.group(1)}" if reason else "")] = float(value)
    return found


def test_metrics_count_what_was_accepted_refused_and_landed(collector: Collector) -> None:
    before = _metrics(collector)
    m = _marker()
    assert collector.post([collector.event(m), collector.event(m), collector.event(m)],
                          "application/json")[0] == 202
    assert collector.post(b"{not json")[0] == 400
    assert collector.post(collector.event(m, site="s_nowhere"))[0] == 400
    collector.marked(m, 3)  # landed
    deadline = time.monotonic() + 10
    landed = before["odnos_events_landed_total"] + 3
    while (after := _metrics(collector))["odnos_events_landed_total"] < landed:
        assert time.monotonic() < deadline, after
        time.sleep(0.1)
    assert after["odnos_events_accepted_total"] - before["odnos_events_accepted_total"] == 3
    for reason in ("bad_json", "unknown_site"):
        key = f"odnos_requests_refused_total/{reason}"
        assert after[key] - before.get(key, 0) == 1, reason
    assert after["odnos_spool_pending_bytes"] == after["odnos_spool_oldest_pending_seconds"] == 0
    assert after["odnos_insert_failures"] == after["odnos_dead_letter_rows"] == 0
    ingestion = collector.health()["ingestion"]
    assert ingestion["oldest_pending_seconds"] is None and ingestion["accepted_rows"] >= 3


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "OPTIONS", "HEAD"]),
       path=st.sampled_from(["/e", "/e.gif", "/o/", "/c/", "/u/", "/e.gif?site=", "/healthz"]),
       suffix=st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n #"), max_size=40),
       body=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                      st.builds(json.dumps, st.dictionaries(
                          st.sampled_from(["site", "name", "url", "props", "scroll", "ts", "odn", "visitor"]),
                          st.one_of(st.text(max_size=20), st.integers(), st.none(), st.booleans()),
                          max_size=6)).map(str.encode)),
       content_type=st.sampled_from(["text/plain", "application/json", "", "multipart/form-data", "x/y"]),
       agent=st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n\x00"), max_size=60))
def test_random_requests_never_get_a_5xx(collector: Collector, method: str, path: str, suffix: str,
                                         body: bytes, content_type: str, agent: str) -> None:
    from urllib.parse import quote

    headers = {"Content-Type": content_type, "User-Agent": agent.strip() or "x"}
    status, _, data = collector.request(method, path + quote(suffix, safe="/?=&"),
                                        body if method in ("POST", "PUT") else None, headers)
    assert status < 500, (status, data[:300])


def test_snippet_is_served_with_caching(collector: Collector) -> None:
    status, headers, body = collector.request("GET", "/s.js")
    assert status == 200 and headers["content-type"].startswith("application/javascript")
    assert "max-age" in headers["cache-control"] and body == (
        Path(__file__).resolve().parent.parent / "tracker" / "static" / "s.js").read_bytes()


def test_embedded_serve_lands_events_in_chdb(tmp_path: Path) -> None:
    """The same collector in `odnos serve` on chDB: accepted events are in the store after a stop."""
    env = odnos_env(tmp_path / "data", ODNOS_BATCH_INTERVAL="0.05")
    site_id = run_odnos("site", "add", "Shop", "--domain", "shop.example.com", env=env).stdout.split()[-1]
    with OdnosServer(env) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for n in range(30):
            conn.request("POST", "/e", json.dumps({"site": site_id, "name": "pageview",
                                                    "url": f"https://shop.example.com/{n}"}),
                         {"Content-Type": "text/plain", "User-Agent": CHROME})
            assert conn.getresponse().read() == b'{"ok":true,"accepted":1}'
        conn.close()
    result = run_odnos("sql", "SELECT count(), uniqExact(pathname) FROM events WHERE site_id = %(s)s"
                       .replace("%(s)s", f"'{site_id}'"), env=env)
    assert result.stdout.split() == ["30", "30"], result.stderr


def test_odnos_link_and_pixel_work_against_the_collector(collector: Collector) -> None:
    env = collector.server.env
    target = "https://shop.example.com/products/red-hat?ref=mail"
    made = run_odnos("link", "--email", "Ann@Example.com", "--campaign", "spring", target, env=env)
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip().splitlines()[-1]
    assert url.startswith("http://t.example.test/c/") and len(url) < 200
    status, headers, _ = collector.request("GET", urlsplit(url).path, headers={"User-Agent": IPHONE})
    assert status == 302 and headers["location"].startswith(target)
    pixel = run_odnos("pixel", "--email", "ann@example.com", "--campaign", "spring", env=env).stdout.strip()
    assert collector.request("GET", urlsplit(pixel).path)[0] == 200
    contact = contact_id_for("ann@example.com")
    rows = collector.rows("contact_id = %(c)s AND campaign_id = 'spring'", {"c": contact}, 2)
    assert sorted(r["name"] for r in rows) == ["email_click", "email_open"]
    refused = run_odnos("link", "--email", "a@example.com", "--campaign", "c", "javascript:alert(1)", env=env)
    assert refused.returncode == 2 and "not allowed" in refused.stderr


def test_a_signed_but_unsafe_target_is_never_a_redirect(collector: Collector) -> None:
    """Even a token signed with the real key (a leaked key) cannot redirect to a bad target."""
    from itsdangerous import URLSafeTimedSerializer

    forger = URLSafeTimedSerializer([NEW_KEY], salt="odnos.click.v1")
    for target in ["javascript:alert(1)", "https://shop.example.com/\r\nSet-Cookie: a=b",
                   "//evil.example.org/", "data:text/html,<script>alert(1)</script>"]:
        status, headers, data = collector.request("GET", "/c/" + forger.dumps(["c", "m", "1", target]))
        assert status == 400 and "location" not in headers, target
        assert json.loads(data)["error"]["code"] == "bad_target"
