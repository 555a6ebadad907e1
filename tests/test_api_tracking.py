"""Tracking for external senders (``/api/v1/tracking/*``, scope ``send``) through real HTTP, both engines.

- ``links``: tracked links and pixels in bulk are tokens the collector itself reads back (contact,
  message, link id, target, send time), and following them records the click and the open;
- ``render``: the message returned for a contact is exactly what the mailer's ``Composer`` makes
  for the same contact, template and send time (tokens signed in the same second compared whole);
  a contact who may not be mailed gets 409, an unknown one 404, a broken template 422;
- ``sent``: ``email_sent`` events land for the campaign, so reports have their denominators;
- and the whole round a sender with only API keys makes: import contacts, get a tracked message,
  report the sends and a bounce, then read the campaign's results (people who opened and clicked,
  the bounce) from ``/api/v1/reports``.
"""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fixtures.collector import CHROME, NEW_KEY
from tests.test_api_events import PUBLIC_URL, Api, start_api
from tests.test_dropin import engine_url
from tests.test_rules_world import FROM
from tracker.contacts import contact_id_for
from tracker.crm.mailer.compose import Composer
from tracker.crm.mailer.links import link_id_for
from tracker.crm.model import Contact
from tracker.crm.templates import check_template
from tracker.tokens import TokenCodec

pytestmark = pytest.mark.server
ANN, BOB, CY = "ann@example.com", "bob@example.com", "cy@example.com"
SHOP = "https://shop.example.com"
HTML = ('<html><body><h1>Hello {{ contact.first_name }}</h1>'
        f'<p><a href="{SHOP}/spring?utm_source=news">Spring sale</a> and <a href="{SHOP}/">home</a>'
        ' <a href="mailto:help@shop.example.com">help</a></p></body></html>')


@pytest.fixture(params=["chdb", "server"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """A server of its own, for a test that reads what landed (on chDB that stops the server)."""
    running = start_api(request.param, engine_url(request, "api_tracking_"), tmp_path / "data")
    yield running
    running.served.server.stop()


@pytest.fixture(scope="module", params=["chdb", "server"])
def shared(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Api]:
    """One server per engine for the tests that only read answers."""
    running = start_api(request.param, engine_url(request, "api_tracking_"), tmp_path_factory.mktemp("api"))
    yield running
    running.served.server.stop()


def get(api: Api, url: str) -> tuple[int, dict[str, str]]:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    conn = http.client.HTTPConnection("127.0.0.1", api.served.server.port, timeout=15)
    conn.request("GET", parts.path, headers={"User-Agent": CHROME})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}


def test_links_and_pixels_in_bulk_are_read_back_by_the_collector(api: Api) -> None:
    sent_at = int(time.time()) - 3600
    status, _, answer = api.call("POST", "/api/v1/tracking/links", {
        "campaign": "spring-2026", "sent_at": sent_at, "contacts": [
            {"email": ANN, "urls": [f"{SHOP}/spring", {"url": f"{SHOP}/", "link_id": "home"}]},
            {"contact_id": contact_id_for(BOB), "message": "b2", "urls": [f"{SHOP}/spring"], "pixel": False},
            {"email": CY, "urls": []},
        ]}, key="send")
    assert status == 200, answer
    ann, bob, cy = answer["contacts"]
    assert (ann["contact_id"], ann["message_id"]) == (contact_id_for(ANN), "spring-2026")
    assert (bob["message_id"], "pixel_url" in bob, cy["links"]) == ("spring-2026.b2", False, [])
    codec = TokenCodec([NEW_KEY])
    read = [codec.read_click(link["tracked_url"].rsplit("/c/", 1)[1]) for link in ann["links"] + bob["links"]]
    assert [(t.contact_id, t.message_id, t.link_id, t.target, t.sent_at) for t in read] == [
        (contact_id_for(ANN), "spring-2026", link_id_for(f"{SHOP}/spring"), f"{SHOP}/spring", sent_at),
        (contact_id_for(ANN), "spring-2026", "home", f"{SHOP}/", sent_at),
        (contact_id_for(BOB), "spring-2026.b2", link_id_for(f"{SHOP}/spring"), f"{SHOP}/spring", sent_at),
    ]
    opened = codec.read_open(cy["pixel_url"].rsplit("/o/", 1)[1])
    assert (opened.contact_id, opened.message_id, opened.sent_at) == (contact_id_for(CY), "spring-2026",
                                                                      sent_at)

    status, headers = get(api, ann["links"][1]["tracked_url"])
    assert status == 302 and headers["location"].startswith(f"{SHOP}/?_odn=")  # a registered site: hand-off
    status, headers = get(api, cy["pixel_url"])
    assert status == 200 and headers["content-type"] == "image/gif"

    api.finish(expected=2)
    rows = api.sql("SELECT name, contact_id, campaign_id, message_id, link_id FROM events "
                   "WHERE name IN ('email_click', 'email_open') ORDER BY name")
    assert rows == [["email_click", contact_id_for(ANN), "spring-2026", "spring-2026", "home"],
                    ["email_open", contact_id_for(CY), "spring-2026", "spring-2026", ""]]


def test_a_rendered_message_is_what_the_mailer_composes(shared: Api) -> None:
    api = shared
    body = {"email": ANN, "campaign": "spring-2026", "message": "m1", "html": HTML, "list": "news",
            "subject": "Hi {{ contact.first_name }}"}
    before = int(time.time())
    status, _, answer = api.call("POST", "/api/v1/tracking/render", body, key="send")
    after = int(time.time())
    assert status == 200, answer

    template = check_template(body["subject"], HTML, "")
    contact = Contact(contact_id=contact_id_for(ANN), email=ANN, first_name="Ann", last_name="Archer")
    expected = []
    for second in range(before, after + 1):  # tokens carry the second they were signed in
        codec = TokenCodec([NEW_KEY], clock=lambda second=second: float(second))
        expected.append(Composer(codec, PUBLIC_URL, FROM, None, contact_ids=[contact.contact_id],
                                 list_id="news").compose(template, contact, "spring-2026.m1", sent_at=None))
    mailer = next((m for m in expected if m.html == answer["html"]), None)
    assert mailer is not None, answer["html"]
    assert (answer["subject"], answer["text"], answer["unsubscribe_url"]) == (
        "Hi Ann", mailer.text, mailer.unsubscribe_url)
    assert answer["links"] == [{"link_id": link.link_id, "url": link.target, "tracked_url": link.url}
                               for link in mailer.links]
    assert [link["url"] for link in answer["links"]] == [f"{SHOP}/spring?utm_source=news", f"{SHOP}/"]
    assert answer["headers"] == {"List-Unsubscribe": mailer.email["List-Unsubscribe"],
                                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert 'aria-hidden="true"' in answer["html"] and f"{PUBLIC_URL}/o/" in answer["html"]  # trap, pixel
    assert "mailto:help@shop.example.com" in answer["html"]

    status, _, error = api.call("POST", "/api/v1/tracking/render", {**body, "email": "nobody@example.com"},
                                key="send")
    assert status == 404 and error["error"]["code"] == "unknown_contact"
    status, _, error = api.call("POST", "/api/v1/tracking/render", {**body, "html": "{{ contact.nope( }}"},
                                key="send")
    assert status == 422 and error["error"]["field"] == "html"
    status, _, error = api.call("POST", "/api/v1/tracking/render", body, key="events")
    assert status == 403


def test_no_message_for_a_contact_who_may_not_be_mailed(shared: Api) -> None:
    api = shared
    status, _, answer = api.call("POST", "/api/v1/bounces", {"email": BOB, "type": "bounce"}, key="bounces")
    assert status == 200, answer
    status, _, error = api.call("POST", "/api/v1/tracking/render", {
        "email": BOB, "campaign": "spring-2026", "subject": "Hi", "html": HTML}, key="send")
    assert status == 409 and error["error"]["code"] == "not_mailable"
    assert "bounced" in error["error"]["message"]


def test_sends_made_elsewhere_are_recorded(api: Api) -> None:
    sent_at = int(time.time()) - 600
    status, _, answer = api.call("POST", "/api/v1/tracking/sent", {
        "campaign": "spring-2026", "sent_at": sent_at, "site": api.served.sites["shop.example.com"],
        "messages": [{"email": ANN}, {"contact_id": contact_id_for(BOB), "message": "b2"},
                     {"email": CY, "sent_at": sent_at + 5}]}, key="send")
    assert (status, answer) == (202, {"recorded": 3})
    for bad, field in (({"campaign": "spring 2026", "messages": [{"email": ANN}]}, "campaign"),
                       ({"campaign": "c", "messages": []}, "messages"),
                       ({"campaign": "c", "messages": [{"email": ANN, "sent_at": time.time() + 3600}]},
                        "messages[0].sent_at"),
                       ({"campaign": "c", "messages": [{"email": ANN, "extra": 1}]}, "messages[0].extra")):
        status, _, error = api.call("POST", "/api/v1/tracking/sent", bad, key="send")
        assert status == 422 and error["error"]["field"] == field, error

    api.finish(expected=3)
    rows = api.sql("SELECT contact_id, message_id, campaign_id, site_id, toUInt32(ts), source FROM events "
                   "WHERE name = 'email_sent' ORDER BY contact_id")
    site = api.served.sites["shop.example.com"]
    assert sorted(rows) == sorted([
        [contact_id_for(ANN), "spring-2026", "spring-2026", site, str(sent_at), "api"],
        [contact_id_for(BOB), "spring-2026.b2", "spring-2026", site, str(sent_at), "api"],
        [contact_id_for(CY), "spring-2026", "spring-2026", site, str(sent_at + 5), "api"],
    ])


def test_bad_link_requests_name_the_field(shared: Api) -> None:
    api = shared
    cases = [
        ({"contacts": [{"email": ANN}]}, 422, "campaign"),
        ({"campaign": "a.b", "contacts": [{"email": ANN}]}, 422, "campaign"),
        ({"campaign": "c", "contacts": [{"email": ANN, "urls": ["javascript:alert(1)"]}]}, 422,
         "contacts[0].urls[0]"),
        ({"campaign": "c", "contacts": [{"email": ANN, "urls": [5]}]}, 422, "contacts[0].urls[0]"),
        ({"campaign": "c", "contacts": [{"email": ANN, "urls": [{"url": f"{SHOP}/", "link_id": "a b"}]}]},
         422, "contacts[0].urls[0].link_id"),
        ({"campaign": "c", "sent_at": "2020-01-01T00:00:00Z", "contacts": [{"email": ANN}]}, 422, "sent_at"),
        ({"campaign": "c", "contacts": [{"email": ANN}] * 1001}, 413, None),
    ]
    for body, status, field in cases:
        answer, _, error = api.call("POST", "/api/v1/tracking/links", body, key="send")
        assert answer == status and error["error"].get("field") == field, (body, error)


def test_a_sender_with_only_api_keys_gets_the_campaigns_results(api: Api) -> None:
    people = [{"email": f"{name}@sender.example.org", "first_name": name.title()}
              for name in ("dan", "eva", "flo")]
    status, _, imported = api.call("POST", "/api/v1/contacts/batch", {"contacts": people}, key="bounces")
    assert status == 200, imported
    messages = {}
    for person in people:
        status, _, message = api.call("POST", "/api/v1/tracking/render", {
            "email": person["email"], "campaign": "autumn", "subject": "Autumn", "html": HTML}, key="send")
        assert status == 200, message
        messages[person["email"]] = message
    status, _, _ = api.call("POST", "/api/v1/tracking/sent", {
        "campaign": "autumn", "messages": [{"email": p["email"]} for p in people]}, key="send")
    assert status == 202
    dan, eva = messages["dan@sender.example.org"], messages["eva@sender.example.org"]
    assert get(api, dan["links"][0]["tracked_url"])[0] == 302  # Dan clicks (a person: a browser's agent)
    pixel = re.search(r'<img src="([^"]+)"', eva["html"]).group(1)
    assert get(api, pixel)[0] == 200  # Eva opens
    status, _, _ = api.call("POST", "/api/v1/bounces", {"email": "flo@sender.example.org", "type": "bounce",
                                                        "message": "autumn"}, key="bounces")
    assert status == 200

    deadline = time.monotonic() + 30
    while api.served.inserted() < 6 and time.monotonic() < deadline:  # 3 sent, a click, an open, a bounce
        time.sleep(0.1)
    status, _, report = api.call("GET", "/api/v1/reports/campaigns/autumn", key="reports")
    assert status == 200, report
    stats = report["stats"]
    assert report["kind"] == "external"
    wanted = {"sent": 3, "recipients": 3, "bounced": 1, "opened": 2, "opens": 1, "clicked": 1, "clicks": 1}
    assert {name: stats[name] for name in wanted} == wanted
