"""Every campaign's (or mailing rule's) numbers side by side: sends, opens, clicks, machines, NPS.

Definitions in ``tracker.queries.campaigns``. One row per campaign id, in id order; pass the ids
of a site's campaigns (from the control database), or none for every campaign that has events.
A period, when given, counts only the events inside it (whole days use the rollup). Later machine
verdicts (bursts, trap links: ``tracker.queries.machines``) apply to opens and clicks on both
paths: raw events are read through ``email_events``, rollup figures get ``rollup_correction``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracker.errors import OdnosError
from tracker.queries.machines import EMAIL_EVENTS, email_events, rollup_correction
from tracker.queries.period import Period
from tracker.store.base import EventStore

MAX_CAMPAIGNS = 1000
# metric -> (condition on `name` and `machine`, which aggregate: event count or distinct contacts)
_HUMAN = "machine = 0"
_METRICS = {
    "sent": ("name = 'email_sent'", "count"),
    "recipients": ("name = 'email_sent'", "uniq"),
    "bounced": ("name = 'email_bounce'", "uniq"),
    "opened": (f"name IN ('email_open', 'email_click') AND {_HUMAN}", "uniq"),
    "opens": (f"name = 'email_open' AND {_HUMAN}", "count"),
    "machine_opens": ("name = 'email_open' AND machine = 1", "count"),
    "clicked": (f"name = 'email_click' AND {_HUMAN}", "uniq"),
    "clicks": (f"name = 'email_click' AND {_HUMAN}", "count"),
    "scanner_clicks": ("name = 'email_click' AND machine = 1", "count"),
    "unsubscribed": ("name = 'unsubscribe'", "uniq"),
}
# The metrics a later machine verdict can change (``tracker.queries.machines``).
REVISABLE = ("opened", "opens", "machine_opens", "clicked", "clicks", "scanner_clicks")
_ROLLUP = {"count": "countMergeIf(events, {cond})", "uniq": "uniqExactMergeIf(contacts, {cond})"}
_RAW = {"count": "countIf({cond})", "uniq": "uniqExactIf(contact_id, {cond})"}
# Raw events with the rollup's `machine`: revised for opens and clicks, as stored for the rest.
_RAW_SOURCE = ("(SELECT campaign_id, name, contact_id, machine FROM {opens_clicks} UNION ALL "
               "SELECT campaign_id, name, contact_id, toUInt8(is_machine OR is_bot) AS machine FROM events "
               "WHERE ({where}) AND name NOT IN {email})")
# Each contact's latest valid answer, then promoters and detractors per campaign.
_NPS = """
SELECT campaign_id, count() AS responses, countIf(latest >= 9) AS promoters,
    countIf(latest <= 6) AS detractors
FROM ({answers})
GROUP BY campaign_id
"""
_ANSWERS_ROLLUP = """
SELECT campaign_id, contact_id, argMaxMerge(score) AS latest FROM rollup_surveys WHERE {where}
GROUP BY campaign_id, contact_id
"""
_ANSWERS_RAW = """
SELECT campaign_id, contact_id, argMax(toUInt8(props.value[indexOf(props.key, 'score')]), ts) AS latest
FROM events
WHERE {where} AND name = 'survey_response' AND is_machine = 0 AND is_bot = 0
  AND match(props.value[indexOf(props.key, 'score')], '^(10|[0-9])$')
GROUP BY campaign_id, contact_id
"""


@dataclass(frozen=True)
class CampaignStats:
    campaign_id: str
    sent: int
    recipients: int
    bounced: int
    delivered: int
    opened: int
    opens: int
    machine_opens: int
    clicked: int
    clicks: int
    scanner_clicks: int
    unsubscribed: int
    open_rate: float
    click_rate: float
    click_to_open: float
    nps_responses: int
    nps: float | None  # -100..100; None without answers


def _rate(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def campaign_where(campaign_ids: Sequence[str] | None, period: Period | None, *,
                   column: str) -> tuple[str, dict]:
    """The WHERE selecting the campaigns' events (``column`` holds the day or the time), and its params."""
    where, values = ["campaign_id != ''"], {}
    if campaign_ids is not None:
        ids = list(campaign_ids) if isinstance(campaign_ids, list | tuple) else None
        if ids is None or len(ids) > MAX_CAMPAIGNS or not all(isinstance(i, str) for i in ids):
            raise OdnosError(f"give up to {MAX_CAMPAIGNS} campaign ids as text", code="bad_campaign")
        where.append("campaign_id IN %(campaign_ids)s")
        values["campaign_ids"] = tuple(ids) or ("",)
    if period is not None:
        values.update(period.params())
        if column == "day":
            where.append("day >= %(first_day)s AND day <= %(last_day)s")
        else:
            where.append(f"{column} >= %(start)s AND {column} < %(end)s")
    return " AND ".join(where), values


def nps_of(responses: int, promoters: int, detractors: int) -> float | None:
    return 100.0 * (promoters - detractors) / responses if responses else None


def campaign_list(store: EventStore, campaign_ids: Sequence[str] | None = None,
                  period: Period | None = None, *, raw: bool = False) -> list[CampaignStats]:
    """Each campaign's numbers, for ``campaign_ids`` (or every campaign), in id order."""
    use_rollup = not raw and (period is None or period.aligned("day"))
    where, values = campaign_where(campaign_ids, period, column="day" if use_rollup else "ts")
    shape = _ROLLUP if use_rollup else _RAW
    columns = ", ".join(f"{shape[kind].format(cond=cond)} AS {name}"
                        for name, (cond, kind) in _METRICS.items())
    source = (f"rollup_campaigns_daily WHERE {where}" if use_rollup else
              _RAW_SOURCE.format(opens_clicks=email_events(where), where=where, email=EMAIL_EVENTS))
    rows = store.query(f"SELECT campaign_id, {columns} FROM {source} GROUP BY campaign_id "  # noqa: S608 - metric columns and WHERE built here; values bound
                       f"ORDER BY campaign_id LIMIT {MAX_CAMPAIGNS}", values, name="campaign list").rows
    if use_rollup and rows:  # the rollup counted the verdicts as stored: apply the later ones
        rows = revised_rows(store, rows, campaign_ids, period)
    answers = survey_answers(store, campaign_ids, period, raw=raw) if rows else {}
    return [stats_from(row, answers.get(row[0], (0, 0, 0))) for row in rows]


def revised_rows(store: EventStore, rows: list[tuple], campaign_ids: Sequence[str] | None,
                 period: Period | None) -> list[tuple]:
    """Rollup rows (``campaign_id`` then ``_METRICS``) with revised machine verdicts applied."""
    where, values = campaign_where(campaign_ids, period, column="ts")
    aggregates = {name: _RAW[kind].format(cond=cond) for name, (cond, kind) in _METRICS.items()
                  if name in REVISABLE}
    fixes = rollup_correction(store, aggregates, where, values, "campaign_id")
    names = list(_METRICS)
    fixed = []
    for campaign_id, *counts in rows:
        delta = fixes.get((campaign_id,), {})
        fixed.append((campaign_id, *(count - delta.get(name, 0)
                                     for name, count in zip(names, counts, strict=True))))
    return fixed


def survey_answers(store: EventStore, campaign_ids: Sequence[str] | None, period: Period | None = None, *,
                   raw: bool = False) -> dict[str, tuple[int, int, int]]:
    """Campaign id -> (responses, promoters, detractors), each contact's latest answer counting once."""
    use_rollup = not raw and (period is None or period.aligned("day"))
    where, values = campaign_where(campaign_ids, period, column="day" if use_rollup else "ts")
    answers = (_ANSWERS_ROLLUP if use_rollup else _ANSWERS_RAW).format(where=where)
    rows = store.query(_NPS.format(answers=answers), values, name="campaign nps").rows
    return {row[0]: tuple(row[1:]) for row in rows}


def stats_from(row: tuple, answers: tuple[int, int, int]) -> CampaignStats:
    """CampaignStats from a row of ``campaign_id`` and ``_METRICS`` in order, and its NPS answers."""
    campaign_id, *counts = row
    found = dict(zip(_METRICS, counts, strict=True))
    delivered = max(0, found["recipients"] - found["bounced"])
    responses, promoters, detractors = answers
    return CampaignStats(campaign_id=campaign_id, **found, delivered=delivered,
                         open_rate=_rate(found["opened"], delivered),
                         click_rate=_rate(found["clicked"], delivered),
                         click_to_open=_rate(found["clicked"], found["opened"]),
                         nps_responses=responses, nps=nps_of(responses, promoters, detractors))
