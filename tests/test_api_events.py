"""Server-side events (``POST /api/v1/events``) through real HTTP on both engines.

A site's backend reports a purchase for a contact by email: the event lands with the contact's
id, its props and ``source = 'api'``, and an event rule on ``event:purchase`` (run by `odnos
serve`'s own scheduler) mails that contact through a real SMTP server, once. Refusals: no key
(401), a key without ``events:write`` (403), malformed events (422 naming the field, nothing
queued), too many (413). Also the harness the other API test modules share: `odnos serve` with
a user, API keys made by `odnos apikey create`, and contacts imported before it starts.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.collector import CHROME
from tests.fixtures.processes import run_odnos
from tests.test_dropin import Served, engine_url, serve
from tests.test_mailer_smtp import SmtpCapture
from tests.test_rules_world import FROM
from tracker.contacts import contact_id_for
from tracker.control.api_keys import create_api_key, parse_scopes
from tracker.control.db import ControlPlane
from tracker.control.users import add_user
from tracker.crm.segments import add_segment

pytestmark = pytest.mark.server
SCOPES = {"all": "events:write,contacts:write,send", "send": "send", "events": "events:write",
          "bounces": "contacts:write", "reports": "reports:read"}
PUBLIC_URL = "http://t.example.test"
PEOPLE = [("ann@example.com", "Ann", "Archer"), ("bob@example.com", "Bob", "Baker"),
          ("cy@example.com", "Cy", "Cole")]


@dataclass
class Api:
    """`odnos serve` with API keys (``keys[label]``, scopes in ``SCOPES``) and imported contacts."""

    served: Served
    keys: dict[str, str]

    def call(self, method: str, path: str, body: object = None, key: str | None = "all",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], object]:
        sent = {"User-Agent": CHROME, **(headers or {})}
        if key is not None:
            sent["Authorization"] = f"Bearer {self.keys[key]}"
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.served.server.port, timeout=30)
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
        is_json = answer_headers.get("content-type", "").startswith("application/json")
        parsed = json.loads(raw) if is_json else raw
        return response.status, answer_headers, parsed

    def sql(self, query: str) -> list[list[str]]:
        """Rows of a read-only query by `odnos sql` (on chDB only once the server has stopped)."""
        done = run_odnos("sql", query, env=self.served.env)
        assert done.returncode == 0, done.stderr
        return [line.split("\t") for line in done.stdout.splitlines()]

    def finish(self, expected: int) -> None:
        """Wait until ``expected`` spooled rows are written; stop the server on chDB (its store is held)."""
        self.served.landed("0", expected)

    @property
    def control(self) -> ControlPlane:
        return ControlPlane(f"sqlite:///{Path(self.served.env['ODNOS_DATA_DIR']) / 'odnos.sqlite3'}")


def prepare(env: dict[str, str], keys: dict[str, str], people=PEOPLE,
            more: Callable[[dict[str, str]], None] | None = None) -> None:
    """A user, one API key per ``SCOPES`` entry, the ``people`` imported; then ``more(env)``."""
    control = ControlPlane(f"sqlite:///{Path(env['ODNOS_DATA_DIR']) / 'odnos.sqlite3'}")
    with control.session() as session:  # `odnos apikey create` has tests of its own; this is quicker
        user = add_user(session, "owner@example.com", "a long test password 1", "admin")
        for label, scopes in SCOPES.items():
            keys[label] = create_api_key(session, user.id, label, parse_scopes(scopes))[1]
    control.dispose()
    csv = Path(env["ODNOS_DATA_DIR"]) / "people.csv"
    csv.write_text("email,first_name,last_name\n" + "".join(f"{e},{f},{last}\n" for e, f, last in people),
                   encoding="utf-8")
    imported = run_odnos("contacts", "import", str(csv), env=env)
    assert imported.returncode == 0, imported.stderr
    if more is not None:
        more(env)


def start_api(engine: str, url: str, data: Path, more: Callable[[dict[str, str]], None] | None = None,
              **extra: str) -> Api:
    """`odnos serve` on ``engine`` (``url``: its ClickHouse server database, '' on chDB), prepared."""
    keys: dict[str, str] = {}
    served = serve(engine, data, url, lambda env: prepare(env, keys, more=more),
                   ODNOS_PUBLIC_URL=PUBLIC_URL, ODNOS_MAIL_FROM=FROM, **extra)
    return Api(served, keys)


@pytest.fixture(params=["chdb", "server"])
def engine(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(engine, ClickHouse URL of a fresh database or '' on chDB), once per engine."""
    return request.param, engine_url(request, "api_")


@pytest.fixture(scope="module")
def api(clickhouse_server, tmp_path_factory) -> Iterator[Api]:
    """One server for refusals, on the ClickHouse server (the checks are the same on both engines)."""
    url = clickhouse_server.url_for("api_bad_" + uuid.uuid4().hex[:8])
    running = start_api("server", url, tmp_path_factory.mktemp("api"))
    yield running
    running.served.server.stop()


def rule_on_purchase(env: dict[str, str]) -> None:
    """A segment of everyone subscribed and an enabled rule answering ``purchase`` with a thank-you."""
    control = ControlPlane(f"sqlite:///{Path(env['ODNOS_DATA_DIR']) / 'odnos.sqlite3'}")
    with control.session() as session:
        add_segment(session, "people", {"all": [{"type": "consent", "status": "subscribed"}]})
    control.dispose()
    html = Path(env["ODNOS_DATA_DIR"]) / "thanks.html"
    html.write_text("<p>Thank you for order {{ contact.first_name }}!</p>", encoding="utf-8")
    for args in (("templates", "add", "thanks", "--subject", "Thank you", "--html", str(html)),
                 ("rules", "add", "thanks", "--segment", "people", "--template", "thanks", "--trigger",
                  "event:purchase"),
                 ("rules", "enable", "thanks")):
        done = run_odnos(*args, env=env)
        assert done.returncode == 0, done.stderr


@pytest.fixture
def smtp() -> Iterator[SmtpCapture]:
    with SmtpCapture() as capture:
        yield capture


@pytest.fixture
def api_with_rule(engine: tuple[str, str], tmp_path: Path, smtp: SmtpCapture) -> Iterator[Api]:
    api = start_api(*engine, tmp_path / "data", rule_on_purchase, ODNOS_SMTP_URL=smtp.url,
                    ODNOS_RULES_INTERVAL="1")
    yield api
    api.served.server.stop()


def test_a_server_side_event_lands_for_its_contact_and_triggers_an_event_rule(
        api_with_rule: Api, smtp: SmtpCapture) -> None:
    api = api_with_rule
    sent = time.time()
    status, _, answer = api.call("POST", "/api/v1/events", {
        "name": "purchase", "email": "Ann@Example.com", "props": {"order": "A-1", "total": "15.99"},
        "site": api.served.sites["shop.example.com"], "url": "https://shop.example.com/checkout"})
    assert status == 202, answer
    ann = contact_id_for("ann@example.com")
    assert answer["accepted"] == 1 and answer["events"][0]["contact_id"] == ann
    # A batch: an event of another name for Bob (no rule answers it), a time of its own, an id of the
    # client's (a retry is then the same event).
    plus_two = dt.timezone(dt.timedelta(hours=2))
    an_hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).astimezone(plus_two).isoformat()
    status, _, batch = api.call("POST", "/api/v1/events", {"events": [
        {"name": "signup", "contact_id": contact_id_for("bob@example.com"), "ts": an_hour_ago,
         "id": "0f8fad5b-d9cb-469f-a165-70867728950e"}]})
    assert status == 202 and batch["events"][0]["id"] == "0f8fad5b-d9cb-469f-a165-70867728950e", batch

    deadline = time.monotonic() + 60
    while not smtp.messages and time.monotonic() < deadline:
        time.sleep(0.1)
    assert smtp.messages, "no answer within a minute:\n" + "".join(api.served.server.output[-20:])
    time.sleep(2.5)  # two more rounds of the scheduler: no second message
    [message] = smtp.messages
    assert message.rcpt_tos == ["ann@example.com"]
    assert message.message["Subject"] == "Thank you"

    api.finish(expected=3)  # two events and the rule's email_sent
    rows = api.sql("SELECT name, contact_id, source, site_id, url, toString(event_id), toUInt32(ts), "
                   "arrayStringConcat(arrayMap((k, v) -> concat(k, '=', v), props.key, props.value), '&') "
                   "FROM events WHERE source = 'api' ORDER BY name")
    assert rows == [
        ["purchase", ann, "api", api.served.sites["shop.example.com"], "https://shop.example.com/checkout",
         answer["events"][0]["id"], rows[0][6], "order=A-1&total=15.99"],
        ["signup", contact_id_for("bob@example.com"), "api", "", "", "0f8fad5b-d9cb-469f-a165-70867728950e",
         str(int(dt.datetime.fromisoformat(an_hour_ago).timestamp())), ""],
    ]
    assert abs(int(rows[0][6]) - sent) <= 2  # no ts given: the time the request arrived


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    ({"email": "ann@example.com"}, 422, "missing_field", "name"),
    ({"name": "purchase"}, 422, "missing_field", "email"),
    ({"name": "purchase", "email": "ann@example.com", "contact_id": "0123456789abcdef"}, 422, "missing_field",
     "email"),
    ({"name": "purchase", "email": "not an address"}, 422, "bad_email", "email"),
    ({"name": "purchase", "contact_id": "ann"}, 422, "invalid", "contact_id"),
    ({"name": "email_open", "email": "ann@example.com"}, 422, "reserved_name", "name"),
    ({"name": "pageview", "email": "ann@example.com"}, 422, "reserved_name", "name"),
    ({"name": "", "email": "ann@example.com"}, 422, "invalid", "name"),
    ({"name": "purchase", "email": "ann@example.com", "colour": "red"}, 422, "unknown_field", "colour"),
    ({"name": "purchase", "email": "ann@example.com", "props": {"total": 15}}, 422, "invalid", "props"),
    ({"name": "purchase", "email": "ann@example.com", "props": {f"k{i}": "v" for i in range(31)}}, 422,
     "invalid", "props"),
    ({"name": "purchase", "email": "ann@example.com", "ts": "yesterday"}, 422, "invalid", "ts"),
    ({"name": "purchase", "email": "ann@example.com", "ts": "2026-01-05T10:00:00"}, 422, "invalid", "ts"),
    ({"name": "purchase", "email": "ann@example.com", "ts": 1.0}, 422, "invalid", "ts"),
    ({"name": "purchase", "email": "ann@example.com", "id": "x"}, 422, "invalid", "id"),
    ({"name": "purchase", "email": "ann@example.com", "site": "nosuchsite"}, 422, "unknown_site", "site"),
    ([{"name": "purchase", "email": "ann@example.com"}, {"name": "purchase", "email": "x"}], 422, "bad_email",
     "events[1].email"),
    ([], 422, "invalid", "events"),
    ([{"name": "purchase", "email": "ann@example.com"}] * 1001, 413, "too_many_events", None),
    ("purchase", 422, "invalid", ""),
])
def test_malformed_events_are_refused_naming_the_field(api: Api, body: object, status: int, code: str,
                                                       field: str | None) -> None:
    answer, _, error = api.call("POST", "/api/v1/events", body)
    assert answer == status, error
    assert error["error"]["code"] == code and error["error"]["message"]
    assert error["error"].get("field") == field


def test_keys_and_scopes(api: Api) -> None:
    event = {"name": "purchase", "email": "ann@example.com"}
    status, headers, error = api.call("POST", "/api/v1/events", event, key=None)
    assert status == 401 and error["error"]["code"] == "missing_key"
    status, _, error = api.call("POST", "/api/v1/events", event, key="send")
    assert status == 403 and error["error"]["code"] == "missing_scope"
    status, _, error = api.call("POST", "/api/v1/events", b"name=purchase",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    status, _, error = api.call("POST", "/api/v1/events", b"{", headers={"Content-Type": "application/json"})
    assert status == 400 and error["error"]["code"] == "bad_json"
    time.sleep(0.5)  # had any refusal above been queued, it would be written by now
    assert api.served.inserted() == 0
    status, _, answer = api.call("POST", "/api/v1/events", event, key="events")
    assert status == 202 and answer["accepted"] == 1
