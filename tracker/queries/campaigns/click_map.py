"""A campaign's click map: each link's human clicks (distinct contacts and total) and scanner clicks.

Links are the ``link_id`` the mailer gave each rewritten ``<a href>``, so the page can put each
count on its link in the email itself; ``target_url`` is where the link leads. Machines
(``tracker.queries.campaigns``, with later verdicts applied: ``tracker.queries.machines``) are
counted apart, per link, as ``scanner_clicks``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.errors import OdnosError
from tracker.queries.machines import email_events, rollup_correction
from tracker.store.base import EventStore

CLICKS = "campaign_id = %(campaign_id)s AND name = 'email_click'"
_COUNTS = {"clicked": "uniqExactIf(contact_id, machine = 0)", "clicks": "countIf(machine = 0)",
           "scanner_clicks": "countIf(machine = 1)"}
ROLLUP = f"""
SELECT link_id, any(target_url) AS target, uniqExactMergeIf(contacts, machine = 0) AS clicked,
    countMergeIf(events, machine = 0) AS clicks, countMergeIf(events, machine = 1) AS scanner_clicks
FROM rollup_campaigns_daily
WHERE {CLICKS}
GROUP BY link_id
"""  # noqa: S608 - our SQL fragments only; values are bound parameters
# `machine` as revised (tracker.queries.machines): a burst's or trap link's clicks are the scanner's.
RAW = f"""
SELECT link_id, any(target_url) AS target, {', '.join(f'{sql} AS {name}' for name, sql in _COUNTS.items())}
FROM {email_events(CLICKS)}
GROUP BY link_id
"""  # noqa: S608 - our SQL fragments only; values are bound parameters


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
    values = {"campaign_id": campaign_id}
    rows = store.query(RAW if raw else ROLLUP, values, name="click map").rows
    if not raw and rows:  # the rollup counted the verdicts as stored: apply the later ones
        fixes = rollup_correction(store, _COUNTS, CLICKS, values, "link_id")
        rows = [(link, target, *(count - fixes.get((link,), {}).get(name, 0)
                                 for name, count in zip(_COUNTS, counts, strict=True)))
                for link, target, *counts in rows]
    links = [LinkRow(*row) for row in rows]
    return sorted(links, key=lambda link: (-link.clicked, -link.clicks, link.link_id))
