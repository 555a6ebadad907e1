"""One campaign's report: its numbers, the machines that touched it by reason, and its survey scores.

Definitions in ``tracker.queries.campaigns``. ``machines`` lists machine opens and clicks by the
detector's reason (``apple_mpp``, ``scanner_ua``, ..., or a later verdict's: ``burst``,
``trap_link``), with events and distinct contacts, so the report shows what was left out of the
people's numbers and why. ``survey`` splits the NPS answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.errors import OdnosError
from tracker.queries.campaigns.campaign_list import CampaignStats, campaign_list, nps_of, survey_answers
from tracker.queries.machines import email_events
from tracker.store.base import EventStore

# Machine opens and clicks by reason, as revised (tracker.queries.machines): a burst's or a trap
# link's events show under that reason. Read from events on both paths: the rollup cannot say which
# of its person-looking events a revision turned, and one campaign's opens and clicks are few.
MACHINES = f"""
SELECT name, reason, count() AS events, uniqExact(contact_id) AS contacts
FROM {email_events("campaign_id = %(campaign_id)s")}
WHERE machine = 1
GROUP BY name, reason ORDER BY events DESC, name, reason
"""  # noqa: S608 - our SQL fragments only; values are bound parameters


@dataclass(frozen=True)
class MachineRow:
    kind: str  # "open" or "click"
    reason: str
    events: int
    contacts: int


@dataclass(frozen=True)
class Survey:
    responses: int
    promoters: int  # scores 9-10
    passives: int  # 7-8
    detractors: int  # 0-6
    nps: float | None


@dataclass(frozen=True)
class CampaignReport:
    stats: CampaignStats
    machines: list[MachineRow]
    survey: Survey


def campaign_report(store: EventStore, campaign_id: str, *, raw: bool = False) -> CampaignReport | None:
    """The report of ``campaign_id``, or None when no event carries it."""
    if not isinstance(campaign_id, str) or not campaign_id or len(campaign_id) > 200:
        raise OdnosError("a campaign id is text of 1 to 200 characters", code="bad_campaign")
    found = campaign_list(store, [campaign_id], raw=raw)
    if not found:
        return None
    values = {"campaign_id": campaign_id}
    rows = store.query(MACHINES, values, name="campaign machines").rows
    machines = [MachineRow(name.removeprefix("email_"), reason, events, contacts)
                for name, reason, events, contacts in rows]
    answers = survey_answers(store, [campaign_id], raw=raw)
    responses, promoters, detractors = answers.get(campaign_id, (0, 0, 0))
    survey = Survey(responses, promoters, responses - promoters - detractors, detractors,
                    nps_of(responses, promoters, detractors))
    return CampaignReport(found[0], machines, survey)
