"""Campaigns: every campaign and mailing rule side by side, people and machines apart.

One row per campaign id the events carry (a campaign's id, a rule's ``r<id>``, or an id of another
mail tool's links), named from the control plane where it knows the id. People's opens and clicks
(unique and total) and the rates built on them never include machines; machine opens (Apple Mail
Privacy Protection, image prefetch) and scanner clicks stand in their own column group beside them.
A click on a row opens that campaign's report, ``/campaigns?id=<campaign id>`` (``campaign.py``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import dash_mantine_components as dmc
from dash import Dash, Input, Output, html, no_update

from dashboard import access, components
from dashboard.data import reader, runtime
from dashboard.format import number, percent
from dashboard.pages import campaign
from tracker.errors import OdnosError
from tracker.queries.campaigns.campaign_list import campaign_list
from tracker.queries.campaigns.mailings import mailings

PATH = "/campaigns"
TITLE = "Campaigns"
ROLE = "viewer"
GRID = {"type": "table", "name": "campaigns", "dim": ""}  # the grid components.table makes for "campaigns"

COLUMNS = [
    ("", [("name", "Campaign"), ("sent", "Sent"), ("bounced", "Boun\u00adced"),
          ("unsubscribed", "Unsub\u00adscribed")], ""),
    ("People", [("opened", "Opened"), ("open_rate", "Open %"), ("opens", "Opens, all"),
                ("clicked", "Clicked"), ("click_rate", "Click %"), ("clicks", "Clicks, all"),
                ("click_to_open", "CTOR %")],
     "campaigns-people"),
    ("Machines", [("machine_opens", "Opens"), ("scanner_clicks", "Clicks")], "campaigns-machine"),
    ("Survey", [("nps", "NPS")], ""),
]
_FIGURES = [field for _, columns, _ in COLUMNS for field, _ in columns if field not in ("name", "nps")]


def layout(query: dict[str, str]) -> Any:
    if "id" in query:
        return campaign.layout(query)
    unknown = sorted(set(query) - {"site"})
    try:
        if unknown:
            raise OdnosError(f"unknown parameter {unknown[0][:40]!r}; open a campaign with ?id=<campaign id>",
                             code="bad_parameter")
        known = mailings(runtime().control)
        stats = {row.campaign_id: row for row in campaign_list(reader())}
    except OdnosError as exc:
        return components.problem(exc)
    rows = [_row(m.campaign_id, m.name if m.kind == "campaign" else f"{m.name} (rule)",
                 stats.get(m.campaign_id)) for m in known]
    named = {m.campaign_id for m in known}
    rows += [_row(cid, f"{cid} (other tool)", row) for cid, row in stats.items() if cid not in named]
    total = {field: sum(getattr(row, field) for row in stats.values())
             for field in ("sent", "delivered", "opened", "clicked", "machine_opens", "scanner_clicks")}
    sending = sum(1 for row in stats.values() if row.sent)
    cards = [
        components.stat_card("campaigns_sent", "Emails sent", number(total["sent"]),
                             f"by {sending} campaigns and rules"),
        components.stat_card("campaigns_opened", "Opened by people", number(total["opened"]),
                             f"{_share(total['opened'], total['delivered'])} of delivered"),
        components.stat_card("campaigns_clicked", "Clicked by people", number(total["clicked"]),
                             f"{_share(total['clicked'], total['delivered'])} of delivered"),
        components.stat_card("campaigns_machine_opens", "Machine opens", number(total["machine_opens"]),
                             "privacy proxies and prefetch, not people", tone="machine"),
        components.stat_card("campaigns_scanner_clicks", "Scanner clicks", number(total["scanner_clicks"]),
                             "link scanners, not people", tone="machine"),
    ]
    body = (components.grouped_table("campaigns", rows, COLUMNS, height=min(560, 90 + 36 * max(len(rows), 3)),
                                     clickable=True, row_id="campaign_id")
            if rows else dmc.Text("No campaign yet. Campaigns and mailing rules appear here once they send; "
                                  "`odnos link` and `odnos pixel` track another mail tool's messages.",
                                  c="dimmed", id="campaigns-empty"))
    return dmc.Stack([
        dmc.Title("Campaigns", order=2),
        dmc.Text("People's opens and clicks never include machines: Apple Mail Privacy Protection, image "
                 "prefetch and link scanners are counted apart, in orange. Rates are over delivered "
                 "messages; an open counts whoever clicked, even with images off.", size="sm", c="dimmed",
                 maw=900),
        dmc.SimpleGrid(cards, cols={"base": 2, "sm": 3, "lg": 5}, spacing="sm"),
        dmc.Paper([dmc.Group([html.Div("Every campaign and rule", className="panel-title"),
                              dmc.Text("click a row for its report", size="xs", c="dimmed")],
                             justify="space-between"), body], p="md", withBorder=True),
    ], gap="md")


def _share(part: int, whole: int) -> str:
    return percent(100.0 * part / whole) if whole else "0%"


def _row(campaign_id: str, name: str, stats: Any) -> dict[str, Any]:
    """A table row: the figures of ``stats`` (zeros for a campaign that has sent nothing yet)."""
    nps = getattr(stats, "nps", None)
    return {"name": name, **{field: getattr(stats, field, 0) for field in _FIGURES},
            "nps": round(nps) if nps is not None else "—", "campaign_id": campaign_id}


def register(app: Dash) -> None:
    @access.callback(app, Output("url", "href", allow_duplicate=True),
                     Input(GRID, "cellClicked"), prevent_initial_call=True)
    def open_campaign(cell: dict | None) -> Any:
        campaign_id = (cell or {}).get("rowId")  # the grid's row ids are the campaign ids
        if not isinstance(campaign_id, str) or not campaign_id:
            return no_update
        return f"{PATH}?{urlencode({'id': campaign_id})}"

    campaign.register(app)
