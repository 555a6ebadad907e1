"""Overview: a site's headline numbers against the previous period, their series, and the top lists.

One page a site owner reads at a glance, like Plausible's: six KPI cards (click one to chart it),
the series with the previous period behind it, visitors right now (refreshed), and the top pages,
sources, countries (a map and a list) and devices; a click on a row filters the whole view by it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import dash_mantine_components as dmc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboard import access, components, figures
from dashboard.data import ask_all, reader, view_of
from dashboard.format import duration, number, percent
from tracker.errors import OdnosError
from tracker.queries.site.countries import countries
from tracker.queries.site.devices import devices
from tracker.queries.site.overview_kpis import overview_kpis
from tracker.queries.site.realtime import realtime_visitors
from tracker.queries.site.sources import sources
from tracker.queries.site.timeseries import timeseries
from tracker.queries.site.top_pages import top_pages

PATH = "/"
TITLE = "Overview"
ROLE = "viewer"

KPIS = {  # name: (label, format, lower is better, change in points)
    "visitors": ("Unique visitors", number, False, False),
    "visits": ("Visits", number, False, False),
    "pageviews": ("Pageviews", number, False, False),
    "views_per_visit": ("Views per visit", lambda v: f"{v:.2f}", False, False),
    "bounce_rate": ("Bounce rate", percent, True, True),
    "visit_duration": ("Visit duration", duration, False, False),
}


def layout(query: dict[str, str]) -> Any:
    try:
        view, known = view_of(query)
        store = reader()
        metric = "visitors"
        site, period, filters = view.site_id, view.period, view.filters
        answers = ask_all({
            "kpis": lambda: overview_kpis(store, site, period, filters),
            "series": lambda: timeseries(store, site, period, filters, metric),
            "pages": lambda: top_pages(store, site, period, filters),
            "sources": lambda: sources(store, site, period, filters),
            "countries": lambda: countries(store, site, period, filters),  # all of them, for the map
            "device": lambda: devices(store, site, period, filters),
            "browser": lambda: devices(store, site, period, filters, dimension="browser"),
            "os": lambda: devices(store, site, period, filters, dimension="os"),
        })
    except OdnosError as exc:
        return components.problem(exc)
    kpis, pages, by_source, by_country = (answers[k] for k in ("kpis", "pages", "sources", "countries"))
    by_device, by_browser, by_os = (answers[k] for k in ("device", "browser", "os"))
    cards = [html.Div(components.kpi_card(k.name, KPIS[k.name][0], KPIS[k.name][1](k.value), k.change,
                                          lower_is_better=KPIS[k.name][2], points=KPIS[k.name][3]),
                      id={"type": "kpi-pick", "metric": k.name}, n_clicks=0, className="kpi-pick")
             for k in kpis.kpis()]
    return dmc.Stack([
        dmc.Group([dmc.Title("Overview", order=2), html.Div(id="overview-live", className="live")],
                  justify="space-between"),
        components.filter_bar(view, known),
        dmc.SimpleGrid(cards, cols={"base": 2, "sm": 3, "lg": 6}, spacing="sm"),
        dmc.Paper([html.Div(KPIS[metric][0], className="panel-title", id="overview-metric-title"),
                   dcc.Graph(id="overview-series", figure=_series_figure(answers["series"], metric),
                             config={"displayModeBar": False, "responsive": True})],
                  p="md", withBorder=True),
        dmc.Grid([
            components.panel("Top pages", components.table("top_pages", pages, [
                ("page", "Page"), ("visitors", "Visitors"), ("pageviews", "Pageviews"),
                ("time_on_page", "Seconds on page")], filter_dim="page")),
            components.panel("Sources", components.table("sources", by_source, [
                ("value", "Source"), ("visitors", "Visitors"), ("visits", "Visits"),
                ("bounce_rate", "Bounce %"), ("visit_duration", "Duration s")],
                filter_dim="referrer_source")),
            components.panel("Countries", dmc.Tabs([
                dmc.TabsList([dmc.TabsTab("Map", value="map"), dmc.TabsTab("List", value="list")]),
                dmc.TabsPanel(components.country_map("overview-map", by_country, height=290), value="map"),
                dmc.TabsPanel(components.table("countries", by_country[:10], [
                    ("value", "Country"), ("visitors", "Visitors"), ("pageviews", "Pageviews")],
                    filter_dim="country", height=290), value="list"),
            ], value="map", keepMounted=False)),  # a hidden tab's grid is drawn when it is shown
            components.panel("Devices", dmc.Tabs([
                dmc.TabsList([dmc.TabsTab("Device", value="device"), dmc.TabsTab("Browser", value="browser"),
                              dmc.TabsTab("OS", value="os")]),
                dmc.TabsPanel(_breakdown("devices", by_device, "device", "Device"), value="device"),
                dmc.TabsPanel(_breakdown("browsers", by_browser, "browser", "Browser"), value="browser"),
                dmc.TabsPanel(_breakdown("os", by_os, "os", "Operating system"), value="os"),
            ], value="device", keepMounted=False)),
        ], gutter="md"),
        dcc.Interval(id="overview-tick", interval=15_000),
        dcc.Store(id="overview-site", data=view.site_id),
    ], gap="md")


def _breakdown(name: str, rows: list, dim: str, header: str) -> Any:
    return components.table(name, rows, [("value", header), ("visitors", "Visitors"),
                                         ("pageviews", "Pageviews")], filter_dim=dim, height=290)


def _series(view: Any, metric: str) -> Any:
    return _series_figure(timeseries(reader(), view.site_id, view.period, view.filters, metric), metric)


def _series_figure(series: Any, metric: str) -> Any:
    return figures.timeseries([p.start for p in series.points], [p.value for p in series.points],
                              [p.value for p in series.previous], KPIS[metric][0])


def register(app: Dash) -> None:
    @access.callback(app, Output("overview-live", "children"), Input("overview-tick", "n_intervals"),
                     State("overview-site", "data"))
    def live(_: int | None, site_id: str) -> Any:
        now = realtime_visitors(reader(), site_id)
        label = "visitor" if now == 1 else "visitors"
        return [html.Span(className="live-dot"), html.Span(f"{now} {label} in the last 5 minutes",
                                                           id="realtime-visitors")]

    @access.callback(app, Output("overview-series", "figure"), Output("overview-metric-title", "children"),
                     Input({"type": "kpi-pick", "metric": ALL}, "n_clicks"), State("url", "search"),
                     prevent_initial_call=True)
    def pick(clicks: list[int], search: str | None) -> Any:
        if not ctx.triggered_id or not any(clicks):
            return no_update, no_update
        metric = ctx.triggered_id["metric"]
        view, _ = view_of(dict(parse_qsl((search or "").lstrip("?"))))
        return _series(view, metric), KPIS[metric][0]
