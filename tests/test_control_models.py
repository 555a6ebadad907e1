"""The constraints the database itself enforces: the send ledger's uniqueness, rule CHECKs, cascades,
and the types that must read back the same on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError

from tracker.control.db import ControlPlane
from tracker.control.models import (
    Campaign,
    Rule,
    RuleFrequency,
    RuleTrigger,
    Segment,
    SendLedger,
    SendStatus,
    Site,
    SiteDomain,
    Template,
    VisitorSalt,
)


@pytest.fixture
def owners(control: ControlPlane) -> tuple[int, int]:
    """Ids of one rule and one campaign to write ledger rows for."""
    with control.session() as session:
        template = Template(name="welcome", subject="Hi")
        segment = Segment(name="new", definition={"all": []})
        session.add_all([template, segment])
        session.flush()
        rule = Rule(
            name="welcome new", segment_id=segment.id, template_id=template.id, trigger=RuleTrigger.enter
        )
        campaign = Campaign(name="launch", subject="We launched", template_id=template.id)
        session.add_all([rule, campaign])
        session.flush()
        return rule.id, campaign.id


def _insert(control: ControlPlane, **values: object) -> None:
    with control.session() as session:
        session.add(SendLedger(contact_id="c1", trigger_key="once", **values))


@pytest.mark.parametrize("owner", ["rule_id", "campaign_id"])
def test_ledger_rejects_a_second_row_for_the_same_trigger(
    control: ControlPlane, owners: tuple[int, int], owner: str
) -> None:
    owner_id = dict(zip(["rule_id", "campaign_id"], owners, strict=True))[owner]
    _insert(control, **{owner: owner_id})
    with pytest.raises(IntegrityError):
        _insert(control, **{owner: owner_id})
    with control.session() as session:
        rows = session.scalars(sa.select(SendLedger)).all()
    assert [(row.contact_id, row.status) for row in rows] == [("c1", SendStatus.pending)]


def test_ledger_accepts_another_contact_trigger_or_owner(
    control: ControlPlane, owners: tuple[int, int]
) -> None:
    rule_id, campaign_id = owners
    with control.session() as session:
        session.add_all(
            [
                SendLedger(rule_id=rule_id, contact_id="c1", trigger_key="once"),
                SendLedger(rule_id=rule_id, contact_id="c2", trigger_key="once"),
                SendLedger(rule_id=rule_id, contact_id="c1", trigger_key="2025-01-01"),
                SendLedger(campaign_id=campaign_id, contact_id="c1", trigger_key="once"),
            ]
        )
    with control.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(SendLedger)) == 4


@pytest.mark.parametrize("both", [True, False], ids=["both-owners", "no-owner"])
def test_ledger_row_needs_exactly_one_owner(
    control: ControlPlane, owners: tuple[int, int], both: bool
) -> None:
    rule_id, campaign_id = owners
    with pytest.raises(IntegrityError):
        _insert(control, **({"rule_id": rule_id, "campaign_id": campaign_id} if both else {}))


def test_rule_with_ledger_rows_cannot_be_deleted(control: ControlPlane, owners: tuple[int, int]) -> None:
    _insert(control, rule_id=owners[0])
    with pytest.raises(IntegrityError), control.session() as session:
        session.execute(sa.delete(Rule).where(Rule.id == owners[0]))


@pytest.mark.parametrize(
    "change",
    [
        {"trigger": RuleTrigger.schedule},  # no cron string
        {"frequency": RuleFrequency.per_period},  # no period
        {"frequency": RuleFrequency.per_period, "period_seconds": 0},
        {"quiet_start": 22},  # only one end of the quiet hours
        {"quiet_start": 22, "quiet_end": 24},
        {"delay_seconds": -1},
        {"hourly_cap": 0},
    ],
)
def test_rule_checks_refuse_what_the_runner_could_not_honour(
    control: ControlPlane, owners: tuple[int, int], change: dict[str, object]
) -> None:
    with pytest.raises(IntegrityError), control.session() as session:
        session.execute(sa.update(Rule).where(Rule.id == owners[0]).values(**change))


def test_valid_scheduled_rule_with_quiet_hours_is_stored(
    control: ControlPlane, owners: tuple[int, int]
) -> None:
    change = {"trigger": RuleTrigger.schedule, "schedule": "0 9 * * 1", "quiet_start": 22, "quiet_end": 7}
    with control.session() as session:
        session.execute(sa.update(Rule).where(Rule.id == owners[0]).values(**change))
    with control.session() as session:
        rule = session.get(Rule, owners[0])
        assert (rule.trigger, rule.schedule, rule.enabled, rule.dry_run) == (
            "schedule",
            "0 9 * * 1",
            False,
            False,
        )


def test_timestamps_read_back_aware_in_utc(control: ControlPlane) -> None:
    with control.session() as session:
        session.add(VisitorSalt(day=date(2025, 1, 2), salt=b"x" * 32))
    with control.session() as session:
        created = session.scalar(sa.select(VisitorSalt.created_at))
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60


def test_naive_timestamps_are_refused(control: ControlPlane) -> None:
    with pytest.raises(StatementError, match="naive datetime"), control.session() as session:
        session.add(VisitorSalt(day=date(2025, 1, 2), salt=b"x", created_at=datetime(2025, 1, 2)))


def test_json_options_changed_in_place_are_saved(control: ControlPlane) -> None:
    with control.session() as session:
        site = Site(name="Blog", domains=[SiteDomain(domain="example.com")])
        session.add(site)
    with control.session() as session:
        loaded = session.get(Site, site.id)
        loaded.options["respect_dnt"] = True
    with control.session() as session:
        assert session.get(Site, site.id).options["respect_dnt"] is True


def test_deleting_a_site_deletes_its_domains(control: ControlPlane) -> None:
    with control.session() as session:
        site = Site(name="Blog", domains=[SiteDomain(domain="example.com")])
        session.add(site)
    with control.session() as session:
        session.execute(sa.delete(Site).where(Site.id == site.id))  # the database's ON DELETE, not the ORM's
    with control.session() as session:
        assert session.scalars(sa.select(SiteDomain)).all() == []
