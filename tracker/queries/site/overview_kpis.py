"""The overview's six numbers for a period, each with its change against the previous period.

- visitors: distinct visitor ids of non-bot pageviews in the period;
- pageviews: those pageviews;
- visits: sessions that began in the period (``tracker.queries.sessions``);
- views per visit: the pageviews of those sessions divided by their number;
- bounce rate: the share of those sessions that bounced (one pageview, no custom event, under
  10 s engaged), in percent;
- visit duration: their mean engaged time in seconds (a one-page visit read for 40 s is 40 s).

Changes are relative (percent) except the bounce rate's, which is the difference in points, as
Plausible shows it; a change from zero is ``None`` (no meaningful percentage).
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.queries.filters import NO_FILTERS, Filters
from tracker.queries.period import Period
from tracker.queries.scope import params
from tracker.queries.site.page_stats import page_stats_sql
from tracker.queries.site.visit_stats import visit_stats_sql
from tracker.store.base import EventStore

NAMES = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration")


@dataclass(frozen=True)
class Metrics:
    visitors: int
    visits: int
    pageviews: int
    views_per_visit: float
    bounce_rate: float  # percent of visits
    visit_duration: float  # seconds


@dataclass(frozen=True)
class Kpi:
    name: str
    value: float
    previous: float
    change: float | None  # percent, or points for bounce_rate; None when the previous value is 0


@dataclass(frozen=True)
class OverviewKpis:
    period: Period
    previous_period: Period
    current: Metrics
    previous: Metrics

    def kpis(self) -> list[Kpi]:
        """The six numbers in display order, with their changes."""
        return [_kpi(name, getattr(self.current, name), getattr(self.previous, name)) for name in NAMES]


def _kpi(name: str, value: float, previous: float) -> Kpi:
    if name == "bounce_rate":
        change = value - previous if previous else None
    else:
        change = (value - previous) / previous * 100 if previous else None
    return Kpi(name, value, previous, change)


def metrics_from(visitors: int, pageviews: int, visits: int, views: int, bounces: int,
                 engaged: int) -> Metrics:
    """Metrics from the counts ``page_stats_sql`` and ``visit_stats_sql`` select."""
    return Metrics(visitors=visitors, visits=visits, pageviews=pageviews,
                   views_per_visit=views / visits if visits else 0.0,
                   bounce_rate=100.0 * bounces / visits if visits else 0.0,
                   visit_duration=engaged / visits / 1000 if visits else 0.0)


def period_metrics(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS, *,
                   raw: bool = False) -> Metrics:
    """The six numbers of one period (under a landing filter all six come from the visits, in one query)."""
    values = params(site_id, period, filters)
    if filters.of_kind("landing"):
        visits, views, bounces, engaged, visitors = store.query(
            visit_stats_sql(filters, raw=raw, visitors=True), values, name="overview visits").first()
        return metrics_from(visitors, views or 0, visits, views or 0, bounces or 0, engaged or 0)
    visitors, pageviews = store.query(page_stats_sql(period, filters, raw=raw), values,
                                      name="overview page stats").first()
    visits, views, bounces, engaged = store.query(visit_stats_sql(filters, raw=raw), values,
                                                  name="overview visit stats").first()
    return metrics_from(visitors, pageviews, visits, views or 0, bounces or 0, engaged or 0)


def overview_kpis(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS, *,
                  raw: bool = False) -> OverviewKpis:
    """The overview's numbers for ``period`` and for the period of the same length before it."""
    before = period.previous()
    return OverviewKpis(period=period, previous_period=before,
                        current=period_metrics(store, site_id, period, filters, raw=raw),
                        previous=period_metrics(store, site_id, before, filters, raw=raw))
