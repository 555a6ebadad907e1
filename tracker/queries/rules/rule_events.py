"""The events of one name that an event rule answers: people only, each tied to a contact.

An event belongs to a contact when it carries the contact id (identify, server-side events, the
hand-off pageview) or else when its visitor's newest identity link names the contact, the same
attribution segments use. Bots and email machines never trigger a rule, nor do the opens and clicks
a later verdict turned into a machine's (``tracker.queries.machines``). The window is on
``received_at`` (the collector's clock, which a browser cannot move), with a floor on ``ts`` a day
before it so ClickHouse reads only the partitions and days that can hold such events (the
collector takes a client's ``ts`` at most a day in the past).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tracker.queries.machines import human_condition
from tracker.store.base import EventStore

TS_FLOOR = timedelta(days=1)

RULE_EVENTS_SQL = """
SELECT toString(event_id), cid, toUInt32(ts), toUInt32(received_at)
FROM (
    SELECT event_id, ts, received_at, if(contact_id != '', contact_id, linked) AS cid
    FROM (
        SELECT event_id, ts, received_at, site_id, visitor_id, contact_id
        FROM events
        WHERE name = %(name)s AND {human}
          AND received_at >= %(since)s AND received_at <= %(until)s AND ts >= %(ts_floor)s
    ) AS ev
    ANY LEFT JOIN (
        SELECT site_id, visitor_id, argMax(contact_id, ts) AS linked
        FROM identities
        WHERE visitor_id IN (
            SELECT visitor_id FROM events
            WHERE name = %(name)s AND contact_id = '' AND received_at >= %(since)s AND ts >= %(ts_floor)s
        )
        GROUP BY site_id, visitor_id
    ) AS li USING (site_id, visitor_id)
)
WHERE cid != ''
ORDER BY received_at, event_id
LIMIT %(limit)s
""".replace("{human}", human_condition("name = %(name)s AND ts >= %(ts_floor)s"))


@dataclass(frozen=True, slots=True)
class RuleEvent:
    event_id: str
    contact_id: str
    ts: datetime
    received_at: datetime


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def rule_events(store: EventStore, name: str, since: datetime, until: datetime, *,
                limit: int) -> list[RuleEvent]:
    """Up to ``limit`` human events called ``name`` received in [since, until], oldest first."""
    since, until = since.astimezone(UTC).replace(microsecond=0), until.astimezone(UTC)
    params = {"name": name, "since": since, "until": until.replace(microsecond=0),
              "ts_floor": since - TS_FLOOR, "limit": limit}
    rows = store.query(RULE_EVENTS_SQL, params, name="rule events").rows
    return [RuleEvent(str(eid), cid, _utc(ts), _utc(received)) for eid, cid, ts, received in rows]
