"""A visitor who identifies through the real collector becomes a contact, and never overrides one.

`odnos collector` (granian, one worker) in front of the ClickHouse server; beacons go over HTTP
exactly as the snippet sends them, and the contact rows are read back from ClickHouse.
"""

from __future__ import annotations

import time

import pytest

from tests.fixtures.collector import NEW_KEY, OLD_KEY, running_collector
from tracker.contacts import contact_id_for
from tracker.control.sites import get_site
from tracker.crm.contacts import ContactUpdate, upsert_contacts
from tracker.queries.contacts.contact_profile import contact_profile
from tracker.settings import ClickHouseTarget
from tracker.store.clickhouse_store import ClickHouseStore
from tracker.tokens import identify_hash

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def collector(clickhouse_server, tmp_path_factory):
    with running_collector(clickhouse_server, tmp_path_factory.mktemp("identify")) as running:
        yield running


def _contact(store, email: str, until=lambda c: c is not None, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        found = contact_profile(store, contact_id_for(email))
        if until(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_identify_beacon_leaves_a_contact_row(collector, clickhouse_server) -> None:
    with collector.control.session() as db:
        secret = get_site(db, collector.site_id).identify_secret
    email = f"visitor.{time.time_ns()}@Example.com"

    def identify(visitor: str) -> None:
        event = collector.event("identify", name="identify", visitor=visitor, email=email,
                                hash=identify_hash(secret, email))
        status, _, body = collector.post(event)
        assert status == 202, body

    identify("v-first")
    row = _contact(collector.store, email)
    assert row is not None, "no contact row after a verified identify"
    assert (row.email, row.status, row.source, row.first_name) == (
        email.lower(), "subscribed", "identify", "")
    first_created = row.created_at
    # The marketer imports her with a name and she unsubscribes (the row says so); then she
    # identifies again on another device: nothing of the import is undone.
    writer = ClickHouseStore(ClickHouseTarget(embedded=False, database=collector.store.database,
                                              host="127.0.0.1", port=clickhouse_server.tcp_port,
                                              http_port=clickhouse_server.http_port))
    try:
        upsert_contacts(writer, collector.control, (NEW_KEY, OLD_KEY),
                        [ContactUpdate(email, first_name="Vera", status="unsubscribed",
                                       attrs={"plan": "pro"})])
    finally:
        writer.close()
    time.sleep(1.1)  # a later second, so the second identify's row is a different one
    identify("v-second")
    deadline = time.monotonic() + 15
    # One insert feeds both views, one after the other: wait until the second one has its row too.
    while collector.store.query("SELECT count() FROM identities WHERE contact_id = %(c)s",
                                {"c": contact_id_for(email)}).scalar() < 2 or collector.store.query(
            "SELECT count() FROM contacts WHERE contact_id = %(c)s AND version < 4294967296",
            {"c": contact_id_for(email)}).scalar() < 2:
        assert time.monotonic() < deadline, "the second identify never reached contacts"
        time.sleep(0.1)
    row = contact_profile(collector.store, contact_id_for(email))
    assert (row.first_name, row.status, row.attrs, row.source) == ("Vera", "unsubscribed", {"plan": "pro"},
                                                                  "identify")
    assert row.created_at == first_created
    visitors = collector.store.query("SELECT visitor_id FROM identities WHERE contact_id = %(c)s "
                                     "ORDER BY visitor_id", {"c": contact_id_for(email)}).rows
    assert visitors == [("v-first",), ("v-second",)]


def test_handoff_pageview_leaves_a_contact_row(collector) -> None:
    email = f"clicker.{time.time_ns()}@example.com"
    token = collector.codec.handoff(contact_id_for(email))
    status, _, _ = collector.post(collector.event("handoff", visitor="v-h", odn=token))
    assert status == 202
    row = _contact(collector.store, email)
    assert row is not None, "no contact row after a hand-off pageview"
    assert (row.contact_id, row.email, row.source, row.version) == (
        contact_id_for(email), "", "email_link", 0)
