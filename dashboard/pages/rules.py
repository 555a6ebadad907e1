"""Mailing rules: the list with how each ran, a form to create or change one, enable and disable, a dry
run that says who would be mailed now and why each other member would not, and the history of sends.

Every operation is tracker.crm.rules' (``add_rule``, ``edit_rule``, ``enable_rule``,
``disable_rule``, ``dry_run``, ``history``), as the CLI calls them. ``/rules?rule=ID`` opens one
rule, ``/rules?new=1`` an empty form. New rules are disabled, and a rule is changed only while
disabled: enabling it afterwards starts its clock again and, for an enter rule, leaves the present
members out, so a change never mails a crowd at once. Writes need the marketer role; the dry run
writes nothing and is open to viewers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from zoneinfo import available_timezones

import dash_mantine_components as dmc
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboard import access, components
from dashboard.data import runtime
from dashboard.format import number
from tracker import audit
from tracker.auth import current_user
from tracker.control.models import Rule, RuleFrequency, RuleTrigger
from tracker.crm.rules.define import (
    RuleSpec,
    add_rule,
    disable_rule,
    edit_rule,
    enable_rule,
    get_rule,
    list_rules,
)
from tracker.crm.rules.ledger import sent_per_rule
from tracker.crm.rules.views import DryRun, describe, dry_run, history
from tracker.crm.segments import list_segments
from tracker.crm.templates import list_templates
from tracker.errors import OdnosError

PATH = "/rules"
TITLE = "Rules"
ROLE = "viewer"
GRID = {"type": "table", "name": "rules", "dim": ""}
HISTORY_ROWS = 500
ZONES = ["UTC",
         *sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))]
HOURS = [{"value": str(h), "label": f"{h:02d}:00"} for h in range(24)]
STATE_CELLS = {"crm-rule-on": "params.value === 'enabled'", "crm-rule-off": "params.value === 'disabled'"}
STATUS_CELLS = {"crm-send-sent": "params.value === 'sent'", "crm-send-failed": "params.value === 'failed'",
                "crm-send-pending": "params.value === 'pending'",
                "crm-send-skipped": "params.value === 'skipped'"}
LIST_WIDTHS = {"name": 3, "segment": 2, "template": 2, "trigger": 2.5, "frequency": 2.5, "state": 1.5,
               "last_run": 2.5, "sends": 1, "error": 3}
VERDICT_CELLS = {"crm-send-sent": "params.value === 'mail now'",
                 "crm-send-skipped": "params.value === 'not now'"}


def trigger_words(rule: Rule) -> str:
    """What starts the rule, in the list's words."""
    if rule.trigger == RuleTrigger.event:
        return f"event {rule.event_name}"
    if rule.trigger == RuleTrigger.schedule:
        return f"cron {rule.schedule}"
    return "enters the segment"


def frequency_words(rule: Rule) -> str:
    """How often one contact may get the rule's message, in the list's words."""
    if rule.frequency == RuleFrequency.once:
        return "once per contact"
    if rule.frequency == RuleFrequency.per_period:
        return f"at most every {(rule.period_seconds or 0) / 86400:g} days"
    return "each event" if rule.trigger == RuleTrigger.event else "each fire time"


def layout(query: dict[str, str]) -> Any:
    try:
        unknown = sorted(set(query) - {"rule", "new", "saved", "done", "skipped"})
        if unknown:
            raise OdnosError(f"unknown parameter {unknown[0][:40]!r}; open a rule with ?rule=ID",
                             code="bad_parameter")
        live = runtime()
        rules = list_rules(live.control)
        with live.control.sessions() as session:
            sent = sent_per_rule(session)
            segments = [s.name for s in list_segments(session)]
        templates = [t.name for t in list_templates(live.control)]
        chosen = get_rule(live.control, query["rule"]) if query.get("rule") else None
        detail = _detail(chosen, rules, segments, templates, query) if chosen or query.get("new") else None
    except OdnosError as exc:
        return components.problem(exc)
    enabled = sum(1 for rule, _, _ in rules if rule.enabled)
    failing = [rule.name for rule, _, _ in rules if rule.last_error]
    cards = [
        components.stat_card("rules_enabled", "Rules enabled", f"{enabled} of {len(rules)}",
                             "run by the scheduler every minute"),
        components.stat_card("rules_sent", "Messages sent by rules", number(sum(sent.values())),
                             "each contact at most once per trigger"),
        components.stat_card("rules_failing", "Rules with an error", str(len(failing)),
                             ", ".join(failing)[:120] or "the last runs went well"),
    ]
    rows = [{"name": rule.name, "segment": segment, "template": template, "trigger": trigger_words(rule),
             "frequency": frequency_words(rule), "state": "enabled" if rule.enabled else "disabled",
             "last_run": f"{rule.last_run_at:%Y-%m-%d %H:%M}" if rule.last_run_at else "never",
             "sends": sent.get(rule.id, 0), "error": rule.last_error or "—", "id": str(rule.id)}
            for rule, segment, template in rules]
    columns = [("name", "Rule"), ("segment", "Segment"), ("template", "Template"), ("trigger", "Trigger"),
               ("frequency", "Frequency"), ("state", "State"), ("last_run", "Last run (UTC)"),
               ("sends", "Sent")]
    if failing:
        columns.append(("error", "Last error"))
    listing = (components.record_table("rules", rows, columns, widths=LIST_WIDTHS,
                                       classes={"state": STATE_CELLS},
                                       clickable=True, row_id="id", height=min(330, 60 + 34 * len(rows)))
        if rows else dmc.Text("No rule yet: create one with “New rule”.", c="dimmed", id="rules-none"))
    return dmc.Stack([
        dmc.Group([dmc.Title("Rules", order=2),
                   dcc.Link(dmc.Button("New rule", variant="light"), href=f"{PATH}?new=1", id="rules-new")],
                  justify="space-between"),
        dmc.Text("A rule mails a template to a segment's members when they enter it, when they do an "
                 "event, or on a schedule; never twice for the same trigger, never to anyone unsubscribed. "
                 "New rules are disabled until you enable them.", size="sm", c="dimmed", maw=900),
        dmc.SimpleGrid(cards, cols={"base": 1, "sm": 3}, spacing="sm"),
        dmc.Paper([html.Div("Every rule", className="panel-title"), listing], p="md", withBorder=True,
                  className="crm-rows"),
        detail or html.Div(),
    ], gap="md")


def _detail(rule: Rule | None, rules: list, segments: list[str], templates: list[str],
            query: dict[str, str]) -> Any:
    user = current_user()
    may_write = user is not None and access.has_role(user.role, "marketer")
    names = {r.id: (segment, template) for r, segment, template in rules}
    notices = []
    if query.get("saved"):
        notices.append(dmc.Alert("Saved. The rule mails nobody until it is enabled.", color="green",
                                 variant="light", id="rules-saved", withCloseButton=True))
    if query.get("done") in ("enabled", "disabled"):
        skipped = query.get("skipped", "0")
        text = f"The rule is {query['done']}."
        if query["done"] == "enabled" and skipped.isdigit() and int(skipped):
            text += f" {int(skipped):,} contacts already in the segment will not be mailed."
        notices.append(dmc.Alert(text, color="green", variant="light", id="rules-done", withCloseButton=True))
    form = _form(rule, names.get(rule.id) if rule else None, segments, templates, may_write)
    if rule is None:
        return dmc.Paper(dmc.Stack([dmc.Title("New rule", order=3), *notices, form], gap="sm"), p="lg",
                         withBorder=True)
    _, rows = history(runtime(), str(rule.id), limit=HISTORY_ROWS)
    toggle = dmc.Button("Disable" if rule.enabled else "Enable", id="rules-toggle", disabled=not may_write,
                        color="red" if rule.enabled else "green",
                        variant="light" if rule.enabled else "filled")
    head = dmc.Group([
        dmc.Stack([
            dmc.Group([dmc.Title(rule.name, order=3, id="rules-title"),
                       dmc.Badge("enabled" if rule.enabled else "disabled",
                                 color="green" if rule.enabled else "gray",
                                 variant="light", id="rules-state")], gap="sm"),
            dmc.Text(describe(rule), size="sm", c="dimmed", id="rules-describe"),
        ], gap=2),
        dmc.Group([toggle, dmc.Button("Dry run now", id="rules-dry-run", variant="default")], gap="xs"),
    ], justify="space-between", align="flex-start")
    error = [dmc.Alert(rule.last_error, title="The last run stopped", color="red", variant="light")
             ] if rule.last_error else []
    tabs = dmc.Tabs([
        dmc.TabsList([dmc.TabsTab("Dry run", value="dry"), dmc.TabsTab("Settings", value="settings"),
                      dmc.TabsTab(f"History ({len(rows):,}{'+' if len(rows) == HISTORY_ROWS else ''})",
                                  value="history")]),
        dmc.TabsPanel(html.Div(dmc.Text("“Dry run now” shows who the rule would mail if it ran now, and why "
                                        "each other member would not be mailed. It sends nothing.", size="sm",
                                        c="dimmed", py="md"), id="rules-dry-result"), value="dry"),
        dmc.TabsPanel(html.Div(form, style={"paddingTop": "0.8rem"}), value="settings"),
        dmc.TabsPanel(_history(rows), value="history"),
    ], value="dry", id="rules-tabs")
    return dmc.Paper(dmc.Stack([*notices, head, *error, tabs], gap="sm"), p="lg", withBorder=True)


def _history(rows: list) -> Any:
    if not rows:
        return dmc.Text("Nothing sent yet.", c="dimmed", size="sm", py="md", id="rules-history-none")
    data = [{"time": f"{(item.row.sent_at or item.row.created_at):%Y-%m-%d %H:%M:%S}",
             "contact": item.email or "(erased)", "status": str(item.row.status),
             "trigger": item.row.trigger_key,
             "error": item.row.error or ""} for item in rows]
    return html.Div(components.record_table(
        "rule_history", data, [("time", "Time (UTC)"), ("contact", "Contact"), ("status", "Status"),
                               ("trigger", "Trigger"), ("error", "Error")],
        widths={"time": 2, "contact": 3, "status": 1, "trigger": 2, "error": 3},
        classes={"status": STATUS_CELLS},
        height=min(460, 60 + 34 * len(data))), style={"paddingTop": "0.8rem"})


def _form(rule: Rule | None, names: tuple[str, str] | None, segments: list[str], templates: list[str],
          may_write: bool) -> Any:
    trigger = str(rule.trigger) if rule else "enter"
    if rule is None:
        frequency = "once"
    elif rule.frequency == RuleFrequency.per_period:
        frequency = "every"
    else:
        frequency = "once" if rule.frequency == RuleFrequency.once else "each"
    event_box, cron_box, existing_box, every_box, choices, frequency = _fit(trigger, frequency)
    locked = not may_write or bool(rule and rule.enabled)
    why = ("Viewers may look but not change rules." if not may_write else
           "Disable the rule to change it." if rule and rule.enabled else "")
    field = {"disabled": locked, "size": "sm"}
    return dmc.Stack([
        dmc.Alert(why, color="gray", variant="light") if why else html.Div(),
        dmc.SimpleGrid([
            dmc.TextInput(id="rules-name", label="Name", value=rule.name if rule else "", **field),
            dmc.Select(id="rules-segment", label="Segment", data=segments, value=names[0] if names else None,
                       searchable=True, comboboxProps={"withinPortal": True}, **field),
            dmc.Select(id="rules-template", label="Template", data=templates,
                       value=names[1] if names else None,
                       searchable=True, comboboxProps={"withinPortal": True}, **field),
        ], cols={"base": 1, "sm": 3}, spacing="sm"),
        dmc.Group([
            dmc.Stack([dmc.Text("Trigger", size="sm", fw=500),
                       dmc.SegmentedControl(id="rules-trigger", value=trigger, disabled=locked, data=[
                           {"value": "enter", "label": "enters the segment"},
                           {"value": "event", "label": "does an event"},
                           {"value": "schedule", "label": "on a schedule"}])], gap=4),
            html.Div(dmc.TextInput(id="rules-event", label="Event name", placeholder="signup",
                                   value=(rule.event_name or "") if rule else "", w=200, **field),
                     id="rules-event-box", style=event_box),
            html.Div(dmc.TextInput(id="rules-cron", label="Cron (minute hour day month weekday)",
                                   placeholder="0 9 * * 1  (Mondays at 9)",
                                   value=(rule.schedule or "") if rule else "",
                                   w=280, **field), id="rules-cron-box", style=cron_box),
        ], align="flex-end", gap="md"),
        dmc.Group([
            dmc.Stack([dmc.Text("How often per contact", size="sm", fw=500),
                       dmc.SegmentedControl(id="rules-frequency", value=frequency, disabled=locked,
                                            data=choices)],
                      gap=4),
            html.Div(dmc.NumberInput(id="rules-every", label="Every … days", min=0.001, w=130,
                                     allowDecimal=True,
                                     value=(rule.period_seconds or 0) / 86400 if rule and rule.period_seconds
                                     else 7, **field), id="rules-every-box", style=every_box),
            dmc.NumberInput(id="rules-delay", label="Delay (minutes)", min=0, w=140, allowDecimal=True,
                            value=(rule.delay_seconds / 60) if rule else 0, **field),
            dmc.NumberInput(id="rules-cap", label="Hourly cap", placeholder="no cap", min=1, w=120,
                            value=rule.hourly_cap if rule and rule.hourly_cap else "", **field),
        ], align="flex-end", gap="md"),
        dmc.Group([
            dmc.Select(id="rules-quiet-start", label="Quiet from", data=HOURS, placeholder="no quiet hours",
                       clearable=True, w=150, comboboxProps={"withinPortal": True},
                       value=str(rule.quiet_start) if rule and rule.quiet_start is not None else None,
                       **field),
            dmc.Select(id="rules-quiet-end", label="until", data=HOURS, clearable=True, w=120,
                       comboboxProps={"withinPortal": True},
                       value=str(rule.quiet_end) if rule and rule.quiet_end is not None else None, **field),
            dmc.Select(id="rules-timezone", label="Time zone",
                       data=ZONES if not rule or rule.timezone in ZONES else [rule.timezone, *ZONES],
                       description="for contacts without a timezone attribute",
                       value=rule.timezone if rule else "UTC", searchable=True, w=330,
                       comboboxProps={"withinPortal": True}, **field),
        ], align="flex-end", gap="md"),
        html.Div(dmc.Checkbox(id="rules-existing",
                              label="When enabled, also mail the contacts already in the "
                                                          "segment (otherwise only those who enter it later)",
                              checked=bool(rule and rule.mail_existing), disabled=locked),
                 id="rules-existing-box", style=existing_box),
        html.Div(id="rules-save-result"),
        dmc.Group([dmc.Button("Save rule" if rule else "Create rule", id="rules-save", disabled=locked)]),
        dcc.Store(id="rules-id", data=rule.id if rule else None),
    ], gap="sm")


def _fit(trigger: str, frequency: str | None) -> tuple:
    """What the form shows for a trigger: which boxes (event, cron, existing members, days), and the
    frequencies that trigger takes (``each`` only for events and schedules), with ``frequency`` kept
    when it is one of them."""
    hidden, shown = {"display": "none"}, {}
    choices = [{"value": "once", "label": "once"}, {"value": "every", "label": "at most every N days"}]
    if trigger != "enter":
        choices.insert(0,
                       {"value": "each", "label": "each event" if trigger == "event" else "each fire time"})
    frequency = frequency if frequency in {c["value"] for c in choices} else choices[0]["value"]
    return (shown if trigger == "event" else hidden, shown if trigger == "schedule" else hidden,
            shown if trigger == "enter" else hidden, shown if frequency == "every" else hidden, choices,
            frequency)


def _spec(values: dict[str, Any]) -> RuleSpec:
    """The rule the form states (what ``odnos rules add`` would be given)."""
    trigger = values["trigger"] or "enter"
    if trigger == "event":
        text = f"event:{(values['event'] or '').strip()}"
    elif trigger == "schedule":
        text = f"cron:{(values['cron'] or '').strip()}"
    else:
        text = "enter"
    start, end = values["quiet_start"], values["quiet_end"]
    if (start is None) != (end is None):
        raise OdnosError("quiet hours need both a start and an end hour (or neither)", code="bad_quiet_hours")
    frequency = values["frequency"]
    every = values["every"]
    if frequency == "every" and every in (None, ""):
        raise OdnosError("give the number of days between two messages to one contact", code="bad_rule")
    cap = values["cap"]
    return RuleSpec(name=values["name"] or "", segment=values["segment"] or "",
                    template=values["template"] or "",
                    trigger=text, once=frequency == "once" and trigger != "enter",
                    every_days=float(every) if frequency == "every" else None,
                    delay_minutes=float(values["delay"] or 0),
                    quiet=f"{start}-{end}" if start is not None else None,
                    cap=int(cap) if cap not in (None, "") else None, timezone=values["timezone"] or "UTC",
                    existing=("mail" if values["existing"] else None) if trigger == "enter" else None)


def _dry_table(result: DryRun) -> Any:
    reasons = result.reasons()
    rows = [{"contact": d.contact.email or d.contact.contact_id,
             "verdict": "mail now" if d.due else "not now",
             "why": d.detail or "due", "trigger": d.trigger_key} for d in result.decisions]
    summary = dmc.Group([
        dmc.Badge(f"would mail {len(result.due):,}", color="green", variant="light", size="lg", tt="none",
                  id="rules-dry-due"),
        dmc.Badge(f"not now {len(result.not_mailed):,}", color="gray", variant="light", size="lg", tt="none",
                  id="rules-dry-not"),
        *(dmc.Badge(f"{why}: {n:,}", color="orange", variant="outline", size="sm", tt="none")
          for why, n in reasons.most_common()),
    ], gap="xs")
    table = (components.record_table("rule_dry_run", rows, [("contact", "Contact"), ("verdict", "Now"),
                                                            ("why", "Why"), ("trigger", "Trigger")],
                                      widths={"contact": 3, "verdict": 1, "why": 4, "trigger": 2},
                                      classes={"verdict": VERDICT_CELLS},
                                      height=min(460, 60 + 34 * len(rows)))
             if rows else dmc.Text("No candidate: the segment is empty, or no event arrived.", c="dimmed",
                                   size="sm"))
    return dmc.Stack([
        dmc.Text(f"As of {result.now:%Y-%m-%d %H:%M} UTC" + (f" · {result.note}" if result.note else ""),
                 size="sm", c="dimmed", id="rules-dry-note"),
        summary, table,
    ], gap="sm", pt="sm")


def _allowed() -> bool:
    """Defence in depth: the guard checked the callback's role; check the signed-in user again here."""
    user = current_user()
    return user is not None and access.has_role(user.role, "marketer")


FORM = ("name", "segment", "template", "trigger", "event", "cron", "frequency", "every", "delay", "cap",
        "quiet_start", "quiet_end", "timezone", "existing")


def register(app: Dash) -> None:
    @access.callback(app, Output("rules-event-box", "style"), Output("rules-cron-box", "style"),
                     Output("rules-existing-box", "style"), Output("rules-every-box", "style"),
                     Output("rules-frequency", "data"), Output("rules-frequency", "value"),
                     Input("rules-trigger", "value"), Input("rules-frequency", "value"),
                     prevent_initial_call=True)
    def fit_form(trigger: str | None, frequency: str | None) -> Any:
        # A new trigger starts from its own default frequency (``odnos rules add`` has the same ones).
        return _fit(trigger or "enter", None if ctx.triggered_id == "rules-trigger" else frequency)

    @access.callback(app, Output("url", "search", allow_duplicate=True),
                     Output("rules-save-result", "children"),
                     Input("rules-save", "n_clicks"), State("rules-id", "data"),
                     *(State(f"rules-{name.replace('_', '-')}", "checked" if name == "existing" else "value")
                       for name in FORM), role="marketer", prevent_initial_call=True)
    def save(clicks: int | None, rule_id: int | None, *values: Any) -> Any:
        if not clicks:
            return no_update, no_update
        if not _allowed():
            return no_update, dmc.Alert("Only marketers and admins may change rules.", color="red")
        try:
            spec = _spec(dict(zip(FORM, values, strict=True)))
            live = runtime()
            rule = edit_rule(live.control, str(rule_id), spec) if rule_id else add_rule(live.control, spec)
        except OdnosError as exc:
            return no_update, dmc.Alert(exc.message, title="Not saved", color="red", variant="light",
                                        id="rules-save-error")
        audit.record_done(live.control, current_user().email, "rule_changed" if rule_id else "rule_added",
                          rule.name, {"id": rule.id, "at": "dashboard"})
        return "?" + urlencode({"rule": str(rule.id), "saved": "1"}), None

    @access.callback(app, Output("url", "search", allow_duplicate=True), Input("rules-toggle", "n_clicks"),
                     State("rules-id", "data"), role="marketer", prevent_initial_call=True)
    def toggle(clicks: int | None, rule_id: int | None) -> Any:
        if not clicks or not rule_id or not _allowed():
            return no_update
        live = runtime()
        rule = get_rule(live.control, str(rule_id))
        if rule.enabled:
            disable_rule(live.control, str(rule_id))
            audit.record_done(live.control, current_user().email, "rule_disabled", rule.name,
                              {"at": "dashboard"})
            return "?" + urlencode({"rule": str(rule_id), "done": "disabled"})
        _, skipped = enable_rule(live.control, str(rule_id), store=live.store)
        audit.record_done(live.control, current_user().email, "rule_enabled", rule.name,
                          {"at": "dashboard", "members_left_out": skipped})
        return "?" + urlencode({"rule": str(rule_id), "done": "enabled", "skipped": str(skipped)})

    @access.callback(app, Output("rules-dry-result", "children"), Output("rules-tabs", "value"),
                     Input("rules-dry-run", "n_clicks"), State("rules-id", "data"), prevent_initial_call=True)
    def check(clicks: int | None, rule_id: int | None) -> Any:
        if not clicks or not rule_id:
            return no_update, no_update
        try:
            result = dry_run(runtime(), str(rule_id))
        except OdnosError as exc:
            return dmc.Alert(exc.message, title="The dry run failed", color="red", variant="light"), "dry"
        return _dry_table(result), "dry"

    @access.callback(app, Output("url", "href", allow_duplicate=True), Input(GRID, "cellClicked"),
                     prevent_initial_call=True)
    def open_rule(cell: dict | None) -> Any:
        rule_id = (cell or {}).get("rowId")
        if not isinstance(rule_id, str) or not rule_id.isdigit():
            return no_update
        return f"{PATH}?{urlencode({'rule': str(rule_id)})}"

