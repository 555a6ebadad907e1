"""The rules page through the real dashboard server: create, edit, enable and disable (marketers only),
the dry run's table against tracker.crm's dry run, and each rule's history and sends.

The form is sent as the browser sends it; what the page stored is read back with tracker.crm's own
functions from the same control database, and what it shows is compared with ``dry_run`` and
``history`` called here on the same data.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.fixtures.web import component
from tests.test_dashboard_contacts import World, crm_world, grid_rows, text_of, value
from tracker.control.models import RuleFrequency, RuleTrigger, SendLedger, SendStatus
from tracker.crm.contacts import set_status
from tracker.crm.rules.define import RuleSpec, add_rule, enable_rule, get_rule
from tracker.crm.rules.views import dry_run, history
from tracker.crm.segments import add_segment, segment_members
from tracker.crm.templates import save_template
from tracker.errors import NotFound

pytestmark = pytest.mark.server

__all__ = ["crm_world"]  # the module's server, from tests/test_dashboard_contacts.py

VIP = {"type": "tag", "tag": "vip"}
FIELDS = ("name", "segment", "template", "trigger", "event", "cron", "frequency", "every", "delay", "cap",
          "quiet-start", "quiet-end", "timezone", "existing")


@pytest.fixture(scope="module")
def world(crm_world: World) -> World:
    """A vip segment, two templates, and a rule that mailed three vips; one vip unsubscribed."""
    runtime = crm_world.runtime
    with runtime.control.session() as session:
        add_segment(session, "vips", VIP)
    save_template(runtime.control, "hello", "Hello {{ contact.first_name }}",
                  "<p>Hi {{ contact.first_name }}</p>")
    save_template(runtime.control, "news", "News", "<p>News</p>")
    rule = add_rule(runtime.control, RuleSpec(name="vip welcome", segment="vips", template="hello",
                                              trigger="enter", existing="mail"))
    enable_rule(runtime.control, "vip welcome", store=runtime.store)
    members = segment_members(runtime.store, VIP)
    with runtime.control.session() as session:
        session.add_all([SendLedger(rule_id=rule.id, contact_id=c.contact_id, trigger_key="once",
                                    status=SendStatus.sent) for c in members[:3]])
        session.add(SendLedger(rule_id=rule.id, contact_id=members[3].contact_id, trigger_key="once",
                               status=SendStatus.failed, error="permanent: 550 no such user"))
    set_status(runtime.store, runtime.control, runtime.keys, members[4].email, "unsubscribed", how="test")
    return crm_world


def form(**given: Any) -> list[dict[str, Any]]:
    """The form's fields as States, in the page's order; ``existing`` is a checkbox."""
    defaults = {"name": "", "segment": None, "template": None, "trigger": "enter", "event": "", "cron": "",
                "frequency": "once", "every": 7, "delay": 0, "cap": "", "quiet-start": None,
                "quiet-end": None,
                "timezone": "UTC", "existing": False}
    values = {**defaults, **{k.replace("_", "-"): v for k, v in given.items()}}
    return [value(f"rules-{name}", "checked" if name == "existing" else "value",
                  values[name]) for name in FIELDS]


def _save(client, rule_id: int | None = None, **given: Any) -> Any:
    return client.call("rules-save", "n_clicks", [value("rules-save", "n_clicks", 1)],
                       state=[value("rules-id", "data", rule_id), *form(**given)])


NEWSLETTER = {"name": "monday news", "segment": "vips", "template": "news", "trigger": "schedule",
              "cron": "0 9 * * 1", "frequency": "every", "every": 7, "delay": 30, "cap": 50,
              "quiet_start": "21",
              "quiet_end": "8", "timezone": "Europe/Paris"}


def test_creating_a_rule_works_for_a_marketer_and_is_refused_to_a_viewer(world: World) -> None:
    control = world.runtime.control
    assert _save(world.client("viewer"), **NEWSLETTER) == 403
    with pytest.raises(NotFound):
        get_rule(control, "monday news")
    answer = _save(world.client("marketer"), **NEWSLETTER)
    rule = get_rule(control, "monday news")
    assert answer["url"]["search"] == f"?rule={rule.id}&saved=1"
    assert (rule.trigger, rule.schedule, rule.frequency, rule.period_seconds) == (
        RuleTrigger.schedule, "0 9 * * 1", RuleFrequency.per_period, 7 * 86400)
    assert (rule.delay_seconds, rule.hourly_cap, rule.quiet_start, rule.quiet_end, rule.timezone) == (
        1800, 50, 21, 8, "Europe/Paris")
    assert not rule.enabled


@pytest.mark.parametrize(("changes", "message"), [
    ({"cron": "61 * * * *"}, "cron"),
    ({"quiet_end": None}, "both a start and an end"),
    ({"segment": None}, "no segment"),
    ({"trigger": "event", "event": "two words"}, "without spaces"),
    ({"name": ""}, "name"),
])
def test_a_bad_rule_is_refused_with_the_reason_and_nothing_is_stored(world: World, changes: dict,
                                                                     message: str) -> None:
    answer = _save(world.client("marketer"), **{**NEWSLETTER, "name": "broken", **changes})
    assert "url" not in answer
    assert message in text_of(component(answer["rules-save-result"]["children"], "rules-save-error"))
    with pytest.raises(NotFound):
        get_rule(world.runtime.control, changes.get("name", "broken") or "broken")


def _toggle(client, rule_id: int) -> Any:
    return client.call("rules-toggle", "n_clicks", [value("rules-toggle", "n_clicks", 1)],
                       state=[value("rules-id", "data", rule_id)])


def test_enabling_and_disabling_need_a_marketer(world: World) -> None:
    control = world.runtime.control
    rule = add_rule(control, RuleSpec(name="vip enter", segment="vips", template="hello", trigger="enter"))
    assert _toggle(world.client("viewer"), rule.id) == 403
    assert not get_rule(control, "vip enter").enabled
    marketer = world.client("marketer")
    members = len(segment_members(world.runtime.store, VIP))
    answer = _toggle(marketer, rule.id)
    # An enter rule leaves today's members out: every one of them is skipped, as the CLI says.
    assert answer["url"]["search"] == f"?rule={rule.id}&done=enabled&skipped={members}"
    assert get_rule(control, "vip enter").enabled
    page = marketer.page("/rules", answer["url"]["search"])
    assert f"{members:,} contacts already in the segment" in text_of(component(page, "rules-done"))
    assert _toggle(marketer, rule.id)["url"]["search"] == f"?rule={rule.id}&done=disabled"
    assert not get_rule(control, "vip enter").enabled


def test_editing_changes_a_disabled_rule_and_refuses_an_enabled_one(world: World) -> None:
    control = world.runtime.control
    rule = add_rule(control, RuleSpec(name="to edit", segment="vips", template="hello", trigger="enter"))
    marketer = world.client("marketer")
    answer = _save(marketer, rule.id, name="edited", segment="vips", template="news", trigger="event",
                   event="signup", frequency="each")
    assert answer["url"]["search"] == f"?rule={rule.id}&saved=1"
    edited = get_rule(control, str(rule.id))
    assert (edited.name, edited.trigger, edited.event_name, edited.frequency) == (
        "edited", RuleTrigger.event, "signup", RuleFrequency.each)
    enable_rule(control, "edited")
    refused = _save(marketer, rule.id, name="edited", segment="vips", template="news", trigger="event",
                    event="purchase", frequency="each")
    assert "disable it before changing it" in text_of(refused["rules-save-result"]["children"])
    assert get_rule(control, "edited").event_name == "signup"
    form_page = marketer.page("/rules", f"?rule={rule.id}")
    assert component(form_page, "rules-save")["disabled"] is True


def test_the_dry_run_table_is_the_crms_dry_run(world: World) -> None:
    rule = get_rule(world.runtime.control, "vip welcome")
    answer = world.client("viewer").call("rules-dry-run", "n_clicks", [value("rules-dry-run", "n_clicks", 1)],
                                         state=[value("rules-id", "data", rule.id)])
    shown = grid_rows(answer["rules-dry-result"]["children"],
                      {"type": "table", "name": "rule_dry_run", "dim": ""})
    result = dry_run(world.runtime, "vip welcome")
    expected = [{"contact": d.contact.email or d.contact.contact_id,
                 "verdict": "mail now" if d.due else "not now",
                 "why": d.detail or "due", "trigger": d.trigger_key} for d in result.decisions]
    assert shown == expected
    verdicts = [row["verdict"] for row in shown]
    # Three were mailed, one failed for good, one unsubscribed; the other seven are due.
    assert verdicts.count("mail now") == 7 and verdicts.count("not now") == 5
    assert sum(row["why"].startswith("already mailed") for row in shown) == 3
    assert any(row["why"] == "unsubscribed" for row in shown)
    assert component(answer["rules-dry-result"]["children"], "rules-dry-due")["children"] == "would mail 7"


def test_the_history_and_the_list_show_the_ledger(world: World) -> None:
    runtime = world.runtime
    rule = get_rule(runtime.control, "vip welcome")
    page = world.client("viewer").page("/rules", f"?rule={rule.id}")
    shown = grid_rows(page, {"type": "table", "name": "rule_history", "dim": ""})
    _, rows = history(runtime, "vip welcome", limit=500)
    assert [(r["contact"], r["status"], r["error"]) for r in shown] == [
        (item.email, str(item.row.status), item.row.error or "") for item in rows]
    assert sorted(r["status"] for r in shown) == ["failed", "sent", "sent", "sent"]
    listing = {r["name"]: r for r in grid_rows(page, {"type": "table", "name": "rules", "dim": ""})}
    with runtime.control.sessions() as session:
        sent = len(session.scalars(select(SendLedger.id).where(SendLedger.rule_id == rule.id,
                                                               SendLedger.status == SendStatus.sent)).all())
    assert listing["vip welcome"]["sends"] == sent == 3
    assert listing["vip welcome"]["state"] == "enabled" and listing["vip welcome"]["segment"] == "vips"
    assert listing["vip welcome"]["trigger"] == "enters the segment"


def test_a_row_click_opens_the_rule_and_a_bad_url_is_a_message(world: World) -> None:
    client = world.client("viewer")
    grid = {"type": "table", "name": "rules", "dim": ""}
    rule = get_rule(world.runtime.control, "vip welcome")
    answer = client.call(grid, "cellClicked", [value(grid, "cellClicked", {"rowId": str(rule.id)})])
    assert answer["url"]["href"] == f"/rules?rule={rule.id}"
    assert "no rule 'nothing'" in component(client.page("/rules", "?rule=nothing"),
                                            "page-problem")["children"]
    viewer_form = client.page("/rules", "?new=1")
    assert component(viewer_form, "rules-save")["disabled"] is True
