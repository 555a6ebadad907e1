"""Contacts on both engines: upsert merges, consent never moves back, identified visitors, profiles.

Each test runs on chDB and on the ClickHouse server (the ``store`` fixture), with a real SQLite
control database, and reads back through the same queries the CLI and the API use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.processes import wait_until
from tracker.contacts import contact_id_for
from tracker.control.consent import suppress
from tracker.control.db import ControlPlane
from tracker.crm.consent import why_not_mailable
from tracker.crm.contacts import ContactUpdate, Outcome, profile, set_status, upsert_contacts
from tracker.crm.erase import erase_contact
from tracker.enrich.email_machines import REVISION_EVENT
from tracker.events import event_row
from tracker.queries.contacts.contact_profile import contact_profile
from tracker.queries.contacts.current_contacts import current_contacts
from tracker.store.migrate import migrate

KEYS = ("test-key-" + "k" * 24,)


@dataclass
class Crm:
    store: object
    control: ControlPlane

    def upsert(self, *updates: ContactUpdate, source: str = "import"):
        return upsert_contacts(self.store, self.control, KEYS, list(updates), source=source)

    def contact(self, email: str):
        return contact_profile(self.store, contact_id_for(email))


@pytest.fixture
def crm(store, tmp_path: Path) -> Crm:
    migrate(store)
    control = ControlPlane(f"sqlite:///{tmp_path / 'control.db'}")
    control.migrate()
    yield Crm(store, control)
    control.dispose()


def test_upsert_merges_onto_the_stored_row(crm: Crm) -> None:
    [first] = crm.upsert(ContactUpdate("  Ann@Example.COM ", first_name="Ann", last_name="Lee",
                                       attrs={"plan": "pro", "city": "Paris"}, tags=("news",)))
    assert (first.outcome, first.contact_id) == (Outcome.created, contact_id_for("ann@example.com"))
    before = crm.contact("ann@example.com")
    # A later import gives only some fields: the others stay, attributes merge, tags add up.
    [second] = crm.upsert(ContactUpdate("ann@example.com", last_name="Lee-Smith", attrs={"city": "Berlin"},
                                        tags=("vip", "news")))
    assert second.outcome is Outcome.updated
    after = crm.contact("ann@example.com")
    assert (after.email, after.first_name, after.last_name) == ("ann@example.com", "Ann", "Lee-Smith")
    assert after.attrs == {"plan": "pro", "city": "Berlin"}
    assert after.tags == ("news", "vip")
    assert after.created_at == before.created_at and after.version > before.version >= 2**32
    # The same again changes nothing and writes nothing.
    [third] = crm.upsert(ContactUpdate("ann@example.com", last_name="Lee-Smith"))
    assert third.outcome is Outcome.unchanged
    assert crm.store.query("SELECT count() FROM contacts").scalar() == 2  # two versions, no third


def test_one_address_twice_in_a_batch_applies_in_order(crm: Crm) -> None:
    results = crm.upsert(ContactUpdate("bo@example.com", first_name="Bo", attrs={"a": "1"}),
                         ContactUpdate("nope"),
                         ContactUpdate("BO@example.com", first_name="Bob", attrs={"b": "2"}))
    assert [r.outcome for r in results] == [Outcome.created, Outcome.refused, Outcome.updated]
    assert "not a valid email" in results[1].reason
    bo = crm.contact("bo@example.com")
    assert (bo.first_name, bo.attrs) == ("Bob", {"a": "1", "b": "2"})
    again = crm.upsert(ContactUpdate("bo@example.com", first_name="Bo", attrs={"a": "1"}),
                       ContactUpdate("BO@example.com", first_name="Bob", attrs={"b": "2"}))
    assert [r.outcome for r in again] == [Outcome.unchanged, Outcome.unchanged]


def test_consent_only_moves_away_from_subscribed(crm: Crm) -> None:
    crm.upsert(ContactUpdate("cy@example.com", status="unsubscribed"))
    cy = crm.contact("cy@example.com")
    assert cy.status == "unsubscribed"
    with crm.control.sessions() as db:
        assert why_not_mailable(db, KEYS, cy) == "unsubscribed"
    [again] = crm.upsert(ContactUpdate("cy@example.com", status="subscribed", first_name="Cy"))
    assert again.outcome is Outcome.updated and "consent kept" in again.reason
    assert crm.contact("cy@example.com").status == "unsubscribed"
    assert crm.contact("cy@example.com").first_name == "Cy"
    bounced = set_status(crm.store, crm.control, KEYS, "cy@example.com", "bounced", how="mailer")
    assert bounced.outcome is Outcome.updated and crm.contact("cy@example.com").status == "bounced"
    # The history: one consent event per change, in order.
    history = crm.store.query(
        "SELECT props.value[indexOf(props.key, 'previous')], props.value[indexOf(props.key, 'status')], "
        "props.value[indexOf(props.key, 'how')] FROM events WHERE name = 'consent' AND contact_id = %(c)s "
        "ORDER BY ts, ts_ms", {"c": contact_id_for("cy@example.com")}).rows
    assert history == [("", "unsubscribed", "import"), ("unsubscribed", "bounced", "mailer")]


def test_an_unsubscribe_from_the_collector_wins_over_an_import(crm: Crm) -> None:
    crm.upsert(ContactUpdate("di@example.com", first_name="Di"))
    di = contact_id_for("di@example.com")
    # What the unsubscribe page does: the suppression, then the event (no contact row change).
    assert suppress(crm.control.sessions, di, "", "one_click")
    crm.store.insert("events", [event_row("unsubscribe", None, {"list": "", "how": "one_click"},
                                          source="unsubscribe", contact_id=di)])
    assert crm.contact("di@example.com").status == "unsubscribed"  # effective state, from the event
    [result] = crm.upsert(ContactUpdate("di@example.com", status="subscribed"))
    assert "consent kept" in result.reason
    stored = current_contacts(crm.store, [di])[di]
    assert stored.status == "unsubscribed"  # the row itself now agrees
    history = crm.store.query("SELECT props.value[indexOf(props.key, 'how')] FROM events "
                              "WHERE name = 'consent' AND contact_id = %(c)s", {"c": di}).rows
    assert history == [("suppression",)]  # not credited to the import
    # Leaving one list only is not leaving everything.
    crm.upsert(ContactUpdate("el@example.com"))
    crm.store.insert("events", [event_row("unsubscribe", None, {"list": "news", "how": "page"},
                                          source="unsubscribe", contact_id=contact_id_for("el@example.com"))])
    assert crm.contact("el@example.com").status == "subscribed"


def test_why_not_mailable(crm: Crm) -> None:
    crm.upsert(ContactUpdate("fa@example.com"), ContactUpdate("go@example.com"))
    fa, go = crm.contact("fa@example.com"), crm.contact("go@example.com")
    suppress(crm.control.sessions, go.contact_id, "weekly", "page")
    with crm.control.sessions() as db:
        assert why_not_mailable(db, KEYS, fa) is None
        assert why_not_mailable(db, KEYS, go) is None  # another list
        assert why_not_mailable(db, KEYS, go, "weekly") == "unsubscribed"
    erase_contact(crm.store, crm.control, KEYS, "fa@example.com")
    with crm.control.sessions() as db:
        assert why_not_mailable(db, KEYS, fa) == "erased"  # even a stale copy of the contact
        # With the signing key rotated (new key first) the old hash still matches.
        assert why_not_mailable(db, ("newer-key-" + "n" * 24, *KEYS), fa) == "erased"
    [refused] = crm.upsert(ContactUpdate("FA@example.com", first_name="Fa"))
    assert refused.outcome is Outcome.refused and "erased" in refused.reason
    assert crm.contact("fa@example.com") is None


def test_identify_creates_a_contact_that_never_overrides_an_import(crm: Crm) -> None:
    site = "s_test"
    ivy = contact_id_for("ivy@example.com")
    first_seen = int(time.time()) - 3 * 86400

    def identify(ts: float, visitor: str) -> None:
        crm.store.insert("events", [event_row("identify", ts, {"email": "ivy@example.com"}, source="beacon",
                                              site_id=site, visitor_id=visitor, contact_id=ivy)])

    identify(first_seen, "v1")
    ivy_row = wait_until(lambda: crm.contact("ivy@example.com"), 5, 0.05)
    assert (ivy_row.email, ivy_row.source, ivy_row.status) == ("ivy@example.com", "identify", "subscribed")
    identify(first_seen + 86400, "v2")  # a later identify keeps the first day as created_at
    assert crm.contact("ivy@example.com").created_at.timestamp() == first_seen
    crm.upsert(ContactUpdate("ivy@example.com", first_name="Ivy", status="unsubscribed", attrs={"x": "1"}))
    identify(time.time(), "v3")
    ivy_row = crm.contact("ivy@example.com")
    assert (ivy_row.first_name, ivy_row.status, ivy_row.attrs) == ("Ivy", "unsubscribed", {"x": "1"})
    assert ivy_row.created_at.timestamp() == first_seen  # the import kept when she was first known
    # A hand-off pageview of an unknown address leaves a row with the id, and no address yet.
    jo = contact_id_for("jo@example.com")
    crm.store.insert("events", [event_row("pageview", first_seen, source="beacon", site_id=site,
                                          visitor_id="vj", contact_id=jo, pathname="/")])
    placeholder = wait_until(lambda: contact_profile(crm.store, jo), 5, 0.05)
    assert (placeholder.email, placeholder.source, placeholder.version) == ("", "email_link", 0)
    [filled] = crm.upsert(ContactUpdate("jo@example.com", first_name="Jo"))
    assert filled.outcome is Outcome.updated
    jo_row = crm.contact("jo@example.com")
    assert (jo_row.email, jo_row.first_name, jo_row.created_at.timestamp()) == (
        "jo@example.com", "Jo", first_seen)


def test_profile_timeline_and_visitors(crm: Crm) -> None:
    crm.upsert(ContactUpdate("kim@example.com", first_name="Kim"))
    kim = contact_id_for("kim@example.com")
    now = time.time()
    rows = [
        event_row("email_sent", now - 500, contact_id=kim, campaign_id="3", message_id="3.a"),
        event_row("email_open", now - 490, contact_id=kim, campaign_id="3", message_id="3.a", is_machine=1,
                  machine_reason="apple_mpp"),
        event_row("email_click", now - 400, contact_id=kim, campaign_id="3", message_id="3.a", link_id="2",
                  target_url="https://shop.example.com/p"),
        # The hand-off pageview carries the contact; the visitor's later pages do not.
        event_row("pageview", now - 399, site_id="s1", visitor_id="vk", contact_id=kim, pathname="/p",
                  hostname="shop.example.com", source="beacon"),
        event_row("engagement", now - 390, site_id="s1", visitor_id="vk", pathname="/p"),
        event_row("pageview", now - 300, site_id="s1", visitor_id="vk", pathname="/cart",
                  hostname="shop.example.com"),
        event_row("purchase", now - 290, {"item": "shoe", "value": "40"}, site_id="s1", visitor_id="vk"),
        event_row("pageview", now - 280, site_id="s1", visitor_id="someone-else", pathname="/"),
    ]
    crm.store.insert("events", rows)
    wait_until(lambda: crm.store.query("SELECT count() FROM identities").scalar(), 5, 0.05)
    found = profile(crm.store, crm.control, "kim@example.com")
    names = [e.name for e in found.timeline.entries]
    assert names == ["email_sent", "email_open", "email_click", "pageview", "pageview", "purchase"]
    assert found.timeline.total == 6
    assert found.timeline.entries[1].is_machine and not found.timeline.entries[2].is_machine
    assert found.timeline.entries[5].props == {"item": "shoe", "value": "40"}
    assert [(v.site_id, v.visitor_id, v.method, v.current) for v in found.visitors] == [
        ("s1", "vk", "email_link", True)]
    # The visitor later identifies as someone else (a shared device): its new visits are not Kim's.
    crm.store.insert("identities", [{"site_id": "s1", "visitor_id": "vk", "contact_id": "other",
                                     "method": "identify", "ts": int(now - 100)}])
    crm.store.insert("events", [event_row("pageview", now - 50, site_id="s1", visitor_id="vk",
                                          pathname="/x")])
    again = profile(crm.store, crm.control, "kim@example.com", limit=2)
    assert again.timeline.total == 4  # the hand-off pageview and the email events carry the id
    assert [e.name for e in again.timeline.entries] == ["email_click", "pageview"]
    assert again.visitors[0].current is False


def test_the_timeline_marks_clicks_a_later_verdict_turned(crm: Crm) -> None:
    crm.upsert(ContactUpdate("lee@example.com"))
    lee = contact_id_for("lee@example.com")
    now = time.time()
    crm.store.insert("events", [
        event_row("email_click", now - 400, contact_id=lee, campaign_id="4", message_id="4.a", link_id="1"),
        event_row("email_click", now - 100, contact_id=lee, campaign_id="4", message_id="4.a", link_id="2"),
        # a trap-link click 2 s after the first: a window of 5 s around it takes the first click only
        event_row(REVISION_EVENT, now - 398, {"window_ms": "5000"}, contact_id=lee, message_id="4.a",
                  is_machine=1, machine_reason="trap_link"),
    ])
    entries = profile(crm.store, crm.control, "lee@example.com").timeline.entries
    assert [(e.name, e.link_id, e.is_machine, e.machine_reason) for e in entries] == [
        ("email_click", "1", True, "trap_link"), ("email_click", "2", False, "")]
