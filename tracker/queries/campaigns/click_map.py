"""A campaign's click map: each link's human clicks (distinct contacts and total) and scanner clicks.

Links are the ``link_id`` the mailer gave each rewritten ``<a href>``, so the page can put each
count on its link in the email itself; ``target_url`` is where the link leads. Machines
(``tracker.queries.campaigns``) are counted apart, per link, as ``scanner_clicks``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.errors import OdnosError
from tracker.store.base import EventStore

ROLLUP = """
SELECT link_id, any(target_url) AS target, uniqExactMergeIf(contacts, machine = 0) AS clicked,
    countMergeIf(events, machine = 0) AS clicks, countMergeIf(events, machine = 1) AS scanner_clicks
FROM rollup_campaigns_daily
WHERE campaign_id = %(campaign_id)s AND name = 'email_click'
GROUP BY link_id ORDER BY clicked DESC, clicks DESC, link_id
"""
RAW = """
SELECT link_id, any(target_url) AS target, uniqExactIf(contact_id, is_machine = 0 AND is_bot = 0) AS clicked,
    countIf(is_machine = 0 AND is_bot = 0) AS clicks, countIf(is_machine = 1 OR is_bot = 1) AS scanner_clicks
FROM events
WHERE campaign_id = %(campaign_id)s AND name = 'email_click'
GROUP BY link_id ORDER BY clicked DESC, clicks DESC, link_id
"""


@dataclass(frozen=True)
class LinkRow:
    link_id: str
    target_url: str
    clicked: int  # distinct contacts who clicked it
    clicks: int  # human clicks
    scanner_clicks: int  # machine clicks


def click_map(store: EventStore, campaign_id: str, *, raw: bool = False) -> list[LinkRow]:
    """Every clicked link of ``campaign_id``, most people first."""
    if not isinstance(campaign_id, str) or len(campaign_id) > 200:
        raise OdnosError("a campaign id is text of at most 200 characters", code="bad_campaign")
    rows = store.query(RAW if raw else ROLLUP, {"campaign_id": campaign_id}, name="click map").rows
    return [LinkRow(*row) for row in rows]
