"""Later verdicts revise earlier clicks: the SQL readers share, on both engines, and through the collector.

A scanner's burst is recognised at its third link and a trap-link click comes whenever the scanner
gets to it; the clicks before are stored as a person's. ``tracker.queries.machines`` turns them
around at read time; the stored rows stay as they arrived.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.fixtures.collector import NEW_KEY, Collector, running_collector
from tracker.enrich.email_machines import BURST_WINDOW, REVISION_EVENT, TRAP_WINDOW
from tracker.events import event_row
from tracker.queries.machines import email_events, human_condition, rollup_correction
from tracker.store.migrate import migrate
from tracker.tokens import TRAP_LINK_ID, TokenCodec

T0 = 1_767_000_000.0  # the clicks' time base, seconds


def _click(name: str, contact: str, message: str, link: str, at: float, *, machine: str = "") -> dict:
    return event_row(name, T0 + at, contact_id=contact, message_id=message, campaign_id=message.split(".")[0],
                     link_id=link, is_machine=int(bool(machine)), machine_reason=machine)


def _revision(contact: str, message: str, at: float, window: float, reason: str) -> dict:
    return event_row(REVISION_EVENT, T0 + at, {"window_ms": str(int(window * 1000))}, contact_id=contact,
                     message_id=message, campaign_id=message.split(".")[0], is_machine=1,
                     machine_reason=reason)


@pytest.fixture
def revised(store):
    """A scanner's burst and a trap click among people's clicks; returns (store, {label: event_id})."""
    migrate(store)
    rows = {
        # campaign "c", message c.1: contact "scan" bursts over four links; its fourth click revealed it
        "burst-a": _click("email_click", "scan", "c.1", "a", 0.0),
        "burst-b": _click("email_click", "scan", "c.1", "b", 0.3),
        "burst-c": _click("email_click", "scan", "c.1", "c", 0.6, machine="burst"),
        "burst-open": _click("email_open", "scan", "c.1", "", 0.1),
        "burst-d": _click("email_click", "scan", "c.1", "d", 0.9, machine="burst"),
        "scan-later": _click("email_click", "scan", "c.1", "a", 600.0),  # the person, ten minutes later
        "other-contact": _click("email_click", "ann", "c.1", "a", 0.2),  # same message id, another contact
        "other-message": _click("email_click", "scan", "c.2", "a", 0.2),  # same contact, another message
        # message c.3: contact "trap" clicks two links, then the trap link; one click a day later
        "trap-a": _click("email_click", "trap", "c.3", "a", 100.0),
        "trap-open": _click("email_open", "trap", "c.3", "", 95.0),
        "trap-b": _click("email_click", "trap", "c.3", "b", 130.0),
        "trap": _click("email_click", "trap", "c.3", TRAP_LINK_ID, 140.0, machine="trap_link"),
        "trap-next-day": _click("email_click", "trap", "c.3", "a", 86_540.0),
    }
    revisions = [_revision("scan", "c.1", 0.6, BURST_WINDOW, "burst"),
                 _revision("trap", "c.3", 140.0, TRAP_WINDOW, "trap_link")]
    store.insert("events", [*rows.values(), *revisions])
    return store, {label: row["event_id"] for label, row in rows.items()}


REVISED = {"burst-a": "burst", "burst-b": "burst", "burst-open": "burst", "trap-a": "trap_link",
           "trap-open": "trap_link", "trap-b": "trap_link"}
STORED_MACHINES = {"burst-c": "burst", "burst-d": "burst", "trap": "trap_link"}
PEOPLE = {"scan-later", "other-contact", "other-message", "trap-next-day"}


def test_human_condition_leaves_only_people(revised):
    store, ids = revised
    rows = store.query(f"SELECT toString(event_id) FROM events WHERE name IN ('email_open', 'email_click') "
                       f"AND {human_condition()}").rows
    by_id = {v: k for k, v in ids.items()}
    assert {by_id[r[0]] for r in rows} == PEOPLE


def test_a_scope_narrows_the_events_not_the_verdict(revised):
    store, ids = revised
    scope = "campaign_id = %(c)s AND ts < toDateTime(%(until)s)"
    rows = store.query(f"SELECT toString(event_id) FROM events WHERE name = 'email_click' AND {scope} "
                       f"AND {human_condition(scope)}", {"c": "c", "until": int(T0 + 86_400)}).rows
    by_id = {v: k for k, v in ids.items()}
    assert {by_id[r[0]] for r in rows} == PEOPLE - {"trap-next-day"}


def test_email_events_give_the_revised_verdict_and_reason(revised):
    store, ids = revised
    columns = "toString(event_id), stored_machine, machine, reason"
    rows = store.query(f"SELECT {columns} FROM {email_events()}").rows
    by_id = {v: k for k, v in ids.items()}
    got = {by_id[i]: (stored, machine, reason) for i, stored, machine, reason in rows}
    expected = {label: (0, 1, reason) for label, reason in REVISED.items()}
    expected |= {label: (1, 1, reason) for label, reason in STORED_MACHINES.items()}
    expected |= {label: (0, 0, "") for label in PEOPLE}
    assert got == expected


def test_stored_verdicts_are_kept_as_they_arrived(revised):
    store, ids = revised
    rows = store.query(f"SELECT toString(event_id), machine FROM {email_events(revised=False)}").rows
    by_id = {v: k for k, v in ids.items()}
    assert {by_id[i] for i, machine in rows if machine} == set(STORED_MACHINES)


AGGREGATES = {
    "clicks": "countIf(name = 'email_click' AND machine = 0)",
    "clicked": "uniqExactIf(contact_id, name = 'email_click' AND machine = 0)",
    "opens": "countIf(name = 'email_open' AND machine = 0)",
    "scanner_clicks": "countIf(name = 'email_click' AND machine = 1)",
}


def test_rollup_figures_minus_the_correction_are_the_revised_figures(revised):
    """The campaign rollup counted stored verdicts; the correction takes off what revisions changed."""
    store, _ = revised
    rollup = store.query(
        "SELECT campaign_id, countMergeIf(events, name = 'email_click' AND machine = 0), "
        "uniqExactMergeIf(contacts, name = 'email_click' AND machine = 0), "
        "countMergeIf(events, name = 'email_open' AND machine = 0), "
        "countMergeIf(events, name = 'email_click' AND machine = 1) "
        "FROM rollup_campaigns_daily WHERE campaign_id = 'c' GROUP BY campaign_id").rows
    # as stored: burst a and b, scan-later, other-contact, other-message, trap a, b and next day
    assert rollup == [("c", 8, 3, 2, 3)]
    correction = rollup_correction(store, AGGREGATES, "campaign_id = %(c)s", {"c": "c"}, "campaign_id")
    # revised: human clicks scan-later, other-contact, other-message, trap-next-day; contacts scan, ann,
    # trap; no human open; machine clicks burst a-d, trap a, b and the trap itself
    expected = {"clicks": 8 - 4, "clicked": 3 - 3, "opens": 2 - 0, "scanner_clicks": 3 - 7}
    assert correction == {("c",): expected}


def test_a_campaign_without_revisions_needs_no_correction(revised):
    store, _ = revised
    store.insert("events", [_click("email_click", "bob", "d.1", "a", 0.0), _click("email_click", "bob", "d.1",
                                                                                  "b", 0.1)])
    assert rollup_correction(store, AGGREGATES, "campaign_id = %(c)s", {"c": "d"}, "campaign_id") == {}


# -- through the real collector ------------------------------------------------------------------


@pytest.fixture(scope="module")
def collector(clickhouse_server, tmp_path_factory) -> Collector:
    with running_collector(clickhouse_server, tmp_path_factory.mktemp("revisions")) as running:
        yield running


def _people_and_machines(collector: Collector, message: str, clicks: int) -> tuple[int, int, list[tuple]]:
    collector.rows("message_id = %(m)s AND name = 'email_click'", {"m": message}, clicks)
    stored = collector.store.query("SELECT is_machine, machine_reason FROM events WHERE message_id = %(m)s "
                                   "AND name = 'email_click' ORDER BY ts, ts_ms", {"m": message}).rows
    people, machines = collector.store.query(
        f"SELECT countIf(machine = 0), countIf(machine = 1) FROM {email_events('message_id = %(m)s')} "
        f"WHERE name = 'email_click'", {"m": message}).first()
    return people, machines, stored


def test_four_links_clicked_within_a_second_are_all_a_machine(collector: Collector) -> None:
    message = "spring-" + uuid.uuid4().hex[:10]
    codec = TokenCodec([NEW_KEY], clock=lambda: time.time() - 3600)  # sent an hour ago: not too fast
    started = time.monotonic()
    for link in "abcd":
        token = codec.click("c-" + message, message, link, f"https://shop.example.com/{link}")
        assert collector.request("GET", f"/c/{token}")[0] == 302
    assert time.monotonic() - started < BURST_WINDOW
    deadline = time.monotonic() + 15
    while not collector.store.query("SELECT count() FROM events WHERE name = %(n)s AND message_id = %(m)s",
                                    {"n": REVISION_EVENT, "m": message}).scalar():
        assert time.monotonic() < deadline, "no revision landed"
        time.sleep(0.1)
    people, machines, stored = _people_and_machines(collector, message, 4)
    assert stored == [(0, ""), (0, ""), (1, "burst"), (1, "burst")]  # kept as judged on arrival
    assert (people, machines) == (0, 4)


def test_a_trap_click_turns_the_contacts_earlier_clicks_around(collector: Collector) -> None:
    message = "spring-" + uuid.uuid4().hex[:10]
    codec = TokenCodec([NEW_KEY], clock=lambda: time.time() - 3600)
    contact = "c-" + message
    for link in ("a", TRAP_LINK_ID):
        time.sleep(BURST_WINDOW / 2)  # slower than a burst: only the trap can tell
        token = codec.click(contact, message, link, f"https://shop.example.com/{link}")
        status, headers, _ = collector.request("GET", f"/c/{token}")
        assert status == 302
    assert "_odn=" not in headers["location"]  # a machine gets no hand-off
    other = codec.click("someone-else", message, "a", "https://shop.example.com/a")
    assert collector.request("GET", f"/c/{other}")[0] == 302
    people, machines, stored = _people_and_machines(collector, message, 3)
    assert sorted(stored) == [(0, ""), (0, ""), (1, "trap_link")]
    assert (people, machines) == (1, 2)
    reasons = collector.store.query(
        f"SELECT contact_id, reason FROM {email_events('message_id = %(m)s')} ORDER BY contact_id, reason",
        {"m": message}).rows
    assert reasons == [(contact, "trap_link"), (contact, "trap_link"), ("someone-else", "")]
