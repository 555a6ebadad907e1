"""Goals: a page pattern or a custom event name, with the visitors who reached it and the rate.

A page goal is reached by a pageview whose path matches its pattern (``*`` is any text, as the page
filter); an event goal by an event of that name. For each goal: the distinct visitors who reached
it in the period, the pageviews or events that did, and the conversion rate, those visitors over
the period's visitors in percent. Unfiltered over whole days, from the pages and events rollups
(visitor states merged per goal); otherwise raw events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracker.errors import OdnosError
from tracker.queries.filters import MAX_VALUE, NO_FILTERS, Filters, check_choice, like_pattern
from tracker.queries.period import Period
from tracker.queries.scope import event_where, params
from tracker.queries.site.page_stats import page_stats_sql
from tracker.store.base import EventStore

KINDS = ("page", "event")
MAX_GOALS = 20


@dataclass(frozen=True)
class Goal:
    kind: str  # "page" (value is a path pattern) or "event" (value is an event name)
    value: str

    def __post_init__(self) -> None:
        check_choice(self.kind, KINDS, "goal")
        if not isinstance(self.value, str) or not self.value or len(self.value) > MAX_VALUE:
            raise OdnosError("a goal needs a page pattern or an event name of at most "
                             f"{MAX_VALUE} characters", code="bad_goal")

    def param(self) -> str:
        return like_pattern(self.value) if self.kind == "page" else self.value

    def condition(self, name: str) -> str:
        """The SQL test of one event reaching this goal; the goal's value is the parameter ``name``."""
        if self.kind == "page":
            return f"(name = 'pageview' AND pathname LIKE %({name})s)"
        return f"name = %({name})s"


@dataclass(frozen=True)
class GoalRow:
    goal: Goal
    visitors: int
    conversions: int
    conversion_rate: float  # percent of the period's visitors


def check_goals(goals: Sequence[Goal], least: int = 1) -> list[Goal]:
    """The goals as a list, when there are ``least`` to ``MAX_GOALS`` of them, else a 400."""
    goals = list(goals) if isinstance(goals, list | tuple) else []
    if not least <= len(goals) <= MAX_GOALS or not all(isinstance(goal, Goal) for goal in goals):
        raise OdnosError(f"give between {least} and {MAX_GOALS} goals", code="bad_goal")
    return goals


def goal_params(goals: Sequence[Goal]) -> dict[str, str]:
    """Each goal's value as the parameter ``g<n>`` its ``condition(f"g{n}")`` names."""
    return {f"g{n}": goal.param() for n, goal in enumerate(goals)}


def _rollup_sql(goals: list[Goal]) -> list[str]:
    days = "site_id = %(site_id)s AND day >= %(first_day)s AND day <= %(last_day)s"
    sqls = []
    for n, goal in enumerate(goals):
        if goal.kind == "page":
            sqls.append("SELECT uniqIfMerge(visitors), sumMerge(pageviews) FROM rollup_pages_daily "  # noqa: S608 - goal conditions are our fragments with bound %(gN)s values
                        f"WHERE {days} AND pathname LIKE %(g{n})s")
        else:
            sqls.append("SELECT uniqMerge(visitors), countMerge(events) FROM rollup_events_daily "  # noqa: S608 - goal conditions are our fragments with bound %(gN)s values
                        f"WHERE {days} AND name = %(g{n})s")
    return sqls


def goals(store: EventStore, site_id: str, period: Period, targets: Sequence[Goal],
          filters: Filters = NO_FILTERS, *, raw: bool = False) -> list[GoalRow]:
    """Each goal of ``targets``: its visitors, conversions and conversion rate, in the order given."""
    targets = check_goals(targets)
    values = params(site_id, period, filters, **goal_params(targets))
    if not raw and period.aligned("day") and not filters.active():
        found = [store.query(sql, values, name="goal").first() for sql in _rollup_sql(targets)]
    else:
        tests = [goal.condition(f"g{n}") for n, goal in enumerate(targets)]
        columns = ", ".join(f"uniqIf(visitor_id, {test}), countIf({test})" for test in tests)
        where = event_where(filters, f"({' OR '.join(tests)})", raw=raw)
        row = store.query(f"SELECT {columns} FROM events WHERE {where}", values, name="goals").first()  # noqa: S608 - goal conditions are our fragments with bound %(gN)s values
        found = [row[2 * n:2 * n + 2] for n in range(len(targets))]
    total = store.query(page_stats_sql(period, filters, raw=raw), values, name="goal visitors").first()[0]
    return [GoalRow(goal, visitors, conversions, 100.0 * visitors / total if total else 0.0)
            for goal, (visitors, conversions) in zip(targets, found, strict=True)]
