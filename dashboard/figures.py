"""One look for every chart: fonts, colours and margins shared by the dashboard's figures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import pycountry

PRIMARY = "#3b4bd8"
PREVIOUS = "#b9c0ea"
MACHINE = "#f08c00"
FONT = "system-ui, -apple-system, Segoe UI, sans-serif"


def _base(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        height=height, margin={"l": 40, "r": 12, "t": 10, "b": 30}, font={"family": FONT, "size": 12},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", hovermode="x unified",
        showlegend=False,
    )
    fig.update_xaxes(showgrid=False, linecolor="#dde1ee")
    fig.update_yaxes(gridcolor="#eceff6", rangemode="tozero", zeroline=False)
    return fig


def timeseries(x: Sequence[Any], current: Sequence[float], previous: Sequence[float] | None,
               name: str, height: int = 280) -> go.Figure:
    """The period's line with the previous period of the same length as a faint line behind it."""
    fig = go.Figure()
    if previous is not None:
        fig.add_trace(go.Scatter(x=list(x), y=list(previous), name="previous period", mode="lines",
                                 line={"color": PREVIOUS, "width": 1.5, "dash": "dot"}))
    fig.add_trace(go.Scatter(x=list(x), y=list(current), name=name, mode="lines", fill="tozeroy",
                             line={"color": PRIMARY, "width": 2.5}, fillcolor="rgba(59,75,216,0.08)"))
    return _base(fig, height)


def bars(labels: Sequence[str], values: Sequence[float], height: int = 260,
         color: str = PRIMARY) -> go.Figure:
    """Horizontal bars, largest on top (funnels, breakdowns)."""
    fig = go.Figure(go.Bar(x=list(values), y=list(labels), orientation="h", marker={"color": color},
                           text=[f"{v:,.0f}" for v in values], textposition="auto"))
    fig.update_yaxes(autorange="reversed")
    return _base(fig, height)


LOST = "#f1c6c6"


def funnel(labels: Sequence[str], reached: Sequence[int], lost: Sequence[int], rates: Sequence[float],
           height: int = 300) -> go.Figure:
    """A funnel's steps as columns: the visitors who reached each step, and above them those it lost."""
    fig = go.Figure([
        go.Bar(x=list(labels), y=list(reached), name="reached", marker={"color": PRIMARY},
               text=[f"{v:,} · {r:.1f}%" for v, r in zip(reached, rates, strict=True)], textposition="auto",
               hovertemplate="%{y:,} visitors<extra></extra>"),
        go.Bar(x=list(labels), y=list(lost), name="dropped off", marker={"color": LOST},
               hovertemplate="%{y:,} dropped off<extra></extra>"),
    ])
    fig.update_layout(barmode="stack", bargap=0.35)
    return _base(fig, height)


def shade(share: float) -> dict[str, str]:
    """The style of a heat-table cell for ``share`` (0 to 1): deeper for more, white text on deep cells."""
    share = min(1.0, max(0.0, share))
    alpha = 0.06 + 0.84 * share ** 0.6  # the root keeps small shares visible next to week 0's 100 %
    return {"backgroundColor": f"rgba(59,75,216,{alpha:.2f})", "color": "#fff" if alpha > 0.5 else "#1c2140"}


def country_map(codes: Sequence[str], visitors: Sequence[int], height: int = 300) -> go.Figure:
    """Visitors by country on a world map, deeper for more; ``codes`` are ISO 3166 alpha-2 ('' unknown).

    The shapes are keyed by alpha-3 codes; countries too small for the 1:110m map are left off it
    (the table beside it lists them).
    """
    places = [(country, count) for code, count in zip(codes, visitors, strict=True)
              if (country := pycountry.countries.get(alpha_2=code.upper()) if code else None) is not None]
    fig = go.Figure(go.Choropleth(
        locations=[c.alpha_3 for c, _ in places], z=[n for _, n in places], locationmode="ISO-3",
        text=[getattr(c, "common_name", c.name) for c, _ in places],
        hovertemplate="%{text}: %{z:,} visitors<extra></extra>",
        colorscale=[[0, "#dfe3f8"], [0.2, "#9aa5ec"], [1, PRIMARY]], zmin=0, showscale=False,
        marker={"line": {"color": "#ffffff", "width": 0.5}}))
    fig.update_geos(projection_type="natural earth", showframe=False, showcoastlines=False,
                    showcountries=True, countrycolor="#ffffff", showland=True, landcolor="#eef0f6",
                    showocean=False, showlakes=False, lataxis_range=[-57, 85], bgcolor="rgba(0,0,0,0)")
    _base(fig, height)
    fig.update_layout(margin={"l": 0, "r": 0, "t": 0, "b": 0}, hovermode="closest", dragmode=False)
    return fig
