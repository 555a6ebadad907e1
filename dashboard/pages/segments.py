"""Segments: every segment with its live size, and a builder that shows a draft's size as it is typed.

The list counts each segment now (``segment_size``: live, not a nightly rebuild). The builder
(``segment_builder``) edits a definition without JSON: contact conditions, behaviour in time
windows, negation, and one level of AND / OR groups; the JSON tab shows the same definition and
edits deeper ones. Every change compiles the draft and shows its size and a sample of members, or,
for an incomplete draft, the schema's own message naming the field. A click on a row loads that
segment (``/segments?segment=ID``); saving needs the marketer role.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import dash_mantine_components as dmc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboard import access, components
from dashboard.data import reader, runtime, sites
from dashboard.pages import segment_builder as builder
from dashboard.pages.contacts import name_of
from tracker import audit
from tracker.auth import current_user
from tracker.crm.rules.define import list_rules
from tracker.crm.segments import (
    add_segment,
    get_segment,
    list_segments,
    segment_members,
    segment_size,
    validate_definition,
)
from tracker.errors import OdnosError
from tracker.queries.campaigns.mailings import mailings
from tracker.queries.contacts.contact_vocabulary import contact_vocabulary
from tracker.queries.period import Period
from tracker.queries.site.custom_events import custom_events

PATH = "/segments"
TITLE = "Segments"
ROLE = "viewer"
GRID = {"type": "table", "name": "segments", "dim": ""}
SAMPLE = 10
EVENT_DAYS = 90  # the event names offered are those seen in this many days
STRUCTURE = {"type": "segb-s", "path": ALL, "field": ALL}
VALUES = {"type": "segb-v", "path": ALL, "field": ALL}
START: dict[str, Any] = {"op": "all", "items": [builder.NEW_ROW]}


def layout(query: dict[str, str]) -> Any:
    try:
        unknown = sorted(set(query) - {"segment", "saved"})
        if unknown:
            raise OdnosError(f"unknown parameter {unknown[0][:40]!r}; open a segment with ?segment=ID",
                             code="bad_parameter")
        store, control = reader(), runtime().control
        with control.sessions() as session:
            stored = [(s.id, s.name, dict(s.definition), s.updated_at) for s in list_segments(session)]
            editing = get_segment(session, query["segment"]) if query.get("segment") else None
            loaded = (editing.id, editing.name, dict(editing.definition)) if editing else None
        used = {}
        for rule, segment_name, _ in list_rules(control):
            used.setdefault(segment_name, []).append(rule.name)
        names = {m.campaign_id: m.name for m in mailings(control)}
        sizes = {segment_id: segment_size(store, definition) for segment_id, _, definition, _ in stored}
        choices = _choices()
    except OdnosError as exc:
        return components.problem(exc)
    user = current_user()
    may_save = user is not None and access.has_role(user.role, "marketer")
    rows = [{"name": name, "members": sizes[sid], "definition": builder.summary(definition, names),
             "rules": ", ".join(used.get(name, [])) or "—", "updated": f"{updated:%Y-%m-%d %H:%M}",
             "id": str(sid)}
            for sid, name, definition, updated in stored]
    listing = (components.record_table("segments", rows, [("name", "Segment"), ("members", "Members"),
                                                          ("definition", "Who"), ("rules", "Used by rules"),
                                                          ("updated", "Changed")],
                                       widths={"name": 2, "members": 1.5, "definition": 5, "rules": 2,
                                               "updated": 2},
                                       clickable=True, row_id="id", height=min(330, 60 + 34 * len(rows)))
               if rows else dmc.Text("No segment yet: build one below and save it.", c="dimmed",
                                     id="segments-none"))
    model, definition, note = START, builder.definition_of(START), ""
    if loaded:
        definition = loaded[2]
        fitted = builder.model_of(definition)
        model = fitted or {"op": "all", "items": []}
        if fitted is None:
            note = "This segment nests deeper than the builder shows: edit it in the JSON tab."
    saved = [dmc.Alert(f"Saved “{loaded[1]}”.", color="green", variant="light", id="segments-saved",
                       withCloseButton=True)] if loaded and query.get("saved") else []
    return dmc.Stack([
        dmc.Group([dmc.Title("Segments", order=2),
                   dcc.Link(dmc.Button("New segment", variant="light"), href=PATH, id="segments-new")],
                  justify="space-between"),
        dmc.Text("A segment is computed when it is asked for, from the events as they are: the sizes below "
                 "are now. Bots, machine opens and scanner clicks never count as behaviour.", size="sm",
                 c="dimmed", maw=900),
        *saved,
        dmc.Paper([html.Div("Every segment", className="panel-title"), listing], p="md", withBorder=True,
                  className="crm-rows"),
        dmc.Grid([
            dmc.GridCol(_editor(loaded, model, definition, note, choices, may_save),
                        span={"base": 12, "lg": 8}),
            dmc.GridCol(_preview(), span={"base": 12, "lg": 4}),
        ], gutter="md"),
        dcc.Store(id="segments-draft", data=model),
        dcc.Store(id="segments-choices", data=choices),
        dcc.Store(id="segments-editing", data=loaded[1] if loaded else None),
    ], gap="md")


def _choices() -> dict[str, Any]:
    """What the builder's pickers offer: attribute names, tags, event names and campaigns."""
    store = reader()
    vocabulary = contact_vocabulary(store)
    period = Period.last(timedelta(days=EVENT_DAYS))
    events = sorted({row.name for site_id, _ in sites()
                     for row in custom_events(store, site_id, period, limit=200)})
    sent = [{"value": m.campaign_id, "label": f"{m.name} ({m.kind})"} for m in mailings(runtime().control)]
    campaigns = [{"value": builder.ANY_CAMPAIGN, "label": "any campaign"},
                 {"value": builder.LAST_CAMPAIGN, "label": "the last campaign sent"}, *sent]
    return {"attributes": [a for a, _ in vocabulary.attributes], "tags": [t for t, _ in vocabulary.tags],
            "events": events, "campaigns": campaigns}


def _editor(loaded: tuple | None, model: dict[str, Any], definition: dict[str, Any], note: str,
            choices: dict[str, Any], may_save: bool) -> Any:
    save = dmc.Button("Save segment", id="segments-save", disabled=not may_save)
    tabs = dmc.Tabs([
        dmc.TabsList([dmc.TabsTab("Builder", value="builder"), dmc.TabsTab("JSON", value="json")]),
        dmc.TabsPanel(dmc.Stack([
            html.Div(builder.render(model, choices), id="segments-builder"),
            dmc.Group([dmc.Button("+ condition", id="segments-add-condition", variant="light", size="xs"),
                       dmc.Button("+ group", id="segments-add-group", variant="subtle", size="xs")],
                       gap="xs"),
        ], gap="sm", pt="sm"), value="builder"),
        dmc.TabsPanel(dmc.Stack([
            dmc.JsonInput(id="segments-json", value=json.dumps(definition, indent=2), autosize=True,
                          minRows=8, maxRows=30, formatOnBlur=True, debounce=600,
                          validationError="not valid JSON"),
            html.Div(id="segments-json-error"),
            dmc.Group([dmc.Button("Use in the builder", id="segments-json-apply", variant="light", size="xs"),
                       dmc.Text("Schema: schemas/segment.schema.json, examples: schemas/examples/segments/",
                                size="xs", c="dimmed")]),
        ], gap="sm", pt="sm"), value="json"),
    ], value="json" if note else "builder", id="segments-tabs")
    return dmc.Paper(dmc.Stack([
        dmc.Group([
            dmc.TextInput(id="segments-name", value=loaded[1] if loaded else "", placeholder="Segment name",
                          w=320, label="Name",
                          description="another name saves a copy" if loaded else "what rules will call it"),
            dmc.Stack([save, dmc.Text("" if may_save else "viewers may preview but not save", size="xs",
                                      c="dimmed")], gap=2),
        ], justify="space-between", align="flex-end"),
        dmc.Alert(note, color="yellow", variant="light") if note else html.Div(),
        html.Div(id="segments-save-result"),
        tabs,
    ], gap="sm"), p="md", withBorder=True)


def _preview() -> Any:
    return dmc.Paper(dmc.Stack([
        html.Div("Members now", className="panel-title"),
        dcc.Loading(html.Div(id="segments-live"), type="dot", delay_show=250),
    ], gap="xs"), p="md", withBorder=True, className="crm-rows segb-preview")


def _live(definition: Any) -> Any:
    """The draft's size and a sample of its members, or the schema's message for an incomplete draft."""
    store = reader()
    try:
        validate_definition(definition)
        size = segment_size(store, definition)
        sample = segment_members(store, definition, limit=SAMPLE) if size else []
    except OdnosError as exc:
        return dmc.Alert(exc.message, title="Not a segment yet", color="yellow", variant="light",
                         id="segments-error")
    members = [dcc.Link([
        html.Div([html.Span(name_of(c) or c.email, className="segb-member-name"),
                  None if c.status == "subscribed" else dmc.Badge(c.status, color="gray", variant="light",
                                                                  size="xs")],
                 className="segb-member-line"),
        html.Div(c.email, className="segb-member-email") if name_of(c) else None,
    ], href=f"/contacts?{urlencode({'email': c.email})}", id=f"segments-member-{n}", className="segb-member")
        for n, c in enumerate(sample)]
    listed = html.Div(members, className="segb-members") if members else dmc.Text("Nobody matches now.",
                                                                                 c="dimmed", size="sm")
    noun = "contact" if size == 1 else "contacts"
    return dmc.Stack([
        html.Div([html.Span(f"{size:,}", id="segments-size", className="kpi-value"),
                  html.Span(f" {noun}", className="segb-size-unit")]),
        dmc.Text(f"a sample of {len(members)}, in contact id order" if members else "", size="xs",
                 c="dimmed"),
        listed,
    ], gap="xs")


def _draft(tab: str | None, structure: list, values: list, text: str | None) -> Any:
    """The definition being edited: the builder's (``structure`` and ``values``: the ``segb-*`` states),
    or the JSON tab's text parsed; ``OdnosError`` when that text is not JSON."""
    if tab == "json":
        try:
            return json.loads(text or "")
        except json.JSONDecodeError as exc:
            raise OdnosError(f"the JSON is not valid: line {exc.lineno}, column {exc.colno}: {exc.msg}",
                             code="bad_json") from None
    return builder.definition_of(builder.read(structure + values))


def _changed(model: dict[str, Any]) -> dict[str, Any]:
    """``model`` after the button that was clicked (add a row or a group, remove one)."""
    trigger = ctx.triggered_id
    items = [dict(item) for item in model["items"]]
    if trigger == "segments-add-condition":
        items.append(builder.NEW_ROW)
    elif trigger == "segments-add-group":
        items.append({"not": False, "group": "any", "rows": [builder.NEW_ROW, builder.NEW_ROW]})
    elif isinstance(trigger, dict) and trigger.get("type") == "segb-add":
        index = int(trigger["path"])
        items[index] = {**items[index], "rows": [*items[index]["rows"], builder.NEW_ROW]}
    elif isinstance(trigger, dict) and trigger.get("type") == "segb-remove":
        parts = [int(p) for p in trigger["path"].split(".")]
        if len(parts) == 1:
            del items[parts[0]]
        else:
            rows = list(items[parts[0]]["rows"])
            del rows[parts[1]]
            items[parts[0]] = {**items[parts[0]], "rows": rows}
    return {**model, "items": items}


def _allowed() -> bool:
    """Defence in depth: the guard checked the callback's role; check the signed-in user again here."""
    user = current_user()
    return user is not None and access.has_role(user.role, "marketer")


def register(app: Dash) -> None:
    @access.callback(app, Output("segments-builder", "children"), Output("segments-draft", "data"),
                     Output("segments-tabs", "value"), Output("segments-json-error", "children"),
                     Input(STRUCTURE, "value"), Input("segments-add-condition", "n_clicks"),
                     Input("segments-add-group", "n_clicks"),
                     Input({"type": "segb-add", "path": ALL}, "n_clicks"),
                     Input({"type": "segb-remove", "path": ALL}, "n_clicks"),
                     Input("segments-json-apply", "n_clicks"), State(VALUES, "value"),
                     State("segments-draft", "data"), State("segments-json", "value"),
                     State("segments-choices", "data"), prevent_initial_call=True)
    def redraw(*args: Any) -> Any:
        draft, text, choices = args[-3], args[-2], args[-1]
        trigger = ctx.triggered_id
        if trigger == "segments-json-apply":
            try:
                definition = validate_definition(json.loads(text or ""))
            except (json.JSONDecodeError, OdnosError) as exc:
                message = exc.message if isinstance(exc, OdnosError) else f"not valid JSON: {exc.msg}"
                return no_update, no_update, no_update, dmc.Alert(message, color="yellow", variant="light")
            model = builder.model_of(definition)
            if model is None:
                return no_update, no_update, no_update, dmc.Alert(
                    "This definition nests deeper than the builder shows; keep editing it here.",
                    color="yellow", variant="light")
            return builder.render(model, choices), model, "builder", None
        clicked = ctx.triggered[0]["value"] if ctx.triggered else None
        model = builder.read(ctx.states_list[0] + ctx.inputs_list[0])
        if trigger in ("segments-add-condition", "segments-add-group") or (
                isinstance(trigger, dict) and trigger.get("type") in ("segb-add", "segb-remove")):
            if not clicked:
                return no_update, no_update, no_update, no_update  # a button drawn anew, not a click
            model = _changed(model)
        elif model == draft:
            return no_update, no_update, no_update, no_update  # the form was drawn anew: nothing changed
        return builder.render(model, choices), model, no_update, None

    @access.callback(app, Output("segments-json", "value"), Input("segments-tabs", "value"),
                     State(STRUCTURE, "value"), State(VALUES, "value"), prevent_initial_call=True)
    def to_json(tab: str | None, *_: Any) -> Any:
        if tab != "json":
            return no_update
        return json.dumps(builder.definition_of(builder.read(ctx.states_list[0] + ctx.states_list[1])),
                          indent=2)

    @access.callback(app, Output("segments-live", "children"), Input(STRUCTURE, "value"),
                     Input(VALUES, "value"), Input("segments-draft", "data"), Input("segments-tabs", "value"),
                     Input("segments-json", "value"))
    def live(structure: list, values: list, _: Any, tab: str | None, text: str | None) -> Any:
        try:
            definition = _draft(tab, ctx.inputs_list[0], ctx.inputs_list[1], text)
        except OdnosError as exc:
            return dmc.Alert(exc.message, title="Not a segment yet", color="yellow", variant="light",
                             id="segments-error")
        return _live(definition)

    @access.callback(app, Output("url", "search", allow_duplicate=True),
                     Output("segments-save-result", "children"),
                     Input("segments-save", "n_clicks"), State("segments-name", "value"),
                     State("segments-editing", "data"), State("segments-tabs", "value"),
                     State(STRUCTURE, "value"), State(VALUES, "value"), State("segments-json", "value"),
                     role="marketer",
                     prevent_initial_call=True)
    def save(clicks: int | None, name: str | None, editing: str | None, tab: str | None, structure: list,
             values: list, text: str | None) -> Any:
        if not clicks:
            return no_update, no_update
        if not _allowed():
            return no_update, dmc.Alert("Only marketers and admins may save segments.", color="red")
        name = (name or "").strip()
        if not name:
            return no_update, dmc.Alert("Give the segment a name first.", color="yellow", variant="light")
        try:
            definition = _draft(tab, ctx.states_list[3], ctx.states_list[4], text)
            with runtime().control.session() as session:
                segment_id = add_segment(session, name, definition, replace=name == editing).id
                audit.record(session, current_user().email, "segment_saved", name,
                             {"id": segment_id, "at": "dashboard"})
        except OdnosError as exc:
            message = exc.message
            if exc.code == "segment_exists":
                message = f"A segment named “{name}” exists already: open it from the list to change it, " \
                          "or choose another name."
            return no_update, dmc.Alert(message, title="Not saved", color="red", variant="light",
                                        id="segments-save-error")
        return "?" + urlencode({"segment": str(segment_id), "saved": "1"}), None

    @access.callback(app, Output("url", "href", allow_duplicate=True), Input(GRID, "cellClicked"),
                     prevent_initial_call=True)
    def open_segment(cell: dict | None) -> Any:
        segment_id = (cell or {}).get("rowId")
        if not isinstance(segment_id, str) or not segment_id.isdigit():
            return no_update
        return f"{PATH}?{urlencode({'segment': segment_id})}"
