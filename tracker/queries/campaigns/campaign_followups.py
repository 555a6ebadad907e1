"""What followed a campaign's clicks on the site: visits and goal conversions by the people who clicked.

A contact who clicked a link to the site (a human click, ``tracker.queries.campaigns``; the
collector stamps a click with the site its target belongs to) is followed through the visitor ids
linked to it on the site (``identities``: the tracked link's ``_odn`` hand-off or an
``identify``), from its first click for ``days`` days. Counted there: the contacts who came, their
visits (sessions with a pageview), pageviews, and for each goal (``tracker.queries.site.goals``)
the contacts who reached it and how often. Bots are left out. Always raw events: the question
joins three tables. The clickers stay on the server (a subquery, not a list in the SQL text): a
large campaign's would pass the server's largest query (256 KB, 18.16's ``max_query_size``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tracker.errors import OdnosError
from tracker.queries.machines import human_condition
from tracker.queries.site.goals import Goal, check_goals, goal_params
from tracker.store.base import EventStore

MAX_DAYS = 365
# A person's click after later verdicts (tracker.queries.machines), the revisions read for this campaign.
_HUMAN = human_condition("campaign_id = %(campaign_id)s")
CLICKERS = """
SELECT contact_id, toUInt32(min(ts)) AS first_click FROM events
WHERE site_id = %(site_id)s AND name = 'email_click' AND campaign_id = %(campaign_id)s
  AND {human} AND contact_id != ''
GROUP BY contact_id
""".replace("{human}", _HUMAN)
# A visitor is its latest linked contact's (argMax), kept when that contact clicked; each event is
# then joined to its contact's first click. ALL joins: the right sides have one row per key, and ANY
# INNER JOIN means different things on ClickHouse 18.16 and newer engines (one join per SELECT there).
FOLLOWED = """
SELECT {columns}
FROM
(
    SELECT contact_id, session_id, name, pathname, ts
    FROM
    (
        SELECT cityHash64(visitor_id) AS visitor, session_id, name, pathname, ts FROM events
        WHERE site_id = %(site_id)s AND toDate(ts) >= toDate(%(since)s) AND toDate(ts) <= toDate(%(until)s)
          AND ts >= %(since)s AND ts < %(until)s AND is_bot = 0 AND (name = 'pageview' OR {goals})
    ) AS seen
    ALL INNER JOIN
    (
        SELECT cityHash64(visitor_id) AS visitor, argMax(contact_id, ts) AS contact_id FROM identities
        WHERE site_id = %(site_id)s GROUP BY visitor
        HAVING contact_id IN (SELECT contact_id FROM ({clickers}))
    ) AS followed USING visitor
) AS visits
ALL INNER JOIN ({clickers}) AS clicked USING contact_id
WHERE toUInt32(ts) >= first_click AND toUInt32(ts) < first_click + %(span)s
""".replace("{clickers}", CLICKERS)


@dataclass(frozen=True)
class GoalFollowup:
    goal: Goal
    contacts: int  # clickers who reached the goal
    conversions: int


@dataclass(frozen=True)
class Followups:
    clicked: int  # contacts with a human click
    visited: int  # of them, contacts who viewed a page of the site afterwards
    visits: int
    pageviews: int
    goals: list[GoalFollowup]


def campaign_followups(store: EventStore, site_id: str, campaign_id: str, targets: Sequence[Goal] = (),
                       days: int = 30) -> Followups:
    """Visits and conversions on ``site_id`` by ``campaign_id``'s clickers, ``days`` from each click."""
    if not all(isinstance(v, str) and len(v) <= 200 for v in (site_id, campaign_id)):
        raise OdnosError("site and campaign ids are text of at most 200 characters", code="bad_campaign")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise OdnosError(f"follow clicks for 1 to {MAX_DAYS} days", code="bad_period")
    targets = check_goals(targets, least=0)
    clickers = store.query(CLICKERS, {"site_id": site_id, "campaign_id": campaign_id},
                           name="campaign clickers").rows
    if not clickers:
        return Followups(0, 0, 0, 0, [GoalFollowup(goal, 0, 0) for goal in targets])
    firsts = [int(first) for _, first in clickers]
    since = datetime.fromtimestamp(min(firsts), UTC).replace(tzinfo=None)
    last = datetime.fromtimestamp(max(firsts), UTC).replace(tzinfo=None)
    tests = [goal.condition(f"g{n}") for n, goal in enumerate(targets)]
    columns = ", ".join(["uniqExactIf(contact_id, name = 'pageview')",
                         "uniqExactIf(session_id, name = 'pageview')", "countIf(name = 'pageview')",
                         *(f"uniqExactIf(contact_id, {test}), countIf({test})" for test in tests)])
    span = timedelta(days=days)
    values = {"site_id": site_id, "since": since, "until": last + span, "span": int(span.total_seconds()),
              "campaign_id": campaign_id, **goal_params(targets)}
    reached = " OR ".join(tests) or "0"  # only the events something here counts
    row = store.query(FOLLOWED.format(columns=columns, goals=reached), values,
                      name="campaign followups").first()
    visited, visits, pageviews, *rest = row
    return Followups(len(clickers), visited, visits, pageviews,
                     [GoalFollowup(goal, rest[2 * n], rest[2 * n + 1]) for n, goal in enumerate(targets)])
