"""A contact's timeline: every email sent, opened and clicked, visits, custom events, consent changes.

An event is the contact's when it carries the contact id (email events, the hand-off pageview,
identify, consent) or when its visitor's newest identity link points to the contact, the same rule
segments use. Engagement pings are left out: they belong to the pageview before them; so are
revision events, which show as the verdicts they change. Bot hits,
machine opens and scanner clicks are kept and marked, so a reader sees what really happened: the
opens and clicks a later verdict turned (``tracker.queries.machines``) are marked with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tracker.enrich.email_machines import REVISION_EVENT
from tracker.queries.machines import revised_events
from tracker.store.base import EventStore

# Visitors whose newest link is the contact (argMax by link time over all of a visitor's links).
LINKED_VISITORS_SQL = """
    SELECT site_id, visitor_id FROM identities
    GROUP BY site_id, visitor_id
    HAVING argMax(contact_id, ts) = %(contact_id)s
"""

MINE_SQL = f"""
    (contact_id = %(contact_id)s
     OR (contact_id = '' AND (site_id, visitor_id) IN ({LINKED_VISITORS_SQL})))
    AND name NOT IN ('engagement', '{REVISION_EVENT}')
"""

TIMELINE_SQL = f"""
SELECT toString(event_id), ts, ts_ms, name, site_id, hostname, pathname, campaign_id, message_id, link_id,
       target_url, is_bot, bot_reason, is_machine, machine_reason, props.key, props.value
FROM events
WHERE {MINE_SQL}
ORDER BY ts DESC, ts_ms DESC
LIMIT %(limit)s
"""  # noqa: S608 - our SQL fragments only; values are bound parameters

COUNT_SQL = f"SELECT count() FROM events WHERE {MINE_SQL}"  # noqa: S608 - our SQL fragments only; values are bound parameters


@dataclass(frozen=True)
class TimelineEntry:
    ts: datetime
    name: str
    site_id: str
    hostname: str
    pathname: str
    campaign_id: str
    message_id: str
    link_id: str
    target_url: str
    is_bot: bool
    bot_reason: str
    is_machine: bool
    machine_reason: str
    props: dict[str, str]


@dataclass(frozen=True)
class Timeline:
    total: int
    entries: list[TimelineEntry]  # the newest ``limit``, oldest first


def contact_timeline(store: EventStore, contact_id: str, *, limit: int = 200) -> Timeline:
    """The newest ``limit`` events of the contact, in time order, and how many there are in all."""
    params = {"contact_id": contact_id, "limit": limit}
    total = store.query(COUNT_SQL, params, name="contact timeline count").scalar() or 0
    rows = store.query(TIMELINE_SQL, params, name="contact timeline").rows
    revised = revised_events(store, "contact_id = %(contact_id)s", params) if rows else {}
    entries = [
        TimelineEntry(ts.replace(tzinfo=UTC, microsecond=ms * 1000), name, site, host, path, campaign,
                      message, link, target, bool(bot), bot_reason, bool(machine) or event_id in revised,
                      machine_reason or revised.get(event_id, ""), dict(zip(keys, values, strict=True)))
        for (event_id, ts, ms, name, site, host, path, campaign, message, link, target, bot, bot_reason,
             machine, machine_reason, keys, values) in rows]
    entries.reverse()
    return Timeline(total=total, entries=entries)
