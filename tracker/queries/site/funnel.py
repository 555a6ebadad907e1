"""Funnels: ordered steps (page patterns or event names) a visitor completes within a time window.

A visitor reaches step n when, inside the period, it reached steps 1 to n in that order with no
more than ``window`` seconds from step 1 to step n (ClickHouse's ``windowFunnel``, per visitor;
other events in between do not break the chain). For each step: the visitors who reached it, the
drop-off from the step before (visitors lost), and the conversion from step 1, in percent. Steps
are arbitrary, so no aggregate can hold them: without filters the hits come from
``rollup_funnel_hits`` (``schemas/clickhouse/0020_rollup_funnel_hits.sql``: the same hits, sorted by
page and event name, so only the steps' own rows are read); with filters, or a step on the
``engagement`` event that table leaves out, from raw events.

Hits in the same second count in the funnel's order: ``windowFunnel`` orders hits by their time
alone and keeps ties in the order the threads (or the shards) hand them over, so the same data
could answer one visitor more or less from run to run. Each hit's time is therefore given as its
second since just before the period times the number of steps, plus the first step it matches; the
window is scaled the same way, so it still means seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta

from tracker.errors import OdnosError
from tracker.queries.filters import NO_FILTERS, Filters
from tracker.queries.period import Period
from tracker.queries.scope import event_where, params
from tracker.queries.site.goals import Goal, check_goals, goal_params
from tracker.store.base import EventStore

MAX_WINDOW = 90 * 86400
ORIGIN_BEFORE = timedelta(days=2)  # a landing filter reads the visits' events from the day before the period


@dataclass(frozen=True)
class FunnelStep:
    goal: Goal
    visitors: int
    dropoff: int  # visitors of the step before who did not reach this one (0 for step 1)
    conversion_rate: float  # percent of step 1's visitors


def funnel(store: EventStore, site_id: str, period: Period, steps: Sequence[Goal],
           filters: Filters = NO_FILTERS, window: int = 86400, *, raw: bool = False) -> list[FunnelStep]:
    """The funnel of ``steps`` (2 to 20) over ``period``; ``window`` in seconds (1 s to 90 days)."""
    steps = check_goals(steps, least=2)
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW:
        raise OdnosError(f"the funnel window must be a whole number of seconds from 1 to {MAX_WINDOW}",
                         code="bad_window")
    tests = [goal.condition(f"g{n}") for n, goal in enumerate(steps)]
    hits = f"({' OR '.join(tests)})"
    if raw or filters != NO_FILTERS or any(g.kind == "event" and g.value == "engagement" for g in steps):
        source = f"cityHash64(visitor_id) AS visitor, ts FROM events WHERE {event_where(filters, hits)}"
    else:
        source = (f"visitor, ts FROM rollup_funnel_hits WHERE site_id = %(site_id)s "  # noqa: S608 - as below
                  f"AND ts >= %(start)s AND ts < %(end)s AND {hits}")
    size = len(steps)
    first_step = f"multiIf({', '.join(f'{test}, {k}' for k, test in enumerate(tests[:-1]))}, {size - 1})"
    order = f"toUInt32((toUInt32(ts) - %(origin)s) * {size} + {first_step})"
    sql = (f"SELECT level, count() AS visitors FROM (SELECT visitor, "  # noqa: S608 - goal conditions are our fragments with bound %(gN)s values
           f"windowFunnel(%(window)s)({order}, {', '.join(tests)}) AS level "
           f"FROM (SELECT name, pathname, {source}) GROUP BY visitor) WHERE level > 0 GROUP BY level")
    origin = int((period.start - ORIGIN_BEFORE).replace(tzinfo=UTC).timestamp())
    values = params(site_id, period, filters, window=window * size + size - 1, origin=origin,
                    **goal_params(steps))
    levels = dict(store.query(sql, values, name="funnel").rows)
    reached = [sum(count for level, count in levels.items() if level >= n) for n in range(1, len(steps) + 1)]
    first = reached[0]
    return [FunnelStep(goal, visitors, (reached[n - 1] - visitors) if n else 0,
                       100.0 * visitors / first if first else 0.0)
            for n, (goal, visitors) in enumerate(zip(steps, reached, strict=True))]
