"""What the dashboard's rules page adds to the CRM, on SQLite and PostgreSQL: editing a disabled rule
(checked as a new one is, history kept) and the messages each rule sent."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tracker.control.db import ControlPlane
from tracker.control.models import Campaign, RuleFrequency, RuleTrigger, SendLedger, SendStatus
from tracker.crm.rules import ledger
from tracker.crm.rules.define import RuleSpec, add_rule, disable_rule, edit_rule, enable_rule, get_rule
from tracker.crm.segments import add_segment
from tracker.crm.templates import save_template
from tracker.errors import NotFound, OdnosError


@pytest.fixture
def names(control: ControlPlane) -> ControlPlane:
    with control.session() as session:
        add_segment(session, "buyers", {"type": "purchased"})
        add_segment(session, "everyone", {"all": []})
    save_template(control, "hello", "Hello {{ contact.first_name }}", "<p>Hi</p>")
    save_template(control, "news", "News", "<p>News</p>")
    return control


def _spec(**changes) -> RuleSpec:
    fields = {"name": "welcome", "segment": "buyers", "template": "hello", "trigger": "enter"}
    return RuleSpec(**{**fields, **changes})


def test_a_disabled_rule_takes_new_settings_and_keeps_its_history(names: ControlPlane) -> None:
    rule = add_rule(names, _spec())
    with names.session() as session:
        session.add(SendLedger(rule_id=rule.id, contact_id="c1", trigger_key="once", status=SendStatus.sent))
    edited = edit_rule(names, "welcome", _spec(name="monday news", segment="everyone", template="news",
                                               trigger="cron:0 9 * * 1", every_days=7, delay_minutes=30,
                                               quiet="21-8", cap=50, timezone="Europe/Paris"))
    assert edited.id == rule.id
    stored = get_rule(names, str(rule.id))
    assert (stored.name, stored.trigger, stored.schedule, stored.frequency, stored.period_seconds) == (
        "monday news", RuleTrigger.schedule, "0 9 * * 1", RuleFrequency.per_period, 7 * 86400)
    assert (stored.delay_seconds, stored.quiet_start, stored.quiet_end, stored.hourly_cap,
            stored.timezone) == (1800, 21, 8, 50, "Europe/Paris")
    assert not stored.enabled
    with names.sessions() as session:
        kept = session.scalars(select(SendLedger.contact_id).where(SendLedger.rule_id == rule.id)).all()
    assert kept == ["c1"]
    with pytest.raises(NotFound):
        get_rule(names, "welcome")


def test_keeping_the_name_is_no_clash_but_another_rules_name_is(names: ControlPlane) -> None:
    add_rule(names, _spec())
    add_rule(names, _spec(name="other"))
    edit_rule(names, "welcome", _spec(trigger="event:signup"))
    assert get_rule(names, "welcome").event_name == "signup"
    with pytest.raises(OdnosError, match="exists already"):
        edit_rule(names, "welcome", _spec(name="other"))
    assert get_rule(names, "welcome").event_name == "signup"  # nothing changed


@pytest.mark.parametrize(("changes", "message"), [
    ({"trigger": "cron:61 * * * *"}, "cron"),
    ({"quiet": "8-8"}, "same hour"),
    ({"segment": "nobody"}, "no segment"),
    ({"template": "nothing"}, "no template"),
    ({"timezone": "Mars/Olympus"}, "zone"),
    ({"once": True, "every_days": 3}, "not both"),
])
def test_a_bad_edit_is_refused_and_changes_nothing(names: ControlPlane, changes: dict, message: str) -> None:
    add_rule(names, _spec())
    with pytest.raises(OdnosError, match=message):
        edit_rule(names, "welcome", _spec(**changes))
    stored = get_rule(names, "welcome")
    assert (stored.trigger, stored.quiet_start, stored.timezone) == (RuleTrigger.enter, None, "UTC")


def test_an_enabled_rule_must_be_disabled_first(names: ControlPlane) -> None:
    add_rule(names, _spec(trigger="event:signup"))
    enable_rule(names, "welcome")
    with pytest.raises(OdnosError, match="disable it"):
        edit_rule(names, "welcome", _spec(trigger="event:purchase"))
    disable_rule(names, "welcome")
    assert edit_rule(names, "welcome", _spec(trigger="event:purchase")).event_name == "purchase"


def test_sent_per_rule_counts_only_sent_rows(names: ControlPlane) -> None:
    first, second = add_rule(names, _spec()), add_rule(names, _spec(name="two"))
    add_rule(names, _spec(name="three"))
    statuses = [(first.id, SendStatus.sent), (first.id, SendStatus.sent), (first.id, SendStatus.skipped),
                (first.id, SendStatus.failed), (first.id, SendStatus.pending), (second.id, SendStatus.sent)]
    with names.session() as session:
        campaign = Campaign(name="c", subject="s")
        session.add(campaign)
        session.flush()
        session.add_all([SendLedger(rule_id=r, contact_id=f"c{n}", trigger_key="once", status=s)
                         for n, (r, s) in enumerate(statuses)])
        session.add(SendLedger(campaign_id=campaign.id, contact_id="c1", trigger_key="once",
                               status=SendStatus.sent))
    with names.sessions() as session:
        assert ledger.sent_per_rule(session) == {first.id: 2, second.id: 1}

