"""One campaign's report (``/campaigns?id=<campaign id>``): its numbers, its machines, its click map, and
what the clicks led to on the site.

Drawn by the campaigns page when the URL names an id, so the navigation keeps "Campaigns" lit. The
people's numbers come first; machine opens and scanner clicks follow in their own colour, split by
the detector's reason, so nothing is hidden and nothing is mixed. The click map is the email itself
(the saved template, rendered in a sandboxed frame that runs no script and follows no link) with each
link's clicks on a badge, the links numbered as the mailer numbers them; without a template, the
links' table alone. Then the clickers' later visits and goal conversions on the campaign's site, for
the goals of the URL's ``goals`` parameter (as on the behaviour page) or the site's top custom events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import dash_mantine_components as dmc
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import access, components, figures
from dashboard.data import reader, runtime, sites
from dashboard.pages.behaviour import default_goals, goal_items, goal_label, parse_goals
from tracker.errors import OdnosError
from tracker.queries.campaigns.campaign_followups import Followups, campaign_followups
from tracker.queries.campaigns.campaign_report import CampaignReport, campaign_report
from tracker.queries.campaigns.click_map import LinkRow, click_map
from tracker.queries.campaigns.email_preview import ANCHOR, EmailPreview, email_preview
from tracker.queries.campaigns.mailings import Mailing, mailings
from tracker.queries.period import Period

FOLLOW_DAYS = 30
REASONS = {
    "apple_mpp": "Apple Mail Privacy Protection", "gmail_prefetch": "Gmail image prefetch",
    "scanner_ua": "Link scanner (known agent)", "head_request": "HEAD request (scanner)",
    "too_fast": "Too soon after sending", "burst": "Burst over many links", "bot_ua": "Bot user agent",
    # a bot's own reasons (tracker.enrich.bots), for opens and clicks by crawlers
    "crawler_list": "Known crawler", "headless": "Headless browser", "http_client": "HTTP client",
    "ua_library": "Automation library", "empty_ua": "No user agent",
}
_PARAMETERS = {"id", "goals", "site"}
_CHART = {"displayModeBar": False, "responsive": True}


def layout(query: dict[str, str]) -> Any:
    campaign_id = query.get("id", "")
    try:
        unknown = sorted(set(query) - _PARAMETERS)
        if unknown:
            raise OdnosError(f"unknown parameter {unknown[0][:40]!r}; a campaign's page takes id and goals",
                             code="bad_parameter")
        mailing = next((m for m in mailings(runtime().control) if m.campaign_id == campaign_id), None)
        report = campaign_report(reader(), campaign_id)
        if report is None and mailing is None:
            raise OdnosError(f"There is no campaign {campaign_id[:60]!r}: no campaign or rule has that id "
                             "and no event carries it. Choose one from the list of campaigns.",
                             code="unknown_campaign")
        links = click_map(reader(), campaign_id)
    except OdnosError as exc:
        return dmc.Stack([_back(), components.problem(exc)])
    badges = [dmc.Badge(mailing.kind if mailing else "other mail tool", variant="light")]
    if mailing:
        badges.append(dmc.Badge(mailing.state, variant="outline", color="gray"))
    header = dmc.Stack([
        _back(),
        dmc.Group([dmc.Title(mailing.name if mailing else campaign_id, order=2, id="campaign-name"), *badges],
                  gap="xs"),
        dmc.Text(_subtitle(campaign_id, mailing), size="sm", c="dimmed"),
    ], gap=4)
    if report is None:
        unsent = dmc.Alert("Nothing has been sent for this campaign yet: its numbers appear once it sends.",
                           color="gray", variant="light", id="campaign-unsent")
        return dmc.Stack([header, unsent], gap="md")
    return dmc.Stack([
        header,
        _people(report),
        _machines(report),
        dmc.Grid([_click_map(mailing, links), _followups(query, campaign_id, mailing)], gutter="md"),
    ], gap="md")


def _back() -> Any:
    return dcc.Link("← All campaigns", href="/campaigns", className="campaign-back")


def _subtitle(campaign_id: str, mailing: Mailing | None) -> str:
    parts = [f"campaign id {campaign_id}"]
    if mailing and mailing.sent_at:
        when = "sent" if mailing.kind == "campaign" else "last run"
        parts.insert(0, f"{when} {mailing.sent_at:%Y-%m-%d %H:%M} UTC")
    if mailing is None:
        parts.append("tracked with odnos link / odnos pixel")
    return " · ".join(parts)


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole if whole else 0.0:.1f}%"


def _people(report: CampaignReport) -> Any:
    s, survey = report.stats, report.survey
    nps_note = (f"{survey.promoters} promoters · {survey.passives} passives · {survey.detractors} detractors"
                if survey.responses else "no survey answers")
    card = components.stat_card
    cards = [
        card("sent", "Sent", f"{s.sent:,}", f"to {s.recipients:,} contacts"),
        card("delivered", "Delivered", f"{s.delivered:,}", f"{s.bounced:,} bounced"),
        card("opened", "Opened", f"{s.opened:,}", f"{s.open_rate:.1f}% · {s.opens:,} opens"),
        card("clicked", "Clicked", f"{s.clicked:,}", f"{s.click_rate:.1f}% · {s.clicks:,} clicks"),
        card("click_to_open", "Click-to-open", f"{s.click_to_open:.1f}%", "of those who opened"),
        card("unsubscribed", "Unsubscribed", f"{s.unsubscribed:,}",
             f"{_percent(s.unsubscribed, s.delivered)} of delivered"),
        card("nps", "NPS", f"{survey.nps:+.0f}" if survey.nps is not None else "—", nps_note),
    ]
    return dmc.Stack([dmc.Text("People", className="campaign-section"),
                      dmc.SimpleGrid(cards, cols={"base": 2, "sm": 4, "lg": 7}, spacing="sm")], gap=6)


def _machines(report: CampaignReport) -> Any:
    s = report.stats
    cards = dmc.SimpleGrid([
        components.stat_card("machine_opens", "Machine opens", f"{s.machine_opens:,}",
                             "not counted as opens", tone="machine"),
        components.stat_card("scanner_clicks", "Scanner clicks", f"{s.scanner_clicks:,}",
                             "not counted as clicks", tone="machine"),
    ], cols=2, spacing="sm")
    rows = [{"reason": REASONS.get(m.reason, m.reason or "unknown"), "kind": m.kind, "events": m.events,
             "contacts": m.contacts, "code": m.reason} for m in report.machines]
    if rows:
        figure = figures.bars([f"{r['kind']}: {r['reason']}" for r in rows], [r["events"] for r in rows],
                              height=max(140, 34 * len(rows) + 40), color=figures.MACHINE)
        chart: Any = dcc.Graph(id="campaign-machines-chart", config=_CHART, figure=figure)
        table = components.table("campaign_machines", rows, [
            ("reason", "Why it is a machine"), ("kind", "Kind"), ("events", "Events"),
            ("contacts", "Contacts")], height=min(260, 80 + 36 * len(rows)))
    else:
        chart = dmc.Text("No machine opened or clicked this campaign.", size="sm", c="dimmed")
        table = html.Div(id="campaign-no-machines")
    why = "privacy proxies, image prefetch and link scanners open and click without a person"
    return dmc.Paper([
        dmc.Group([html.Div("Machines, reported apart", className="panel-title"),
                   dmc.Text(why, size="xs", c="dimmed")], justify="space-between"),
        dmc.Grid([dmc.GridCol(dmc.Stack([cards, table], gap="sm"), span={"base": 12, "md": 6}),
                  dmc.GridCol(chart, span={"base": 12, "md": 6})]),
    ], p="md", withBorder=True, className="campaign-machines")


def _click_map(mailing: Mailing | None, links: list[LinkRow]) -> Any:
    preview: EmailPreview | None = None
    note: Any = dmc.Text("This campaign's template is not known to odnos, so here are its links.", size="sm",
                         c="dimmed", id="campaign-no-template")
    if mailing and mailing.template_id is not None:
        try:
            preview = email_preview(runtime().control, mailing.template_id,
                                    runtime().settings.effective_public_url())
        except OdnosError as exc:
            note = dmc.Alert(f"The email cannot be drawn: {exc.message}", color="yellow", variant="light",
                             id="campaign-email-problem")
    rows = {row.link_id: row for row in links}
    listed = [_link_row(row.link_id, row.target_url, row) for row in links]
    if preview:  # the email's links nobody clicked belong in the table too
        listed += [_link_row(link.link_id, link.target, None) for link in preview.links
                   if link.link_id not in rows]
    table = components.grouped_table("campaign_links", listed, [
        ("", [("link", "Link")], ""),
        ("People", [("clicked", "People"), ("clicks", "Clicks")], "campaigns-people"),
        ("Machines", [("scanner_clicks", "Clicks")], "campaigns-machine"),
    ], height=min(420, 96 + 36 * max(len(listed), 2)))
    if preview is None:
        body: Any = dmc.Stack([note, table], gap="xs")
    else:
        frame = html.Iframe(srcDoc=preview.html + _badges(preview, rows), sandbox="", id="campaign-email",
                            title="the email with each link's clicks", className="campaign-email")
        caption = "Drawn for a sample contact; the frame runs no script and opens no link."
        email = dmc.Stack([dmc.Text(f"Subject: {preview.subject}", size="sm", fw=600), frame,
                           dmc.Text(caption, size="xs", c="dimmed")], gap=6)
        body = dmc.Grid([dmc.GridCol(email, span={"base": 12, "lg": 7}),
                         dmc.GridCol(table, span={"base": 12, "lg": 5})])
    return components.panel("Click map", body, span=12, extra=dmc.Text(
        "people's clicks on each link; scanners apart", size="xs", c="dimmed"))


def _link_row(link_id: str, target: str, row: LinkRow | None) -> dict[str, Any]:
    """A row of the links' table; the second and later links to one URL are told apart (``-2``...)."""
    _, dash, nth = link_id.rpartition("-")
    place = f" · link {nth} to it" if dash and nth.isdigit() else ""
    return {"link": target.split("://", 1)[-1] + place, "clicked": row.clicked if row else 0,
            "clicks": row.clicks if row else 0, "scanner_clicks": row.scanner_clicks if row else 0,
            "link_id": link_id, "target_url": target}


def _badges(preview: EmailPreview, rows: dict[str, LinkRow]) -> str:
    """A stylesheet putting each link's clicks on a badge after it; deeper for more-clicked links.

    Selectors name only the mailer's link ids (hex digits and a suffix) and the contents are numbers,
    so nothing of the template or the events is pasted into it.
    """
    most = max((row.clicks for row in rows.values()), default=0) or 1
    rules = [f'a[href^="#{ANCHOR}"]{{outline:2px dashed rgba(59,75,216,.45);outline-offset:2px}}',
             f'a[href^="#{ANCHOR}"]::after{{display:inline-block;margin:0 0 0 6px;padding:1px 7px;'
             "border-radius:9px;font:600 11px/16px system-ui,sans-serif;color:#fff;text-decoration:none;"
             "vertical-align:middle;white-space:nowrap;letter-spacing:0;text-transform:none}"]
    for link in preview.links:
        row = rows.get(link.link_id)
        clicks, people = (row.clicks, row.clicked) if row else (0, 0)
        label = (f"{clicks} click{'' if clicks == 1 else 's'} · "
                 f"{people} {'person' if people == 1 else 'people'}")
        rules.append(f'a[href="{link.url}"]::after{{content:"{label}";'
                     f"background:rgba(59,75,216,{0.35 + 0.65 * clicks / most:.2f})}}")
    return "<style>" + "".join(rules) + "</style>"


def _site_of(query: dict[str, str], mailing: Mailing | None, known: list[tuple[str, str]]) -> str:
    """The site whose visits follow the clicks: the URL's, the campaign's, or the first one."""
    if query.get("site"):
        return query["site"]
    if mailing and mailing.site_id:
        return mailing.site_id
    return known[0][0] if known else ""


def _followups(query: dict[str, str], campaign_id: str, mailing: Mailing | None) -> Any:
    known = sites()
    site_id = _site_of(query, mailing, known)
    text = query.get("goals", "")
    chosen = goal_items(text)
    try:
        if site_id not in dict(known):
            raise OdnosError(f"There is no site {site_id[:40]!r} to follow the clicks on.",
                             code="unknown_site")
        today = datetime.now(UTC).date()
        targets = parse_goals(text) if text else default_goals(
            reader(), site_id, Period.days(today - timedelta(days=FOLLOW_DAYS - 1), today))
        chosen = [f"{goal.kind}:{goal.value}" for goal in targets]
        found = campaign_followups(reader(), site_id, campaign_id, targets, days=FOLLOW_DAYS)
        result = _followup_result(found)
    except OdnosError as exc:
        result = dmc.Alert(exc.message, title="This cannot be shown", color="yellow", variant="light",
                           id="campaign-followups-problem")
    editor = dmc.Group([
        dmc.TagsInput(id="campaign-goals-input", value=chosen, size="xs", clearable=True, style={"flex": 1},
                      placeholder="goals: page:/signup or event:signup",
                      comboboxProps={"withinPortal": True}),
        dmc.Button("Apply", id="campaign-goals-apply", size="xs", n_clicks=0),
    ], gap="xs", wrap="nowrap")
    explain = (f"visits and goals of the people who clicked, up to {FOLLOW_DAYS} days after their first "
               "click")
    return components.panel(f"After the click, on {dict(known).get(site_id, site_id)}",
                            dmc.Stack([editor, result], gap="sm"), span=12,
                            extra=dmc.Text(explain, size="xs", c="dimmed"))


def _followup_result(found: Followups) -> Any:
    clickers = f"of {found.clicked:,} clickers"
    cards = dmc.SimpleGrid([
        components.stat_card("followup_clicked", "Clicked", f"{found.clicked:,}", "people who clicked"),
        components.stat_card("followup_visited", "Came to the site", f"{found.visited:,}",
                             f"{_percent(found.visited, found.clicked)} {clickers}"),
        components.stat_card("followup_visits", "Visits", f"{found.visits:,}", "by those people"),
        components.stat_card("followup_pageviews", "Pageviews", f"{found.pageviews:,}", "by those people"),
    ], cols={"base": 2, "md": 4}, spacing="sm")
    rows = [{"goal": goal_label(g.goal), "contacts": g.contacts, "conversions": g.conversions,
             "rate": 100.0 * g.contacts / found.clicked if found.clicked else 0.0} for g in found.goals]
    if not rows:
        empty = dmc.Text("No goals: add one such as page:/signup or event:signup.", size="sm", c="dimmed")
        return dmc.Stack([cards, empty], gap="sm")
    return dmc.Stack([cards, components.table("campaign_goals", rows, [
        ("goal", "Goal"), ("contacts", "People"), ("conversions", "Times"), ("rate", "% of clickers")],
        height=min(260, 90 + 36 * max(len(rows), 2)))], gap="sm")


def register(app: Dash) -> None:
    @access.callback(app, Output("url", "search", allow_duplicate=True),
                     Input("campaign-goals-apply", "n_clicks"), State("campaign-goals-input", "value"),
                     State("url", "search"), prevent_initial_call=True)
    def apply_goals(clicks: int, chosen: list[str] | None, search: str | None) -> Any:
        """The URL with the chosen goals (the rest of it kept); the router draws the page again."""
        if not clicks:
            return no_update
        query = {k: v for k, v in parse_qsl((search or "").lstrip("?"))
                 if k in _PARAMETERS and k != "goals"}
        if chosen:
            query["goals"] = ",".join(chosen)
        new = "?" + urlencode(query)
        return no_update if new == (search or "") else new
