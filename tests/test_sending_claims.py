"""``send_batch``'s claims: rows committed ``CLAIM`` at a time before their messages leave, outcomes
written per claim, never more than ``MAX_PENDING`` rows pending; a stop between messages that
leaves nothing pending; a deferred row whose contact left since becomes ``skipped``.

Through a real SMTP server (aiosmtpd) whose DATA hook reads the ledger from its own connection
while each message is with it, the ClickHouse server for the ``email_sent`` events, and the
control database on disk: SQLite, then PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import select

from tests.fixtures.clickhouse import free_port
from tests.fixtures.collector import NEW_KEY
from tests.test_mailer_smtp import SmtpCapture
from tests.test_rules_world import FROM
from tracker.contacts import contact_id_for
from tracker.control.consent import suppress
from tracker.control.db import ControlPlane
from tracker.control.models import Campaign, SendLedger
from tracker.crm.mailer.smtp import SmtpSender
from tracker.crm.model import Contact
from tracker.crm.sending import CLAIM, INTERRUPTED, MAX_PENDING, Owner, send_batch
from tracker.crm.templates import save_template
from tracker.runtime import Runtime
from tracker.settings import load_settings

pytestmark = pytest.mark.server


class World:
    def __init__(self, runtime: Runtime, smtp: SmtpCapture) -> None:
        self.runtime, self.smtp = runtime, smtp
        self.template = save_template(runtime.control, "claims", "Hi {{ contact.first_name }}",
                                      '<p>Hi, <a href="https://shop.example.com/">shop</a></p>')

    def campaign(self) -> int:
        with self.runtime.control.session() as session:
            campaign = Campaign(name="c-" + uuid.uuid4().hex[:6], subject="-")
            session.add(campaign)
            session.flush()
            return campaign.id

    def statuses(self, campaign_id: int) -> dict[str, str]:
        """contact id -> status, through a connection of its own (what another process would see)."""
        control = ControlPlane(self.runtime.settings.sqlalchemy_url)
        try:
            with control.sessions() as session:
                rows = session.execute(select(SendLedger.contact_id, SendLedger.status)
                                       .where(SendLedger.campaign_id == campaign_id))
                return {cid: str(status) for cid, status in rows}
        finally:
            control.dispose()

    def received(self) -> Counter[str]:
        return Counter(rcpt for message in self.smtp.messages for rcpt in message.rcpt_tos)


def people(n: int) -> list[Contact]:
    tag = uuid.uuid4().hex[:6]
    return [Contact(contact_id=contact_id_for(f"p{i}.{tag}@example.org"), email=f"p{i}.{tag}@example.org",
                    first_name=f"P{i}") for i in range(n)]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, clickhouse_server, tmp_path_factory) -> World:
    """The control database on SQLite, then on PostgreSQL (a schema of its own)."""
    data = tmp_path_factory.mktemp("claims")
    database_url = ""
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres").fresh_schema_url()
    with SmtpCapture() as smtp:
        settings = load_settings({"data_dir": str(data), "public_url": "http://t.example.test",
                                  "secret_keys": NEW_KEY, "mail_from": FROM, "smtp_url": smtp.url,
                                  "database_url": database_url,
                                  "clickhouse_url": clickhouse_server.url_for("sending_claims")}, environ={})
        runtime = Runtime.open(settings)
        try:
            yield World(runtime, smtp)
        finally:
            runtime.close()


def _on_data(world: World, hook: Callable[[int, str], None]) -> Callable:
    """Call ``hook(messages so far, recipient)`` inside each DATA, before its 250; the old handler."""
    accept = world.smtp.handler.handle_DATA

    async def handle(server, session, envelope):  # noqa: ANN001 - aiosmtpd's hook
        reply = await accept(server, session, envelope)
        hook(len(world.smtp.messages), envelope.rcpt_tos[0])
        return reply

    world.smtp.handler.handle_DATA = handle
    return accept


def test_each_message_leaves_with_its_row_committed_pending_and_max_pending_holds(world: World) -> None:
    campaign, batch = world.campaign(), people(3 * CLAIM + 5)
    by_email = {p.email: p.contact_id for p in batch}
    seen: list[tuple[str, int, int]] = []  # (the row's status, rows pending, rows written) at each DATA

    def look(_count: int, rcpt: str) -> None:
        rows = world.statuses(campaign)
        seen.append((rows.get(by_email[rcpt], "none"), sum(s == "pending" for s in rows.values()), len(rows)))

    accept = _on_data(world, look)
    try:
        result = send_batch(world.runtime, Owner.campaign(campaign), "once", world.template, batch)
    finally:
        world.smtp.handler.handle_DATA = accept
    assert len(result.sent) == len(batch)
    assert [status for status, _, _ in seen] == ["pending"] * len(batch)  # committed before it left
    assert max(pending for _, pending, _ in seen) <= MAX_PENDING
    # rows go in a claim at a time, in one transaction each (the next claim may be in by the first DATA)
    assert seen[0][2] in (CLAIM, 2 * CLAIM)
    assert all(written % CLAIM == 0 or written == len(batch) for _, _, written in seen)
    assert set(world.statuses(campaign).values()) == {"sent"}


def test_a_stop_between_messages_leaves_nothing_pending_and_the_next_run_mails_the_rest(world: World) -> None:
    campaign, batch, stop = world.campaign(), people(2 * CLAIM + 7), threading.Event()
    before = world.received()

    def stop_at_seven(count: int, _rcpt: str) -> None:
        if count - sum(before.values()) == 7:
            stop.set()

    accept = _on_data(world, stop_at_seven)
    try:
        first = send_batch(world.runtime, Owner.campaign(campaign), "once", world.template, batch, stop=stop)
    finally:
        world.smtp.handler.handle_DATA = accept
    ids = [p.contact_id for p in batch]
    assert first.interrupted and first.stopped == INTERRUPTED
    assert first.sent == ids[:7]  # the message with the server when the stop came was answered
    claimed = len(batch) - len(first.not_attempted)  # the claim being sent, and the next if taken
    assert claimed in (CLAIM, 2 * CLAIM) and first.not_attempted == ids[claimed:]
    assert list(first.deferred) == ids[7:claimed]  # claimed, certainly not sent
    statuses = world.statuses(campaign)
    assert "pending" not in statuses.values() and len(statuses) == claimed
    second = send_batch(world.runtime, Owner.campaign(campaign), "once", world.template, batch)
    assert second.sent == ids[7:] and second.already == ids[:7]
    assert world.received() - before == Counter({p.email: 1 for p in batch})


def test_a_deferred_row_whose_contact_unsubscribed_since_is_skipped_not_sent(world: World) -> None:
    campaign, [ida, jo] = world.campaign(), people(2)
    with SmtpSender(f"smtp://127.0.0.1:{free_port()}", attempts=1) as dead:
        first = send_batch(world.runtime, Owner.campaign(campaign), "once", world.template, [ida, jo],
                           smtp=dead)
    assert set(first.deferred) == {ida.contact_id, jo.contact_id}
    suppress(world.runtime.control.sessions, ida.contact_id, "", "page")
    second = send_batch(world.runtime, Owner.campaign(campaign), "once", world.template, [ida, jo])
    assert second.skipped == {ida.contact_id: "unsubscribed"} and second.sent == [jo.contact_id]
    assert world.statuses(campaign) == {ida.contact_id: "skipped", jo.contact_id: "sent"}
    assert world.received()[ida.email] == 0 and world.received()[jo.email] == 1
