"""Visits, their pageviews, bounces and engaged time, in total or per time bucket of their start.

Built on ``tracker.queries.sessions`` (its definitions apply): a visit counts in the period and
bucket where it began. Always answered from the sessions rollup unless ``raw``.
"""

from __future__ import annotations

from tracker.queries.filters import Filters
from tracker.queries.period import BUCKET_SQL
from tracker.queries.sessions import BOUNCED, session_rows

_TOTALS = (f"count() AS visits, sum(views) AS visit_views, sum({BOUNCED}) AS bounces, "
           "sum(engaged_time) AS engaged")


def visit_stats_sql(filters: Filters, bucket: str | None = None, *, raw: bool = False,
                    visitors: bool = False) -> str:
    """SQL selecting ``[bucket,] visits, visit_views, bounces, engaged`` (engaged in milliseconds),
    and ``visitors`` (distinct) after them when asked."""
    columns = ["views", "actions", "engaged_time", *(["visitor"] if visitors else [])]
    rows = session_rows(columns, filters, raw=raw)
    totals = _TOTALS + (", uniq(visitor) AS visitors" if visitors else "")
    if bucket is None:
        return f"SELECT {totals} FROM ({rows})"  # noqa: S608 - bucket from BUCKET_SQL, session SQL ours; values bound
    label = BUCKET_SQL[bucket].format(col="toDateTime(intDiv(began, 1000), 'UTC')")
    return f"SELECT {label} AS bucket, {totals} FROM ({rows}) GROUP BY bucket"  # noqa: S608 - bucket from BUCKET_SQL, session SQL ours; values bound
