"""One metric per time bucket over a period, with the previous period's values beside it.

The bucket follows the period's length (``Period.bucket``: hours up to two days, days up to 92,
weeks, then months) unless given. Buckets without data are filled with zeros in Python (no
``WITH FILL`` on ClickHouse 18.16). ``previous`` holds the previous period's buckets in the same
order, for a faint comparison line. Metrics and their definitions are the overview's
(``tracker.queries.site.overview_kpis``); visit metrics count visits in the bucket they began in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracker.errors import OdnosError
from tracker.queries.filters import NO_FILTERS, Filters, check_choice
from tracker.queries.period import BUCKETS, Period, fill
from tracker.queries.scope import params
from tracker.queries.site.overview_kpis import NAMES, metrics_from
from tracker.queries.site.page_stats import page_stats_sql
from tracker.queries.site.visit_stats import visit_stats_sql
from tracker.store.base import EventStore

PAGE_METRICS = ("visitors", "pageviews")
MAX_POINTS = 2000


@dataclass(frozen=True)
class Point:
    start: datetime
    value: float


@dataclass(frozen=True)
class Series:
    metric: str
    bucket: str
    points: list[Point]
    previous: list[Point]


def _points(store: EventStore, site_id: str, period: Period, filters: Filters, metric: str, bucket: str,
            raw: bool) -> list[Point]:
    values = params(site_id, period, filters)
    if metric in PAGE_METRICS:
        rows = store.query(page_stats_sql(period, filters, bucket, raw=raw), values, name="series pages").rows
        column = PAGE_METRICS.index(metric) + 1
        return fill(period, bucket, rows, lambda start: Point(start, 0),
                    lambda start, row: Point(start, row[column]))
    rows = store.query(visit_stats_sql(filters, bucket, raw=raw), values, name="series visits").rows

    def point(start: datetime, row: tuple) -> Point:
        visits, views, bounces, engaged = row[1:]
        return Point(start, getattr(metrics_from(0, 0, visits, views, bounces, engaged), metric))

    return fill(period, bucket, rows, lambda start: Point(start, 0), point)


def timeseries(store: EventStore, site_id: str, period: Period, filters: Filters = NO_FILTERS,
               metric: str = "visitors", *, bucket: str | None = None, raw: bool = False) -> Series:
    """``metric`` (one of the overview's six) per bucket of ``period`` and of the previous period."""
    check_choice(metric, NAMES, "metric")
    bucket = check_choice(bucket, BUCKETS, "bucket") if bucket is not None else period.bucket()
    if len(period.buckets(bucket)) > MAX_POINTS:
        raise OdnosError(f"a series of {bucket}s over this period has more than {MAX_POINTS} points; "
                         "use a longer bucket", code="bad_bucket")
    return Series(metric=metric, bucket=bucket,
                  points=_points(store, site_id, period, filters, metric, bucket, raw),
                  previous=_points(store, site_id, period.previous(), filters, metric, bucket, raw))
