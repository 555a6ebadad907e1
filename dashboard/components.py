"""The pieces every page is built from: the filter bar, KPI cards, panels and data tables.

Tables are AG Grid (sorting, CSV export, row clicks come with it). A table whose rows are values
of a filter dimension filters the whole view by the clicked row: the grid's ``cellClicked``
goes to one callback (``register``) that writes the URL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import dash_ag_grid as dag
import dash_mantine_components as dmc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, get_asset_url, html, no_update

from dashboard import access, figures
from dashboard.view import FILTER_LABELS, PRESET_LABELS, View
from tracker.errors import OdnosError


def filter_bar(view: View, sites: Sequence[tuple[str, str]], *, period: bool = True) -> Any:
    """Site, date range and the active filters (each removable); writes the URL through callbacks."""
    controls = [dmc.Select(id="filter-site", data=[{"value": i, "label": n} for i, n in sites],
                           value=view.site_id, w=200, allowDeselect=False, searchable=len(sites) > 8,
                           comboboxProps={"withinPortal": True})]
    if period:
        controls += [
            dmc.SegmentedControl(id="filter-period", value=view.preset, size="sm",
                                 data=[{"value": k, "label": v} for k, v in PRESET_LABELS.items()]),
            dmc.DatePickerInput(id="filter-range", type="range", w=250, valueFormat="YYYY-MM-DD",
                                value=[f"{view.period.start:%Y-%m-%d}", f"{view.last_day:%Y-%m-%d}"],
                                allowSingleDateInRange=True),
        ]
    chips = [dmc.Badge([f"{FILTER_LABELS[name]}: {value} ",
                        html.Span("×", id={"type": "filter-remove", "dim": name}, className="chip-x",
                                  n_clicks=0, title="remove this filter")],
                       variant="light", size="lg", radius="sm", id=f"chip-{name}")
             for name, value in view.filters.active().items()]
    return html.Div(dmc.Group([*controls, *chips], gap="sm"), className="filterbar")


def kpi_card(name: str, label: str, value: str, change: float | None, *, lower_is_better: bool = False,
             points: bool = False) -> Any:
    """One headline number with its change against the previous period."""
    if change is None:
        delta, css = "no earlier data", "kpi-change-flat"
    else:
        unit = " pts" if points else "%"
        arrow = "▲" if change > 0 else ("▼" if change < 0 else "•")
        good = (change < 0) if lower_is_better else (change > 0)
        css = "kpi-change-flat" if change == 0 else ("kpi-change-up" if good else "kpi-change-down")
        # past +999 % a ratio reads better: from 30 to 3,000 is "101×", not "9900.0%"
        delta = f"{arrow} {abs(change):.1f}{unit}" if abs(change) < 1000 or points else \
            f"{arrow} {change / 100 + 1:,.0f}×"
    return dmc.Paper([dmc.Text(label, size="xs", c="dimmed", tt="uppercase", fw=600),
                      html.Div(value, className="kpi-value", id=f"kpi-{name}"),
                      html.Div(delta, className=css, id=f"kpi-{name}-change")],
                     p="md", withBorder=True, className="kpi")


def panel(title: str, body: Any, *, extra: Any = None, span: int = 6) -> Any:
    """A titled card in the page's grid (``span`` of 12 columns on a wide screen)."""
    head = dmc.Group([html.Div(title, className="panel-title"), extra] if extra else
                     [html.Div(title, className="panel-title")], justify="space-between")
    return dmc.GridCol(dmc.Paper([head, body], p="md", withBorder=True, h="100%"),
                       span={"base": 12, "md": span})


def table(name: str, rows: Sequence[Any], columns: Sequence[tuple[str, str]], *,
          filter_dim: str | None = None, height: int = 330) -> Any:
    """An AG Grid of dataclass ``rows`` (``columns``: field, header); id ``table-<name>``.

    With ``filter_dim``, a click on a row filters the view by the row's first column: the grid's row
    id, unique because the rows are grouped by that dimension. Other grids let AG Grid number their
    rows (a first column may repeat: a machine reason for opens and for clicks). A CSV button exports
    what the grid holds.
    """
    data = [dataclasses.asdict(row) if dataclasses.is_dataclass(row) else dict(row) for row in rows]
    formats = {0: "odnosCountry(params)"} if filter_dim == "country" else {}  # names, not codes
    defs = [{"field": field, "headerName": header, "flex": 2 if i == 0 else 1, "minWidth": 90,
             "valueFormatter": {"function": formats.get(i, "odnosFormat(params)")},
             **({} if i == 0 else {"type": "rightAligned"})} for i, (field, header) in enumerate(columns)]
    grid = dag.AgGrid(
        id={"type": "table", "name": name, "dim": filter_dim or ""}, rowData=data, columnDefs=defs,
        defaultColDef={"sortable": True, "resizable": True},
        dashGridOptions={"animateRows": False, "suppressCellFocus": True,
                         "rowClass": "clickable" if filter_dim else ""},
        getRowId=_row_id(columns[0][0]) if filter_dim else None,
        csvExportParams={"fileName": f"{name}.csv"}, className="ag-theme-alpine",
        style={"height": height, "width": "100%"},
    )
    export = dmc.Button("CSV", id={"type": "table-export", "name": name}, size="compact-xs",
                        variant="subtle", n_clicks=0)
    return html.Div([html.Div(export, className="table-tools"), html.Div(grid, id=f"table-{name}")])


def _row_id(field: str) -> str:
    """AG Grid's ``getRowId`` for rows keyed by ``field``: always a string, as AG Grid wants row ids."""
    return f"odnosRowId(params.data.{field})"  # dashAgGridFunctions.js


def register(app: Dash) -> None:
    """The filter bar's and the tables' callbacks: they only ever write the URL."""

    @access.callback(app, Output("url", "search", allow_duplicate=True), Input("filter-site", "value"),
                     Input("filter-period", "value"), Input("filter-range", "value"),
                     State("url", "search"), prevent_initial_call=True)
    def choose(site: str | None, preset: str | None, dates: list[str] | None, search: str | None) -> Any:
        view = _current(search)
        if view is None or len(ctx.triggered) > 1:
            # All three at once: Dash calls this when a page draws the bar (its output, the URL, lies
            # outside the page), which then shows the URL's own view; rewriting the URL (adding the
            # default site to a bare "/") would only draw the page a second time.
            return no_update
        changes: dict[str, str | None] = {"site": site}
        if ctx.triggered_id == "filter-range":
            if not dates or len(dates) != 2 or not all(dates):
                return no_update
            changes.update(period="custom", **{"from": dates[0][:10], "to": dates[1][:10]})
        elif ctx.triggered_id == "filter-period" and preset and preset != "custom":
            changes.update(period=preset, **{"from": None, "to": None})
        new = view.query(**changes)
        return no_update if new == view.query() else new

    @access.callback(app, Output("url", "search", allow_duplicate=True),
                     Input({"type": "filter-remove", "dim": ALL}, "n_clicks"), State("url", "search"),
                     prevent_initial_call=True)
    def remove(clicks: list[int], search: str | None) -> Any:
        view = _current(search)
        if view is None or not ctx.triggered_id or not any(clicks):
            return no_update
        return view.query(**{ctx.triggered_id["dim"]: None})

    @access.callback(app, Output("url", "search", allow_duplicate=True),
                     Input({"type": "table", "name": ALL, "dim": ALL}, "cellClicked"), State("url", "search"),
                     prevent_initial_call=True)
    def filter_by_row(cells: list[dict | None], search: str | None) -> Any:
        view = _current(search)
        trigger = ctx.triggered_id
        if view is None or not trigger or not trigger.get("dim"):
            return no_update
        cell = next((c for c, item in zip(cells, ctx.inputs_list[0], strict=False)
                     if item["id"] == trigger and c), None)
        first = cell and cell.get("rowId")  # the grid's row id is the row's first column
        if not isinstance(first, str) or first in ("", "undefined"):
            return no_update
        return view.query(**{trigger["dim"]: first})

    @access.callback(app, Output({"type": "table", "name": ALL, "dim": ALL}, "exportDataAsCsv"),
                     Input({"type": "table-export", "name": ALL}, "n_clicks"), prevent_initial_call=True)
    def export(clicks: list[int]) -> Any:
        trigger = ctx.triggered_id
        return [bool(trigger) and item["id"]["name"] == trigger["name"] and bool(any(clicks))
                for item in ctx.outputs_list]


def _current(search: str | None) -> View | None:
    """The view of the URL the browser shows (the filter bar only ever edits a valid one)."""
    query = dict(parse_qsl((search or "").lstrip("?")))
    try:
        return View.parse(query, default_site=query.get("site", ""))
    except OdnosError:
        return None



def problem(error: OdnosError) -> Any:
    """A page's answer to a URL it cannot show (a bad date range, an unknown site): what and how to fix."""
    return dmc.Alert(error.message, title="This view cannot be shown", color="yellow", variant="light",
                     id="page-problem", maw=640)


def grouped_table(name: str, rows: Sequence[Any],
                  groups: Sequence[tuple[str, Sequence[tuple[str, str]], str]], *, height: int = 330,
                  clickable: bool = False, row_id: str = "") -> Any:
    """``table`` with its columns under group headers: ``groups`` are (header, columns, CSS class).

    A group with an empty header leaves its columns ungrouped; the class colours the group's header
    and cells (people and machines apart, say). Many narrow columns fit: headers wrap. ``clickable``
    marks rows as links for the page's own ``cellClicked`` callback (the row does not filter the view);
    ``row_id`` names the row field a click reports as its ``rowId`` (a click carries no row data).
    """
    wrapper = table(name, rows, [column for _, columns, _ in groups for column in columns], height=height)
    grid = wrapper.children[1].children
    defs = iter(grid.columnDefs)
    pin = {"pinned": "left"} if len(grid.columnDefs) > 8 else {}  # a wide table scrolls under its names
    grouped: list[dict[str, Any]] = []
    for header, columns, css in groups:
        children = []
        for _ in columns:
            column = {**next(defs), "wrapHeaderText": True, "autoHeaderHeight": True}
            right = column.get("type") == "rightAligned"  # explicit classes replace the type's own
            column.update(minWidth=66 if right else 160, **({} if right else pin),
                          cellClass=" ".join(filter(None, [css, right and "ag-right-aligned-cell"])),
                          headerClass=" ".join(filter(None, [css, right and "ag-right-aligned-header"])))
            children.append(column)
        grouped += [{"headerName": header, "headerClass": css, "children": children}] if header else children
    grid.columnDefs = grouped
    wrapper.className = "table-grouped"
    if clickable:
        grid.dashGridOptions = {**grid.dashGridOptions, "rowClass": "clickable"}
    if row_id:
        grid.getRowId = _row_id(row_id)
    return wrapper


def stat_card(name: str, label: str, value: str, note: str = "", *, tone: str = "") -> Any:
    """A headline number with a note under it instead of a change (a campaign's rate, say); id ``kpi-<name>``.

    ``tone`` ("machine") colours the card as what is reported apart from people.
    """
    return dmc.Paper([dmc.Text(label, size="xs", c="dimmed", tt="uppercase", fw=600),
                      html.Div(value, className="kpi-value", id=f"kpi-{name}"),
                      html.Div(note, className="kpi-note", id=f"kpi-{name}-note")],
                     p="md", withBorder=True, className=f"kpi kpi-{tone}" if tone else "kpi")


def record_table(name: str, rows: Sequence[Any], columns: Sequence[tuple[str, str]], *,
                 widths: dict[str, int] | None = None, classes: dict[str, dict[str, str]] | None = None,
                 clickable: bool = False, row_id: str = "", height: int = 330) -> Any:
    """``table`` for records (contacts, rules, sends) rather than figures: text columns left-aligned.

    ``widths`` gives a column's flex share (default 1), ``classes`` its AG Grid ``cellClassRules``
    (class -> JavaScript condition on ``params.value``), and ``clickable`` marks rows as links for
    the page's own ``cellClicked`` callback, which finds the row by its ``rowId``: the row field
    ``row_id`` names. A column whose first value is a number stays right-aligned.
    """
    wrapper = table(name, rows, columns, height=height)
    grid = wrapper.children[1].children
    first = grid.rowData[0] if grid.rowData else {}
    for column in grid.columnDefs:
        field = column["field"]
        if not isinstance(first.get(field), int | float) or isinstance(first.get(field), bool):
            column.pop("type", None)
        column["flex"] = (widths or {}).get(field, 1)
        column["minWidth"] = 60 + 30 * column["flex"]
        if classes and field in classes:
            column["cellClassRules"] = classes[field]
    if clickable:
        grid.dashGridOptions = {**grid.dashGridOptions, "rowClass": "clickable"}
    if row_id:
        grid.getRowId = _row_id(row_id)
    return wrapper


def country_map(graph_id: str, rows: Sequence[Any], *, height: int = 300) -> Any:
    """Visitors by country (rows with ``value``, an alpha-2 code, and ``visitors``) on a world map.

    Plotly fetches the map's shapes when it draws; ``topojsonURL`` points it at the copy in
    ``assets/topojson/`` (its CDN is off limits: the CSP and offline installs forbid it).
    """
    if not rows:
        return dmc.Text("No visits in this period.", c="dimmed", size="sm", id=graph_id)
    figure = figures.country_map([r.value for r in rows], [r.visitors for r in rows], height=height)
    return dcc.Graph(id=graph_id, figure=figure,
                     config={"displayModeBar": False, "responsive": True, "scrollZoom": False,
                             "topojsonURL": get_asset_url("topojson/")},
                     style={"height": height})
