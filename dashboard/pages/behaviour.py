"""Behaviour: where visits enter, leave and come from, who the visitors are, and what they do.

The site's reports past the overview, as Plausible and Matomo split them: entry and exit pages,
sources and referrers, UTM tags, countries, devices, custom events and their properties, goals
with their conversion rates, a funnel, and weekly retention. Bots are left out everywhere, and the
header says how many.

Goals and the funnel are part of the URL, so a view can be shared: ``goals=page:/signup,event:signup``
and ``funnel=page:/pricing,page:/signup,event:signup&window=86400`` (``kind:value`` items, comma
separated; a page value is a pattern where ``*`` is any text). The inputs on the page write those
parameters; without ``goals`` the page shows the site's top custom events as goals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import dash_mantine_components as dmc
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import access, components, figures
from dashboard.data import ask_all, reader, view_of
from dashboard.format import number
from dashboard.view import View
from tracker.errors import OdnosError
from tracker.queries.filters import NO_FILTERS, Filters
from tracker.queries.period import Period
from tracker.queries.site.bots_excluded import bots_excluded
from tracker.queries.site.countries import countries
from tracker.queries.site.custom_events import custom_events
from tracker.queries.site.devices import devices
from tracker.queries.site.entry_pages import entry_pages
from tracker.queries.site.event_properties import event_properties
from tracker.queries.site.exit_pages import exit_pages
from tracker.queries.site.funnel import MAX_WINDOW, funnel
from tracker.queries.site.goals import KINDS, MAX_GOALS, Goal, goals
from tracker.queries.site.retention import retention
from tracker.queries.site.sources import sources
from tracker.queries.site.top_pages import top_pages
from tracker.queries.site.utm import utm
from tracker.store.base import EventStore

PATH = "/behaviour"
TITLE = "Behaviour"
ROLE = "viewer"

EXAMPLE_FUNNEL = "page:/pricing,page:/signup,event:signup"
DEFAULT_WINDOW = 86400
WINDOWS = {1800: "30 minutes", 3600: "1 hour", 86400: "1 day", 7 * 86400: "7 days", 30 * 86400: "30 days"}
DEFAULT_GOALS = 5
_CHART = {"displayModeBar": False, "responsive": True}


def parse_goals(text: str, what: str = "goal") -> list[Goal]:
    """Goals as the URL writes them (``page:/signup,event:signup``); ``OdnosError`` saying what is wrong."""
    items = goal_items(text)
    if len(items) > MAX_GOALS:
        raise OdnosError(f"at most {MAX_GOALS} {what}s, not {len(items)}", code="bad_goal")
    found = []
    for item in items:
        kind, colon, value = item.partition(":")
        if not colon:
            raise OdnosError(f"the {what} {item[:60]!r} needs a kind: write page:/path or event:name",
                             code="bad_goal")
        if kind.strip() not in KINDS:
            raise OdnosError(f"unknown {what} kind {kind.strip()[:30]!r} in {item[:60]!r}; use "
                             f"{' or '.join(k + ':' for k in KINDS)}", code="bad_goal")
        found.append(Goal(kind.strip(), value.strip()))
    return found


def goal_items(text: str) -> list[str]:
    """The comma-separated items of a ``goals`` or ``funnel`` parameter, as written."""
    return [item.strip() for item in text.split(",") if item.strip()]


def goal_label(goal: Goal) -> str:
    return f"Page {goal.value}" if goal.kind == "page" else f"Event {goal.value}"


def default_goals(store: EventStore, site_id: str, period: Period,
                  filters: Filters = NO_FILTERS) -> list[Goal]:
    """The goals of a view whose URL names none: the site's top custom events in ``period``."""
    return top_event_goals(custom_events(store, site_id, period, filters, limit=DEFAULT_GOALS))


def top_event_goals(rows: list) -> list[Goal]:
    """``default_goals`` from ``custom_events`` rows already asked for (most visitors first)."""
    return [Goal("event", row.name) for row in rows[:DEFAULT_GOALS] if row.name]


def _window(text: str | None) -> int:
    if not text:
        return DEFAULT_WINDOW
    try:
        return int(text)
    except ValueError:
        raise OdnosError(f"the funnel window must be a whole number of seconds from 1 to {MAX_WINDOW}, "
                         f"not {text[:20]!r}", code="bad_window") from None


def layout(query: dict[str, str]) -> Any:
    try:
        view, known = view_of(query)
        store = reader()
        site, period, filters = view.site_id, view.period, view.filters
        tables = ask_all({
            "bots": lambda: bots_excluded(store, site, period, filters),
            "entry": lambda: entry_pages(store, site, period, filters),
            "exit": lambda: exit_pages(store, site, period, filters),
            **{group: (lambda tab=tabs[0]: tab.ask(store, view)) for group, tabs in TAB_GROUPS.items()},
            "countries": lambda: countries(store, site, period, filters, limit=250),
            "events": lambda: custom_events(store, site, period, filters),
            "cohorts": lambda: retention(store, site, period, filters),
            "suggested": lambda: top_pages(store, site, period, filters, limit=15),
            "funnel": lambda: _panel_answer(lambda: _funnel_steps(store, view, query)),
        })
        events = tables["events"]
        targets = _panel_answer(lambda: parse_goals(query["goals"]) if query.get("goals") else
                                top_event_goals(events))
        tables |= ask_all({  # what needs the answers above, side by side again
            "goals": lambda: targets if isinstance(targets, OdnosError) else
            _panel_answer(lambda: goals(store, site, period, targets, filters) if targets else []),
            "properties": lambda: event_properties(store, site, period, events[0].name, filters)
            if events else [],
        })
        bots, cohorts = tables["bots"], tables["cohorts"]
    except OdnosError as exc:
        return components.problem(exc)
    return dmc.Stack([
        dmc.Stack([dmc.Title("Behaviour", order=2), _bots_line(bots)], gap=2),
        components.filter_bar(view, known),
        dmc.Grid([
            components.panel("Entry pages", components.table("entry_pages", tables["entry"], [
                ("value", "Page"), ("visitors", "Visitors"), ("visits", "Entrances"),
                ("bounce_rate", "Bounce %")], filter_dim="page")),
            components.panel("Exit pages", components.table("exit_pages", tables["exit"], [
                ("page", "Page"), ("visitors", "Visitors"), ("exits", "Exits"), ("exit_rate", "Exit %")],
                filter_dim="page")),
            components.panel("Sources", _tabs("sources", tables["sources"])),
            components.panel("Campaigns (UTM)", _tabs("utm", tables["utm"])),
            _countries(tables["countries"]),
            components.panel("Devices", _tabs("devices", tables["devices"])),
            _goals(query, targets, tables["goals"], _suggestions(events, tables["suggested"])),
            _events(events, tables["properties"]),
            _funnel(view, query, tables["funnel"]),
            components.panel("Retention by weekly cohort", _retention(cohorts), span=12,
                             extra=dmc.Text("share of each week's new visitors seen again", size="xs",
                                            c="dimmed")),
        ], gutter="md"),
    ], gap="md")


@dataclass(frozen=True)
class _Tab:
    """One tab of a breakdown panel: its table (id ``table-<table>``) and the question that fills it."""

    label: str
    table: str
    dim: str  # what a click on a row filters by
    ask: Callable[[EventStore, View], list]
    visits: bool = True  # a table of visits (sources, UTM), else of pageviews (devices)

    def draw(self, rows: list) -> Any:
        columns = ([("value", self.label), ("visitors", "Visitors"), ("visits", "Visits"),
                    ("bounce_rate", "Bounce %")] if self.visits else
                   [("value", self.label), ("visitors", "Visitors"), ("pageviews", "Pageviews")])
        return components.table(self.table, rows, columns, filter_dim=self.dim, height=300)


def _visits_by(dim: str) -> Callable[[EventStore, View], list]:
    ask = sources if dim.startswith("referrer") else utm
    return lambda store, view: ask(store, view.site_id, view.period, view.filters, dimension=dim)


def _pageviews_by(dim: str) -> Callable[[EventStore, View], list]:
    return lambda store, view: devices(store, view.site_id, view.period, view.filters, dimension=dim)


TAB_GROUPS = {
    "sources": [_Tab("Source", "sources", "referrer_source", _visits_by("referrer_source")),
                _Tab("Referrer", "referrers", "referrer_domain", _visits_by("referrer_domain"))],
    "utm": [_Tab(label, dim, dim, _visits_by(dim)) for dim, label in
            (("utm_source", "Source"), ("utm_medium", "Medium"), ("utm_campaign", "Campaign"))],
    "devices": [_Tab(label, name, dim, _pageviews_by(dim), visits=False)
                for dim, name, label in (("device", "devices", "Device"), ("browser", "browsers", "Browser"),
                                         ("os", "os", "Operating system"))],
}
"""Breakdown panels with tabs. The first tab is asked with the page; the others when they are first
shown, as Plausible's tabs load (five questions fewer for a page that asks seventeen)."""


def _tabs(group: str, first: list) -> Any:
    tabs = TAB_GROUPS[group]
    bodies = [tabs[0].draw(first), *(html.Div(id=_later(tab)) for tab in tabs[1:])]
    panels = [dmc.TabsPanel(body, value=tab.label, pt="xs") for tab, body in zip(tabs, bodies, strict=True)]
    return dmc.Tabs([dmc.TabsList([dmc.TabsTab(tab.label, value=tab.label) for tab in tabs]), *panels],
                    value=tabs[0].label, id=f"behaviour-{group}-tabs", keepMounted=False)  # drawn when shown


def _later(tab: _Tab) -> str:
    """The id of the box a tab's table is drawn into when the tab is first shown."""
    return f"behaviour-{tab.table}-later"


def _bots_line(bots: Any) -> Any:
    if not bots.pageviews:
        text = "No bot traffic in this period."
    else:
        top = ", ".join(f"{row.agent or row.reason} {number(row.pageviews)}" for row in bots.rows[:4])
        text = (f"Bots left out of every number here: {number(bots.pageviews)} pageviews from "
                f"{number(bots.visitors)} bot visitors ({top}).")
    return dmc.Text(text, size="sm", c="dimmed", id="behaviour-bots")


def _countries(rows: list) -> Any:
    return components.panel("Countries", dmc.Grid([
        dmc.GridCol(components.table("countries", rows, [("value", "Country"), ("visitors", "Visitors"),
                                                         ("pageviews", "Pageviews")], filter_dim="country"),
                    span={"base": 12, "sm": 5}),
        dmc.GridCol(components.country_map("behaviour-countries-map", rows, height=330),
                    span={"base": 12, "sm": 7}),
    ]), span=12)


def _events(rows: list, properties: list) -> Any:
    names = [row.name for row in rows]
    picker = dmc.Select(id="behaviour-event-pick", data=names, value=names[0] if names else None, size="xs",
                        w=200, placeholder="no custom events", allowDeselect=False,
                        comboboxProps={"withinPortal": True})
    body = dmc.Grid([
        dmc.GridCol(components.table("events", rows, [("name", "Event"), ("visitors", "Visitors"),
                                                      ("events", "Events"), ("conversion_rate", "Conv. %")],
                                     height=260), span={"base": 12, "md": 6}),
        dmc.GridCol(dmc.Stack([
            dmc.Group([dmc.Text("Properties of", size="sm", fw=600), picker], gap="xs"),
            html.Div(_properties_table(names[0] if names else "", properties), id="behaviour-event-props"),
        ], gap="xs"), span={"base": 12, "md": 6}),
    ])
    return components.panel("Custom events", body, span=12)


def _properties(view: View, event: str) -> Any:
    rows = event_properties(reader(), view.site_id, view.period, event, view.filters) if event else []
    return _properties_table(event, rows)


def _properties_table(event: str, rows: list) -> Any:
    if event and not rows:
        return dmc.Text(f"The event {event} was sent without properties.", size="sm", c="dimmed")
    return components.table("event_properties", rows, [("value", "Value"), ("key", "Property"),
                                                       ("visitors", "Visitors"), ("events", "Events")],
                            height=222)


def _panel_answer(question: Any) -> Any:
    """The answer of ``question()``, or the ``OdnosError`` it raised: that panel says it, the rest draw."""
    try:
        return question()
    except OdnosError as exc:
        return exc


def _panel_problem(name: str, exc: OdnosError) -> Any:
    return dmc.Alert(exc.message, title="This cannot be shown", color="yellow", variant="light",
                     id=f"behaviour-{name}-problem")


def _suggestions(events: list, pages: list) -> list[str]:
    return list(dict.fromkeys([*(f"event:{row.name}" for row in events),
                               *(f"page:{row.page}" for row in pages)]))


def _goals(query: dict[str, str], targets: list[Goal] | OdnosError, rows: list | OdnosError,
           suggestions: list[str]) -> Any:
    text = query.get("goals", "")
    note = "" if text else "Your top custom events; add pages (page:/signup) or events (event:x) and apply."
    try:
        if isinstance(rows, OdnosError):
            raise rows
        result: Any = components.table("goals", [
            {"goal": goal_label(row.goal), "visitors": row.visitors, "conversions": row.conversions,
             "conversion_rate": row.conversion_rate} for row in rows],
            [("goal", "Goal"), ("visitors", "Visitors"), ("conversions", "Times"),
             ("conversion_rate", "Conv. %")], height=236) if rows else \
            dmc.Text("No custom events in this period: add a goal such as page:/signup.", c="dimmed",
                     size="sm", id="behaviour-goals-empty")
        chosen = [f"{goal.kind}:{goal.value}" for goal in targets]  # rows came, so targets did
    except OdnosError as exc:
        result, chosen = _panel_problem("goals", exc), goal_items(text)
    editor = dmc.Group([
        dmc.TagsInput(id="behaviour-goals-input", value=chosen, data=suggestions, size="xs",
                      placeholder="page:/signup or event:signup", clearable=True, style={"flex": 1},
                      comboboxProps={"withinPortal": True}),
        dmc.Button("Apply", id="behaviour-goals-apply", size="xs", n_clicks=0),
    ], gap="xs", align="flex-end", wrap="nowrap")
    return components.panel("Goals", dmc.Stack([editor, dmc.Text(note, size="xs", c="dimmed"), result],
                                               gap="xs"))


def _funnel_steps(store: EventStore, view: View, query: dict[str, str]) -> list | None:
    """The funnel the URL asks for (None when it asks for none); ``OdnosError`` for a bad one."""
    text = query.get("funnel", "")
    window = _window(query.get("window"))
    steps = parse_goals(text, "funnel step")
    if not text:
        return None
    if len(steps) < 2:
        raise OdnosError("a funnel needs 2 to 20 steps, in order, e.g. page:/pricing, page:/signup",
                         code="bad_goal")
    return funnel(store, view.site_id, view.period, steps, view.filters, window)


def _funnel(view: View, query: dict[str, str], answer: list | OdnosError | None) -> Any:
    text = query.get("funnel", "")
    windows = dict(WINDOWS)
    try:
        window = _window(query.get("window"))
    except OdnosError:
        window = DEFAULT_WINDOW
    if isinstance(answer, OdnosError):
        result: Any = _panel_problem("funnel", answer)
    elif answer is None:
        result = _funnel_example(view)
    else:
        result = _funnel_result(answer, window)
    if not 1 <= window <= MAX_WINDOW:  # the message says why; the menu offers the usual windows
        window = DEFAULT_WINDOW
    windows.setdefault(window, f"{window:,} seconds")
    editor = dmc.Group([
        dmc.TagsInput(id="behaviour-funnel-input", value=goal_items(text), size="xs", clearable=True,
                      style={"flex": 1},
                      placeholder="steps in order: page:/pricing, page:/signup, event:signup",
                      comboboxProps={"withinPortal": True}),
        dmc.Select(id="behaviour-funnel-window", size="xs", w=130, allowDeselect=False,
                   value=str(window),
                   data=[{"value": str(k), "label": f"within {v}"} for k, v in windows.items()],
                   comboboxProps={"withinPortal": True}),
        dmc.Button("Update funnel", id="behaviour-funnel-apply", size="xs", n_clicks=0),
    ], gap="xs", align="flex-end", wrap="nowrap")
    return components.panel("Funnel", dmc.Stack([editor, result], gap="xs"), span=12,
                            extra=dmc.Text("visitors who did each step in order, within the window",
                                           size="xs", c="dimmed"))


def _funnel_example(view: View) -> Any:
    example = " → ".join(goal_label(goal) for goal in parse_goals(EXAMPLE_FUNNEL))
    return dmc.Text(["Add the steps of a path through the site, in order, then update. For example ",
                     dcc.Link(example, id="behaviour-funnel-example",
                              href=PATH + view.query(funnel=EXAMPLE_FUNNEL, window=str(DEFAULT_WINDOW))),
                     "."], size="sm", c="dimmed")


def _funnel_result(steps: list, window: int) -> Any:
    labels = [f"{n}. {goal_label(step.goal)}" for n, step in enumerate(steps, 1)]
    chart = dcc.Graph(id="behaviour-funnel-chart", config=_CHART, figure=figures.funnel(
        labels, [s.visitors for s in steps], [s.dropoff for s in steps], [s.conversion_rate for s in steps]))
    rows = [{"step": label, "visitors": s.visitors, "dropoff": s.dropoff,
             "dropoff_rate": 100.0 * s.dropoff / (s.visitors + s.dropoff) if s.visitors + s.dropoff else 0.0,
             "conversion_rate": s.conversion_rate} for label, s in zip(labels, steps, strict=True)]
    table = components.table("funnel", rows, [("step", "Step"), ("visitors", "Visitors"), ("dropoff", "Lost"),
                                              ("dropoff_rate", "Lost %"), ("conversion_rate", "Conv. %")],
                             height=250)
    return dmc.Grid([dmc.GridCol(chart, span={"base": 12, "md": 6}),
                     dmc.GridCol(table, span={"base": 12, "md": 6})])


def _retention(cohorts: list) -> Any:
    if not cohorts:
        return dmc.Text("No visitors in this period.", c="dimmed", size="sm")
    weeks = max(len(c.retained) for c in cohorts)
    head = html.Tr([html.Th("Cohort"), html.Th("Visitors"), *[html.Th(f"Week {k}") for k in range(weeks)]])
    body = []
    for cohort in cohorts:
        cells = []
        for k in range(weeks):
            if k >= len(cohort.retained):
                cells.append(html.Td("", className="behaviour-heat-future"))
                continue
            share = cohort.retained[k] / cohort.visitors if cohort.visitors else 0.0
            cells.append(html.Td(f"{100 * share:.1f}%", style=figures.shade(share),
                                 title=f"{cohort.retained[k]:,} of {cohort.visitors:,} visitors"))
        last = cohort.week + timedelta(days=6)
        body.append(html.Tr([html.Td(f"{cohort.week:%b %d} – {last:%b %d}", className="behaviour-heat-week"),
                             html.Td(f"{cohort.visitors:,}"), *cells]))
    return html.Div(html.Table([html.Thead(head), html.Tbody(body)], className="behaviour-heat",
                               id="behaviour-retention"), className="behaviour-heat-wrap")


def register(app: Dash) -> None:
    for group, tabs in TAB_GROUPS.items():
        _register_tabs(app, group, tabs[1:])
    @access.callback(app, Output("behaviour-event-props", "children"), Input("behaviour-event-pick", "value"),
                     State("url", "search"), prevent_initial_call=True)
    def pick_event(event: str | None, search: str | None) -> Any:
        try:
            view, _ = view_of(_query(search))
            return _properties(view, event or "")
        except OdnosError as exc:
            return _panel_problem("properties", exc)

    @access.callback(app, Output("url", "search", allow_duplicate=True),
                     Input("behaviour-goals-apply", "n_clicks"), State("behaviour-goals-input", "value"),
                     State("url", "search"), prevent_initial_call=True)
    def apply_goals(clicks: int, chosen: list[str] | None, search: str | None) -> Any:
        return _rewrite(clicks, search, goals=",".join(chosen or []) or None)

    @access.callback(app, Output("url", "search", allow_duplicate=True),
                     Input("behaviour-funnel-apply", "n_clicks"), State("behaviour-funnel-input", "value"),
                     State("behaviour-funnel-window", "value"), State("url", "search"),
                     prevent_initial_call=True)
    def apply_funnel(clicks: int, steps: list[str] | None, window: str | None, search: str | None) -> Any:
        return _rewrite(clicks, search, funnel=",".join(steps or []) or None, window=window or None)


def _register_tabs(app: Dash, group: str, later: list[_Tab]) -> None:
    # The outputs as one list: Dash then takes a list back whatever their number, one included.
    @access.callback(app, [Output(_later(tab), "children") for tab in later],
                     Input(f"behaviour-{group}-tabs", "value"),
                     *[State(_later(tab), "children") for tab in later], State("url", "search"),
                     prevent_initial_call=True)
    def show(label: str, *rest: Any) -> Any:
        drawn, search = rest[:-1], rest[-1]
        answer: list[Any] = [no_update] * len(later)
        for n, tab in enumerate(later):
            if tab.label == label and not drawn[n]:
                try:
                    view, _ = view_of(_query(search))
                    answer[n] = tab.draw(tab.ask(reader(), view))
                except OdnosError as exc:
                    answer[n] = _panel_problem(tab.table, exc)
        return answer


def _query(search: str | None) -> dict[str, str]:
    return dict(parse_qsl((search or "").lstrip("?")))


def _rewrite(clicks: int, search: str | None, **changes: str | None) -> Any:
    """The URL with the goals or the funnel changed; the router then draws the page for it."""
    if not clicks:
        return no_update
    try:
        view, _ = view_of(_query(search))
    except OdnosError:
        return no_update
    new = view.query(**changes)
    return no_update if new == (search or "") else new
