"""The rule runner's own ledger reads and writes on SQLite and PostgreSQL: the insert-or-leave-alone
of skipped rows and waits, the hourly count the cap uses, and the rows per contact."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tracker.control.db import ControlPlane
from tracker.control.models import Rule, RuleTrigger, Segment, SendLedger, SendStatus, Template, utcnow
from tracker.crm.rules import ledger


@pytest.fixture
def rule_id(control: ControlPlane) -> int:
    with control.session() as session:
        template, segment = Template(name="t", subject="s"), Segment(name="g", definition={"all": []})
        session.add_all([template, segment])
        session.flush()
        rule = Rule(name="r", segment_id=segment.id, template_id=template.id, trigger=RuleTrigger.enter)
        session.add(rule)
        session.flush()
        return rule.id


def test_skipped_rows_leave_existing_rows_alone_and_can_be_written_twice(control: ControlPlane,
                                                                         rule_id: int) -> None:
    with control.session() as session:
        session.add(SendLedger(rule_id=rule_id, contact_id="sent-one", trigger_key="once",
                               status=SendStatus.sent))
    ids = ["sent-one", *(f"c{n:04d}" for n in range(1200))]  # more than one INSERT's worth
    ledger.skip_existing(control, rule_id, ids, "once", "member when the rule was enabled")
    ledger.skip_existing(control, rule_id, ids, "once", "member when the rule was enabled")
    with control.sessions() as session:
        rows = ledger.rows_by_contact(session, rule_id, ids)
    assert len(rows) == 1201 and all(len(found) == 1 for found in rows.values())
    assert rows["sent-one"][0].status == SendStatus.sent
    assert {found[0].status for cid, found in rows.items() if cid != "sent-one"} == {SendStatus.skipped}


def test_waits_are_recorded_once_and_keep_the_first_time(control: ControlPlane, rule_id: int) -> None:
    first = utcnow().replace(microsecond=0)
    assert ledger.waits(control, rule_id, ["a", "b"], first, record=False) == {}
    assert ledger.waits(control, rule_id, ["a", "b"], first, record=True) == {"a": first, "b": first}
    later = first + timedelta(minutes=5)
    assert ledger.waits(control, rule_id, ["a", "c"], later, record=True) == {"a": first, "c": later}


def test_the_cap_counts_sent_and_pending_rows_of_the_window(control: ControlPlane, rule_id: int) -> None:
    now = utcnow()
    with control.session() as session:
        for n, (status, age) in enumerate([(SendStatus.sent, 10), (SendStatus.pending, 20),
                                           (SendStatus.skipped, 5), (SendStatus.failed, 5),
                                           (SendStatus.sent, 70)]):
            session.add(SendLedger(rule_id=rule_id, contact_id=f"c{n}", trigger_key="once", status=status,
                                   created_at=now - timedelta(minutes=age)))
    with control.sessions() as session:
        assert ledger.sends_since(session, rule_id, now - timedelta(hours=1)) == 2
