"""Exit pages: the last page of each visit that began in the period, with its exit rate.

Exits are visits that ended on the page (``tracker.queries.sessions``); the exit rate is exits per
pageview of that page in the period (``top_pages``' count), in percent. A page near the period's
end can pass 100 %: its visits are counted whole, its pageviews only inside the period.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.queries.filters import NO_FILTERS, Filters
from tracker.queries.period import Period
from tracker.queries.scope import params
from tracker.queries.site.breakdowns import visit_breakdown
from tracker.queries.site.top_pages import page_rows_sql
from tracker.store.base import EventStore


@dataclass(frozen=True)
class ExitRow:
    page: str
    visitors: int
    exits: int
    exit_rate: float  # percent of the page's pageviews


def exit_pages(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS,
               limit: int = 10, *, raw: bool = False) -> list[ExitRow]:
    """The pages visits ended on, most visitors first."""
    rows = visit_breakdown(store, site_id, period, filters, "exit", limit, raw=raw)
    if not rows:
        return []
    sql = f"SELECT page, pageviews FROM ({page_rows_sql(period, filters, raw=raw, paths=True)})"  # noqa: S608 - our SQL fragments only; values are bound parameters
    views = dict(store.query(sql, params(site_id, period, filters, paths=tuple(r.value for r in rows)),
                             name="exit page views").rows)
    return [ExitRow(row.value, row.visitors, row.visits,
                    100.0 * row.visits / views[row.value] if views.get(row.value) else 0.0) for row in rows]
