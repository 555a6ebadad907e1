"""The contacts pages through the real dashboard server: search, the profile's timeline, consent, erasure.

One `odnos dashboard` per module, on the demo (loaded by `odnos demo` into a fresh database of the
real ClickHouse server), with a viewer, a marketer and an admin. Callbacks are called over HTTP as
the browser calls them (``WebClient``); what they show is compared with what tracker.crm and the
query layer return for the same data, read by this process from the same databases, and with what
plain SQL over the events says (the machines in a contact's timeline).

``crm_world`` and ``Dashboard`` are shared with tests/test_dashboard_segments.py and
tests/test_dashboard_rules.py, which import them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tests.fixtures.web import WebClient, component
from tracker.contacts import contact_id_for
from tracker.crm.consent import why_not_mailable
from tracker.crm.contacts import ContactUpdate, profile, upsert_contacts
from tracker.queries.contacts.contact_profile import contact_profile
from tracker.queries.contacts.search_contacts import search_contacts
from tracker.runtime import Runtime
from tracker.settings import load_settings

pytestmark = pytest.mark.server

PASSWORD = "correct horse battery"
ROLES = ("viewer", "marketer", "admin")
GRID = {"type": "table", "name": "contacts", "dim": ""}
HOSTILE = ["'", "\"", "%", "_", "\\", "' OR '1'='1", "'); DROP TABLE contacts; --", "%(text)s", "%%",
           "plan:' OR 1=1 --", "<script>alert(1)</script>", "\x00"]


@dataclass
class World:
    server: OdnosServer
    runtime: Runtime  # this process's view of the same ClickHouse database and control database
    vip: list[str]  # addresses tagged vip

    def client(self, role: str) -> Dashboard:
        client = Dashboard(self.server.port)
        client.log_in(f"{role}@example.com", PASSWORD)
        return client


class Dashboard(WebClient):
    """``WebClient`` that finds a callback by what it reads or writes, in the app's own dependency list."""

    _deps: list[dict[str, Any]] | None = None

    def deps(self) -> list[dict[str, Any]]:
        if self._deps is None:
            answer = self.request("GET", "/_dash-dependencies")
            assert answer.status == 200, answer.body
            self._deps = json.loads(answer.body)
        return self._deps

    def output_of(self, input_id: Any, prop: str, output: str = "") -> str:
        """The output string of the callback that takes ``input_id.prop`` as its first input (and whose
        output names ``output``, when several do)."""
        wanted = _key(input_id)
        found = [d["output"] for d in self.deps() if d["inputs"] and _key(d["inputs"][0]["id"]) == wanted
                 and d["inputs"][0]["property"] == prop and output in d["output"]]
        assert len(found) == 1, (input_id, prop, found)
        return found[0]

    def call(self, input_id: Any, prop: str, inputs: list[Any], state: list[Any] | None = None,
             changed: str | None = None, output: str = "") -> Any:
        """Run that callback; the parsed answer (``response``) or the HTTP status when refused."""
        answer = self.callback(self.output_of(input_id, prop, output), inputs, state,
                               changed=[changed or f"{_key(input_id)}.{prop}"])
        if answer.status != 200:
            return answer.status
        return json.loads(answer.body)["response"]

    def page(self, path: str, search: str = "") -> Any:
        """The page the router draws for a URL (its component tree)."""
        answer = self.call("url", "pathname", [{"id": "url", "property": "pathname", "value": path},
                                                 {"id": "url", "property": "search", "value": search}])
        assert not isinstance(answer, int), answer
        return answer["page"]["children"]


def _key(ident: Any) -> str:
    if isinstance(ident, str) and ident.startswith("{"):
        ident = json.loads(ident)
    return json.dumps(ident, sort_keys=True, separators=(",", ":")) if isinstance(ident, dict) else ident


def value(item_id: Any, prop: str, given: Any) -> dict[str, Any]:
    return {"id": item_id, "property": prop, "value": given}


def everything(tree: Any, predicate) -> list[dict[str, Any]]:
    """Every component's props in ``tree`` for which ``predicate(props)`` holds, in order."""
    found = []
    if isinstance(tree, dict):
        props = tree.get("props")
        if isinstance(props, dict) and predicate(props):
            found.append(props)
        for child in tree.values():
            found += everything(child, predicate)
    elif isinstance(tree, list):
        for child in tree:
            found += everything(child, predicate)
    return found


def text_of(tree: Any) -> str:
    """The text a component tree shows."""
    if isinstance(tree, str | int | float):
        return str(tree)
    if isinstance(tree, list):
        return " ".join(text_of(t) for t in tree)
    if isinstance(tree, dict):
        props = tree.get("props", tree)
        return " ".join(text_of(props[k]) for k in ("children", "label", "title") if props.get(k) is not None)
    return ""


def grid_rows(tree: Any, grid: dict[str, str]) -> list[dict[str, Any]]:
    props = component(tree, grid)
    assert props is not None, f"no grid {grid}"
    return props["rowData"]


@pytest.fixture(scope="module")
def crm_world(clickhouse_server, tmp_path_factory) -> Iterator[World]:
    """The demo on a fresh ClickHouse database, users of every role, 12 contacts tagged vip, and the
    dashboard serving it."""
    data = tmp_path_factory.mktemp("crm-dashboard")
    database = "crmdash_" + uuid.uuid4().hex[:8]
    env = odnos_env(data, ODNOS_LOG_LEVEL="WARNING", ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for(database))
    loaded = run_odnos("demo", "--visitors", "400", env=env, timeout=300)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    for role in ROLES:
        added = run_odnos("user", "add", "--email", f"{role}@example.com", "--password", PASSWORD, "--role",
                          role,
                          env=env)
        assert added.returncode == 0, added.stdout + added.stderr
    runtime = Runtime.open(load_settings(environ=env))
    vip = sorted(c.email for c in search_contacts(runtime.store, "", limit=200).contacts)[:12]
    upsert_contacts(runtime.store, runtime.control, runtime.keys,
                    [ContactUpdate(e, tags=("vip",)) for e in vip])
    server = OdnosServer(env, command="dashboard").start()
    try:
        yield World(server, runtime, vip)
    finally:
        server.stop()
        runtime.store.command(f"DROP DATABASE IF EXISTS {database}")
        runtime.close()


def _search(client: Dashboard, text: str = "", tag: str | None = None, consent: str | None = None,
            page: int = 1) -> tuple[list[str], str]:
    answer = client.call("contacts-search", "value", [
        value("contacts-search", "value", text), value("contacts-tag", "value", tag),
        value("contacts-consent", "value", consent), value("contacts-page", "value", page)],
        changed="contacts-page.value" if page > 1 else None)
    assert not isinstance(answer, int), answer
    rows = component(answer["contacts-results"]["children"], GRID)
    emails = [row["email"] for row in rows["rowData"]] if rows else []
    return emails, answer["contacts-count"]["children"]


@pytest.mark.parametrize(("text", "tag", "consent"), [
    ("smith", None, None), ("PETROVIC", None, None), ("ana.", None, None), ("plan:pro", None, None),
    ("city:berlin", None, None), ("", "vip", None), ("", None, "unsubscribed"), ("ana", "vip", None),
    ("example.com", None, "subscribed"),
])
def test_the_search_finds_what_the_crm_finds(crm_world: World, text: str, tag: str | None,
                                             consent: str | None) -> None:
    client = crm_world.client("viewer")
    emails, count = _search(client, text, tag, consent)
    expected = search_contacts(crm_world.runtime.store, text, tag=tag or "", consent=consent or "", limit=50)
    assert expected.total > 0, "the case finds nobody: it would prove nothing"
    assert emails == [c.email for c in expected.contacts]
    assert count.startswith(f"{expected.total:,} contact")
    if tag == "vip" and not text:
        assert sorted(emails) == crm_world.vip


def test_pages_of_results_and_the_url_give_the_same_contacts(crm_world: World) -> None:
    client = crm_world.client("viewer")
    first, count = _search(client, "example.com")
    second, _ = _search(client, "example.com", page=2)
    assert count == "600 contacts match" and len(first) == len(second) == 50
    everyone = search_contacts(crm_world.runtime.store, "example.com", limit=100).contacts
    assert first + second == [c.email for c in everyone]
    page = client.page("/contacts", "?q=example.com&page=2")
    assert [r["email"] for r in grid_rows(page, GRID)] == second
    assert component(page, "kpi-contacts_total")["children"] == "600"


def test_hostile_search_text_finds_nothing_and_breaks_nothing(crm_world: World) -> None:
    client = crm_world.client("viewer")
    for text in HOSTILE:
        emails, count = _search(client, text)
        assert (emails, count) == ([], "0 contacts match"), text
        page = client.page("/contacts", f"?q={quote(text, safe='')}")
        assert component(page, "contacts-none") is not None, text
    emails, count = _search(client, "")
    assert count == "600 contacts" and len(emails) == 50  # the table is whole


def _quote(text: str) -> str:
    return quote(text, safe="")


def test_a_click_on_a_row_opens_the_profile_and_keeps_the_way_back(crm_world: World) -> None:
    client = crm_world.client("viewer")
    email = crm_world.vip[0]
    answer = client.call(GRID, "cellClicked",
                         [value(GRID, "cellClicked", {"rowId": email, "colId": "email"})],
                         state=[value("contacts-search", "value", "smith"),
                                value("contacts-tag", "value", "vip"),
                                value("contacts-consent", "value", None), value("contacts-page", "value", 1)])
    href = answer["url"]["href"]
    assert href.startswith("/contacts?email=") and "back=q%3Dsmith%26tag%3Dvip" in href
    page = client.page("/contacts", "?" + href.split("?", 1)[1])
    assert component(page, "contact-address")["children"] == email
    assert component(page, "contact-back")["href"] == "/contacts?q=smith&tag=vip"


def _machine_contact(runtime: Runtime) -> str:
    """A demo contact with machine opens or scanner clicks and visits after the hand-off (plain SQL)."""
    rows = runtime.store.query("""
        SELECT contact_id FROM events
        WHERE contact_id != '' GROUP BY contact_id
        HAVING countIf(is_machine = 1) > 0 AND countIf(name = 'pageview') > 0 AND countIf(name = 'email_click'
               AND is_machine = 0) > 0
        ORDER BY contact_id LIMIT 1""").rows
    assert rows, "the demo has no contact with machines and visits"
    return contact_profile(runtime.store, rows[0][0]).email


def test_the_profile_timeline_shows_the_contacts_events_with_machines_marked(crm_world: World) -> None:
    runtime = crm_world.runtime
    email = _machine_contact(runtime)
    page = crm_world.client("viewer").page("/contacts", f"?email={_quote(email)}")
    shown = everything(page, lambda p: str(p.get("id", "")).startswith("contact-event-"))
    found = profile(runtime.store, runtime.control, email)
    expected = list(reversed(found.timeline.entries))  # newest first
    assert [(p["data-name"], p["data-machine"]) for p in shown] == [
        (e.name, "1" if (e.is_machine or e.is_bot) else "0") for e in expected]
    assert [p["data-ts"] for p in shown] == [e.ts.isoformat() for e in expected]
    # Independently of the timeline query: the contact's own email events, machines among them.
    cid = contact_id_for(email)
    own = runtime.store.query("SELECT name, is_machine FROM events WHERE contact_id = %(c)s AND name LIKE "
                              "'email_%%'", {"c": cid}).rows
    machines = sum(1 for _, machine in own if machine)
    assert machines > 0
    email_shown = [p for p in shown if p["data-name"].startswith("email_")]
    assert sum(1 for p in email_shown if p["data-machine"] == "1") == machines
    assert len(email_shown) == len(own)
    assert any(p["data-name"] == "pageview" for p in shown), "no visit after the hand-off"
    marked = text_of([p for p in shown if p["data-machine"] == "1"])
    assert "machine" in marked or "scanner" in marked
    assert component(page, "contact-visitors") is not None
    total = component(page, "contact-timeline-total")["children"]
    assert total.startswith(f"{found.timeline.total:,} events")


def test_a_marketer_unsubscribes_a_contact_and_a_viewer_may_not(crm_world: World) -> None:
    runtime = crm_world.runtime
    email = crm_world.vip[1]
    inputs = [value("contact-unsubscribe-confirm", "n_clicks", 1)]
    state = [value("contact-email", "data", email), value("url", "search", f"?email={_quote(email)}")]
    assert crm_world.client("viewer").call("contact-unsubscribe-confirm", "n_clicks", inputs, state) == 403
    assert profile(runtime.store, runtime.control, email).contact.status == "subscribed"
    marketer = crm_world.client("marketer")
    answer = marketer.call("contact-unsubscribe-confirm", "n_clicks", inputs, state)
    assert answer["url"]["search"] == f"?email={_quote(email)}&done=unsubscribed"
    after = profile(runtime.store, runtime.control, email)
    assert after.contact.status == "unsubscribed"
    with runtime.control.sessions() as session:
        assert why_not_mailable(session, runtime.keys, after.contact) == "unsubscribed"
    page = marketer.page("/contacts", f"?email={_quote(email)}&done=unsubscribed")
    assert component(page, "contact-consent")["children"] == "unsubscribed"
    assert "dashboard" in text_of(component(page, "contact-consent-history"))
    assert component(page, "contact-unsubscribe-open")["disabled"] is True


def test_erasing_needs_an_admin_and_the_address_typed(crm_world: World) -> None:
    runtime = crm_world.runtime
    email = crm_world.vip[2]
    state = [value("contact-erase-typed", "value", email), value("contact-email", "data", email)]
    inputs = [value("contact-erase-confirm", "n_clicks", 1)]
    assert crm_world.client("marketer").call("contact-erase-confirm", "n_clicks", inputs, state) == 403
    admin = crm_world.client("admin")
    wrong = admin.call("contact-erase-confirm", "n_clicks", inputs,
                       [value("contact-erase-typed", "value", "someone@else.org"), state[1]])
    assert component(wrong["contact-erase-result"]["children"], "contact-erase-mismatch") is not None
    assert contact_profile(runtime.store, contact_id_for(email)) is not None
    done = admin.call("contact-erase-confirm", "n_clicks", inputs, state)
    assert component(done["contact-erase-result"]["children"], "contact-erased") is not None
    assert contact_profile(runtime.store, contact_id_for(email)) is None
    assert email not in _search(admin, email)[0]
    page = admin.page("/contacts", f"?email={_quote(email)}")
    assert "no contact" in component(page, "page-problem")["children"]
    assert admin.page("/contacts", "?erased=1") and component(admin.page("/contacts", "?erased=1"),
                                                              "contacts-erased") is not None


def test_a_viewer_sees_no_consent_or_erase_buttons(crm_world: World) -> None:
    page = crm_world.client("viewer").page("/contacts", f"?email={_quote(crm_world.vip[3])}")
    assert component(page, "contact-unsubscribe-open") is None
    assert component(page, "contact-erase-open") is None
    marketer = crm_world.client("marketer").page("/contacts", f"?email={_quote(crm_world.vip[3])}")
    assert component(marketer, "contact-unsubscribe-open") is not None
    assert component(marketer, "contact-erase-open") is None


@pytest.mark.parametrize(("search", "message"), [
    ("?email=not-an-address", "not a valid email address"),
    ("?email=nobody%40nowhere.example", "no contact nobody@nowhere.example"),
    ("?email=ann%40example.com&limit=0", "limit '0'"),
    ("?page=abc", "not a page number"),
    ("?consent=maybe", "unknown consent"),
    ("?q=x&sort=name", "unknown parameter 'sort'"),
])
def test_a_bad_url_is_a_message_in_the_page(crm_world: World, search: str, message: str) -> None:
    page = crm_world.client("viewer").page("/contacts", search)
    assert message in component(page, "page-problem")["children"]

