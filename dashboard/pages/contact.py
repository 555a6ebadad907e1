"""One contact's profile (``/contacts?email=...``): who they are, their consent, and what they did.

Drawn by the contacts page when the URL names an address, so the navigation keeps "Contacts" lit.
The header says who (name, address, consent, tags); beside the timeline are the attributes, the
consent state with its history and the visitors linked to the contact. The timeline is
``tracker.crm.contacts.profile``'s, newest first, grouped by day: every email sent, opened and
clicked, each visit after the hand-off, custom events and consent changes. Machine opens, scanner
clicks and bots stay in it, marked in orange, because hiding them would hide what really happened.

Marketers may unsubscribe the contact (from every list, for good: nobody is subscribed again by
odnos); admins may erase the person, after typing the address to confirm.
"""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from typing import Any
from urllib.parse import parse_qsl, urlencode

import dash_mantine_components as dmc
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboard import access, components
from dashboard.data import reader, runtime, sites
from dashboard.pages.campaign import REASONS
from tracker import audit
from tracker.auth import current_user
from tracker.contacts import contact_id_for, normalize_email
from tracker.crm.consent import erasure_hash
from tracker.crm.contacts import Profile, profile, set_status
from tracker.crm.erase import erase_contact
from tracker.crm.model import ConsentStatus
from tracker.errors import OdnosError
from tracker.queries.campaigns.mailings import mailings
from tracker.queries.contacts.contact_timeline import TimelineEntry

PATH = "/contacts"
DEFAULT_LIMIT = 200
MAX_LIMIT = 5000
CONSENT_COLOURS = {"subscribed": "green", "unsubscribed": "gray", "bounced": "red", "complained": "orange"}
# Timeline kinds: the filter's choices, and which events each holds.
KINDS = {"email": ("email_sent", "email_open", "email_click", "survey_response"),
         "visits": ("pageview", "identify"), "consent": ("consent", "unsubscribe")}
KIND_LABELS = {"all": "Everything", "email": "Email", "visits": "Visits", "events": "Custom events",
               "consent": "Consent"}
_OWN = {"email", "limit", "back", "done"}


def kind_of(name: str) -> str:
    """The timeline filter an event name belongs to (``events`` for custom events)."""
    return next((kind for kind, names in KINDS.items() if name in names), "events")


def layout(query: dict[str, str]) -> Any:
    try:
        unknown = sorted(set(query) - _OWN)
        if unknown:
            raise OdnosError(f"unknown parameter {unknown[0][:40]!r} for a contact's profile",
                             code="bad_parameter")
        limit = query.get("limit", str(DEFAULT_LIMIT))
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            raise OdnosError(f"limit {limit[:20]!r} must be a number of events from 1 to {MAX_LIMIT}",
                             code="bad_parameter")
        email = normalize_email(query["email"])
        found = profile(reader(), runtime().control, email, limit=int(limit))
        names = {m.campaign_id: m.name for m in mailings(runtime().control)}
        site_names = dict(sites())
    except OdnosError as exc:
        return dmc.Stack([_back(query), components.problem(exc)])
    user = current_user()
    role = user.role if user else "viewer"
    person = found.contact
    return dmc.Stack([
        _back(query),
        *_done(query.get("done", "")),
        _header(found, role),
        dmc.Grid([
            dmc.GridCol(dmc.Stack([_attributes(found), _consent(found), _visitors(found, site_names)],
                                  gap="md"), span={"base": 12, "md": 4}),
            dmc.GridCol(_timeline(found, names, site_names, query), span={"base": 12, "md": 8}),
        ], gutter="md"),
        _unsubscribe_modal(person.email),
        _erase_modal(person.email) if access.has_role(role, "admin") else html.Div(),
        dcc.Store(id="contact-email", data=person.email),
    ], gap="md")


def _back(query: dict[str, str]) -> Any:
    back = query.get("back", "")
    target = PATH + (f"?{urlencode(dict(parse_qsl(back)))}" if back else "")
    return dcc.Link("← Contacts", href=target, className="crm-back", id="contact-back")


def _done(done: str) -> list[Any]:
    if done != "unsubscribed":
        return []
    return [dmc.Alert("The contact is unsubscribed from every list: no rule or campaign mails them again.",
                      title="Unsubscribed", color="green", variant="light", id="contact-done",
                      withCloseButton=True)]


def _initials(first: str, last: str, email: str) -> str:
    letters = (first[:1] + last[:1]) or email[:1]
    return letters.upper()


def _header(found: Profile, role: str) -> Any:
    person = found.contact
    name = " ".join(p for p in (person.first_name, person.last_name) if p)
    badges = [dmc.Badge(person.status, color=CONSENT_COLOURS.get(person.status, "gray"), variant="light",
                        id="contact-consent")]
    badges += [dmc.Badge(tag, variant="outline", color="indigo", radius="sm") for tag in person.tags]
    actions = []
    if access.has_role(role, "marketer"):
        actions.append(dmc.Button("Unsubscribe", id="contact-unsubscribe-open", variant="default", size="sm",
                                  disabled=person.status != ConsentStatus.subscribed))
    if access.has_role(role, "admin"):
        actions.append(dmc.Button("Erase…", id="contact-erase-open", color="red", variant="light", size="sm"))
    created = f"{person.created_at:%Y-%m-%d}" if person.created_at else "—"
    return dmc.Paper(dmc.Group([
        dmc.Group([
            dmc.Avatar(_initials(person.first_name, person.last_name, person.email), size="lg", radius="xl",
                       color="indigo"),
            dmc.Stack([
                dmc.Title(name or person.email, order=2, id="contact-name"),
                dmc.Group([dmc.Text(person.email, c="dimmed", id="contact-address"), *badges], gap="xs"),
                dmc.Text(f"from {person.source or 'unknown'} · created {created} · contact id "
                         f"{person.contact_id}", size="xs", c="dimmed"),
            ], gap=4),
        ], gap="md", wrap="nowrap"),
        dmc.Group(actions, gap="xs"),
    ], justify="space-between", align="flex-start"), p="lg", withBorder=True)


def _card(title: str, body: Any, **kwargs: Any) -> Any:
    return dmc.Paper([html.Div(title, className="panel-title"), body], p="md", withBorder=True, **kwargs)


def _attributes(found: Profile) -> Any:
    attrs = sorted(found.contact.attrs.items())
    if not attrs:
        return _card("Attributes", dmc.Text("No attributes.", c="dimmed", size="sm"))
    rows = [dmc.TableTr([dmc.TableTd(dmc.Text(key, size="sm", c="dimmed")), dmc.TableTd(value)])
            for key, value in attrs]
    return _card("Attributes", dmc.Table(dmc.TableTbody(rows), id="contact-attributes", fz="sm",
                                         verticalSpacing=4))


def _consent(found: Profile) -> Any:
    person = found.contact
    history = [e for e in reversed(found.timeline.entries) if e.name in KINDS["consent"]]
    left = [f"{lst or 'every list'} ({how})" for lst, how in sorted(found.suppressed.items())]
    items = [dmc.TimelineItem(title=_consent_change(e), children=dmc.Text(f"{e.ts:%Y-%m-%d %H:%M} UTC",
                                                                          size="xs", c="dimmed"))
             for e in history]
    return _card("Consent", dmc.Stack([
        dmc.Group([dmc.Text("Now", size="sm", c="dimmed"),
                   dmc.Badge(person.status, color=CONSENT_COLOURS.get(person.status, "gray"),
                             variant="light")], gap="xs"),
        dmc.Text(f"Not mailed: suppressed on {', '.join(left)}", size="sm") if left else
        dmc.Text("On no suppression list.", size="sm", c="dimmed"),
        dmc.Timeline(items, active=len(items), bulletSize=12, lineWidth=2, id="contact-consent-history")
        if items else dmc.Text("No change recorded: subscribed since the contact was created.", size="sm",
                               c="dimmed"),
    ], gap="xs"))


def _consent_change(entry: TimelineEntry) -> str:
    if entry.name == "unsubscribe":
        where = entry.props.get("list") or "every list"
        return f"Unsubscribed from {where} ({entry.props.get('how') or 'link'})"
    before = entry.props.get("previous") or "new"
    return f"{before} → {entry.props.get('status', '?')} ({entry.props.get('how') or 'import'})"


def _visitors(found: Profile, site_names: dict[str, str]) -> Any:
    if not found.visitors:
        return _card("Linked visitors", dmc.Text("Never identified on a site: visits count once the person "
                                                 "follows a tracked link or the site identifies them.",
                                                 size="sm", c="dimmed"))
    rows = [dmc.Stack([
        dmc.Group([dmc.Text(site_names.get(v.site_id, v.site_id), size="sm", fw=600), dmc.Code(v.visitor_id)],
                  gap="xs"),
        dmc.Text(f"linked by {v.method.replace('_', ' ')} on {v.linked_at:%Y-%m-%d %H:%M}"
                 + ("" if v.current else " · since identified as someone else"), size="xs", c="dimmed"),
    ], gap=2) for v in found.visitors]
    return _card("Linked visitors", dmc.Stack(rows, gap="sm", id="contact-visitors"))


# -- the timeline ---------------------------------------------------------------------------------


def _sender(entry: TimelineEntry, names: dict[str, str]) -> str:
    return names.get(entry.campaign_id, entry.campaign_id and f"campaign {entry.campaign_id}")


def _short_url(url: str) -> str:
    return url.split("://", 1)[-1].split("?", 1)[0]


def describe(entry: TimelineEntry, names: dict[str, str], site_names: dict[str, str]) -> tuple[str, str]:
    """(what happened, a detail line) for one timeline entry, as the profile shows it."""
    props = {k: v for k, v in entry.props.items() if k != "email"}
    sender = _sender(entry, names)
    if entry.name == "email_sent":
        return f"Sent “{sender}”", f"message {entry.message_id}"
    if entry.name == "email_open":
        return f"Opened “{sender}”", f"message {entry.message_id}"
    if entry.name == "email_click":
        return f"Clicked {_short_url(entry.target_url)}", f"in “{sender}”, link {entry.link_id}"
    if entry.name == "survey_response":
        return f"Answered the survey in “{sender}”: {props.get('score', '?')}", props.get("comment", "")
    if entry.name in KINDS["consent"]:
        return _consent_change(entry), ""
    site = site_names.get(entry.site_id, entry.site_id)
    if entry.name == "pageview":
        return f"Visited {entry.hostname}{entry.pathname}", site
    if entry.name == "identify":
        return "Identified on the site", site
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(props.items()))
    return f"Did “{entry.name}”", " · ".join(filter(None, [detail, f"{entry.hostname}{entry.pathname}"]))


def _marker(entry: TimelineEntry) -> Any:
    if entry.is_machine or entry.is_bot:
        kind = "bot" if not entry.is_machine else ("scanner" if entry.name == "email_click" else "machine")
        reason = entry.machine_reason if entry.is_machine else entry.bot_reason
        return dmc.Badge(f"{kind} · {REASONS.get(reason, reason or 'flagged')}", color="orange",
                         variant="light", size="sm", tt="none", className="crm-tl-machine-badge")
    if entry.name in ("email_open", "email_click"):
        return dmc.Badge("person", color="green", variant="dot", size="sm", tt="none")
    return None


ICONS = {"email_sent": "✉", "email_open": "◉", "email_click": "➚", "pageview": "▤", "identify": "☺",
         "consent": "⚑", "unsubscribe": "⚑", "survey_response": "★"}


def _item(index: int, entry: TimelineEntry, names: dict[str, str], site_names: dict[str, str]) -> Any:
    what, detail = describe(entry, names, site_names)
    machine = entry.is_machine or entry.is_bot
    kind = kind_of(entry.name)
    line = html.Div([html.Span(what, className="crm-tl-what"), _marker(entry)], className="crm-tl-line")
    return html.Div([
        html.Div(f"{entry.ts:%H:%M}", className="crm-tl-time"),
        html.Div(ICONS.get(entry.name, "◆"), className=f"crm-tl-icon crm-tl-icon-{kind}"),
        html.Div([line, html.Div(detail, className="crm-tl-detail") if detail else None],
                 className="crm-tl-body"),
    ], id=f"contact-event-{index}",
        className=f"crm-tl-item crm-k-{kind}" + (" crm-tl-machine" if machine else ""),
        **{"data-name": entry.name, "data-machine": "1" if machine else "0", "data-ts": entry.ts.isoformat()})


def _timeline(found: Profile, names: dict[str, str], site_names: dict[str, str],
              query: dict[str, str]) -> Any:
    entries = list(reversed(found.timeline.entries))  # newest first
    counts = Counter(kind_of(e.name) for e in entries)
    choices = [{"value": "all", "label": f"Everything ({len(entries):,})"}]
    choices += [{"value": k, "label": f"{KIND_LABELS[k]} ({counts[k]:,})"}
                for k in ("email", "visits", "events", "consent") if counts[k]]
    machines = sum(1 for e in entries if e.is_machine or e.is_bot)
    days = []
    index = 0
    for day, group in groupby(entries, key=lambda e: e.ts.date()):
        items = []
        for entry in group:
            items.append(_item(index, entry, names, site_names))
            index += 1
        days.append(html.Div([html.Div(f"{day:%A, %d %B %Y}", className="crm-tl-day-title"), *items],
                             className="crm-tl-day"))
    shown = len(entries)
    more = []
    if shown < found.timeline.total:
        wider = {**query, "limit": str(min(MAX_LIMIT, found.timeline.total))}
        more = [dmc.Group([dmc.Text(f"The newest {shown:,} of {found.timeline.total:,} events.", size="sm",
                                    c="dimmed"),
                           dcc.Link("Show all", href=f"{PATH}?{urlencode(wider)}", id="contact-more")])]
    head = dmc.Group([
        html.Div([html.Div("Timeline", className="panel-title"),
                  dmc.Text(f"{found.timeline.total:,} events" + (f" · {machines:,} by machines, marked"
                                                                 if machines else "") + " · times in UTC",
                           size="xs", c="dimmed", id="contact-timeline-total")]),
        dmc.SegmentedControl(id="contact-kind", data=choices, value="all", size="xs"),
    ], justify="space-between", align="flex-start")
    body = (html.Div(days, id="contact-timeline", className="crm-tl crm-show-all") if entries else
            dmc.Text("Nothing yet: no email sent, no visit after a hand-off, no event.", c="dimmed",
                     id="contact-timeline"))
    return dmc.Paper(dmc.Stack([head, body, *more], gap="sm"), p="md", withBorder=True)


# -- consent and erasure --------------------------------------------------------------------------


def _unsubscribe_modal(email: str) -> Any:
    return dmc.Modal(id="contact-unsubscribe-modal", title="Unsubscribe this contact?", opened=False,
                     children=dmc.Stack([
                         dmc.Text(f"{email} will not be mailed again by any rule or campaign. odnos never "
                                  "subscribes anyone again: only the person can, by signing up anew."),
                         html.Div(id="contact-unsubscribe-result"),
                         dmc.Group([dmc.Button("Cancel", id="contact-unsubscribe-cancel", variant="default"),
                                    dmc.Button("Unsubscribe", id="contact-unsubscribe-confirm",
                                               color="dark")], justify="flex-end"),
                     ]))


def _erase_modal(email: str) -> Any:
    return dmc.Modal(id="contact-erase-modal", title="Erase this person?", opened=False, children=dmc.Stack([
        dmc.Text("Every event tied to the address (emails, opens, clicks, the linked visitors' visits) and "
                 "the contact itself are deleted from the event store and the control database. Only a keyed "
                 "hash of the address stays, so that it is never imported or mailed again. This cannot be "
                 "undone."),
        dmc.TextInput(id="contact-erase-typed", label=f"Type {email} to confirm", placeholder=email),
        html.Div(id="contact-erase-result"),
        dmc.Group([dmc.Button("Cancel", id="contact-erase-cancel", variant="default"),
                   dmc.Button("Erase for good", id="contact-erase-confirm", color="red")],
                  justify="flex-end"),
    ]))


def _allowed(role: str) -> bool:
    """Defence in depth: the guard checked the callback's role; check the signed-in user again here."""
    user = current_user()
    return user is not None and access.has_role(user.role, role)


def register(app: Dash) -> None:
    @access.callback(app, Output("contact-timeline", "className"), Input("contact-kind", "value"),
                     prevent_initial_call=True)
    def show_kind(kind: str | None) -> Any:
        return f"crm-tl crm-show-{kind if kind in KIND_LABELS else 'all'}"

    @access.callback(app, Output("contact-unsubscribe-modal", "opened"),
                     Input("contact-unsubscribe-open", "n_clicks"),
                     Input("contact-unsubscribe-cancel", "n_clicks"),
                     prevent_initial_call=True)
    def toggle_unsubscribe(*_: Any) -> Any:
        return ctx.triggered_id == "contact-unsubscribe-open"

    @access.callback(app, Output("contact-erase-modal", "opened"), Input("contact-erase-open", "n_clicks"),
                     Input("contact-erase-cancel", "n_clicks"), prevent_initial_call=True)
    def toggle_erase(*_: Any) -> Any:
        return ctx.triggered_id == "contact-erase-open"

    @access.callback(app, Output("contact-unsubscribe-result", "children"),
                     Output("url", "search", allow_duplicate=True),
                     Input("contact-unsubscribe-confirm", "n_clicks"),
                     State("contact-email", "data"), State("url", "search"), role="marketer",
                     prevent_initial_call=True)
    def unsubscribe(clicks: int | None, email: str | None, search: str | None) -> Any:
        if not clicks or not email:
            return no_update, no_update
        if not _allowed("marketer"):
            return dmc.Alert("Only marketers and admins may change consent.", color="red"), no_update
        try:
            live = runtime()
            set_status(live.store, live.control, live.keys, email, ConsentStatus.unsubscribed.value,
                       how="dashboard")
        except OdnosError as exc:
            return dmc.Alert(exc.message, color="red", title="Not unsubscribed"), no_update
        audit.record_done(live.control, current_user().email, "consent_changed", contact_id_for(email),
                          {"status": ConsentStatus.unsubscribed.value, "at": "dashboard"})
        query = {k: v for k, v in parse_qsl((search or "").lstrip("?")) if k != "done"}
        return no_update, "?" + urlencode({**query, "done": "unsubscribed"})

    @access.callback(app, Output("contact-erase-result", "children"),
                     Input("contact-erase-confirm", "n_clicks"),
                     State("contact-erase-typed", "value"), State("contact-email", "data"), role="admin",
                     prevent_initial_call=True)
    def erase(clicks: int | None, typed: str | None, email: str | None) -> Any:
        if not clicks or not email:
            return no_update
        if not _allowed("admin"):
            return dmc.Alert("Only admins may erase a person.", color="red")
        try:
            same = normalize_email(typed or "") == email
        except OdnosError:
            same = False
        if not same:
            return dmc.Alert(f"Type the address exactly ({email}) to confirm; nothing was erased.",
                             color="yellow", id="contact-erase-mismatch")
        try:
            live = runtime()
            report = erase_contact(live.store, live.control, live.keys, email)
        except OdnosError as exc:
            return dmc.Alert(exc.message, color="red", title="Not erased")
        audit.record_done(live.control, current_user().email, "contact_erased",
                          erasure_hash(live.keys[0], report.email),
                          {"rows": sum(report.rows.values()), "at": "dashboard"})
        rows = ", ".join(f"{table} {count:,}" for table, count in report.rows.items() if count) or "none"
        return dmc.Alert([
            dmc.Text(f"Rows deleted: {rows}. Send-ledger rows kept without the address: "
                     f"{report.ledger_rows:,}."),
            dcc.Link("Back to contacts", href=f"{PATH}?erased=1"),
        ], title="Erased", color="green", id="contact-erased")

