"""Reports over HTTP: campaign and rule results, site stats for a range, segment size and members.

The same query functions as the dashboard (``tracker.queries``, ``tracker.crm.segments``), so the
API and the dashboard never disagree. People and machines stay apart in every campaign figure.
Each route answers JSON, or CSV with ``?format=csv`` / ``Accept: text/csv`` (``tracker.api.formats``).
A period is ``from`` and ``to`` (whole UTC days, both included); without them, the last 30 days.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app

from tracker.api import bp, query
from tracker.api.auth import require
from tracker.api.body import Unprocessable
from tracker.api.contacts import contact_json, iso_time
from tracker.api.formats import answer
from tracker.control.models import Segment
from tracker.control.sites import get_site
from tracker.crm.segments import get_segment, segment_members, segment_size
from tracker.errors import NotFound, OdnosError
from tracker.queries.campaigns.campaign_list import campaign_list
from tracker.queries.campaigns.campaign_report import campaign_report
from tracker.queries.campaigns.mailings import mailings
from tracker.queries.filters import DIMENSIONS, Filters
from tracker.queries.period import BUCKETS, Period
from tracker.queries.site.overview_kpis import NAMES, overview_kpis
from tracker.queries.site.sources import DIMENSIONS as SOURCE_DIMENSIONS
from tracker.queries.site.sources import sources
from tracker.queries.site.timeseries import timeseries
from tracker.queries.site.top_pages import top_pages

DEFAULT_DAYS = 30
MAX_ROWS = 1000
PERIOD = ("from", "to")
FORMAT = ("format",)


def _runtime() -> Any:
    return current_app.extensions["odnos"]


def _period(*, optional: bool = False) -> Period | None:
    first, last = query.day("from"), query.day("to")
    if first is None and last is None:
        if optional:
            return None
        last = datetime.now(UTC).date()
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    elif first is None or last is None:
        missing = "from" if first is None else "to"
        raise Unprocessable("Give both from and to (dates such as 2026-11-30), or neither.", field=missing)
    try:
        return Period.days(first, last)
    except OdnosError as exc:
        raise Unprocessable(exc.message, field="from", code="bad_period") from None


def _iso(moment: datetime) -> str:
    return iso_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _period_json(period: Period) -> dict[str, str]:
    last = period.end - timedelta(days=1)
    return {"from": period.start.date().isoformat(), "to": last.date().isoformat()}


# -- campaigns and rules --------------------------------------------------------------------------


@bp.get("/reports/campaigns")
@require("reports:read")
def campaigns_report() -> Any:
    """Every campaign and mailing rule with events: sends, people's opens and clicks, machines apart."""
    query.only(*PERIOD, *FORMAT)
    period = _period(optional=True)
    runtime = _runtime()
    known = {m.campaign_id: m for m in mailings(runtime.control)}
    rows = []
    for stats in campaign_list(runtime.store, None, period):
        mailing = known.get(stats.campaign_id)
        rows.append({"campaign_id": stats.campaign_id, "kind": mailing.kind if mailing else "external",
                     "name": mailing.name if mailing else None, **asdict(stats)})
    payload: dict[str, Any] = {"campaigns": rows}
    if period is not None:
        payload["period"] = _period_json(period)
    return answer(payload, rows, name="campaigns")


@bp.get("/reports/campaigns/<campaign_id>")
@require("reports:read")
def campaign_detail(campaign_id: str) -> Any:
    """One campaign's (or rule's: ``r<id>``) numbers, its machines by reason, and its survey."""
    query.only(*FORMAT)
    runtime = _runtime()
    try:
        report = campaign_report(runtime.store, campaign_id)
    except OdnosError as exc:
        raise Unprocessable(exc.message, field="campaign_id", code="bad_campaign") from None
    if report is None:
        raise NotFound(f"No event carries the campaign id {campaign_id!r}; GET /api/v1/reports/campaigns "
                       "lists those that do.", code="unknown_campaign")
    mailing = next((m for m in mailings(runtime.control) if m.campaign_id == campaign_id), None)
    stats = asdict(report.stats)
    payload = {"campaign_id": campaign_id, "kind": mailing.kind if mailing else "external",
               "name": mailing.name if mailing else None, "stats": stats,
               "machines": [asdict(m) for m in report.machines], "survey": asdict(report.survey)}
    rows = [{"metric": name, "value": value} for name, value in stats.items() if name != "campaign_id"]
    rows += [{"metric": f"machine_{m.kind}s:{m.reason}", "value": m.events} for m in report.machines]
    return answer(payload, rows, name=f"campaign-{campaign_id}")


# -- sites ----------------------------------------------------------------------------------------


def _site(site_id: str) -> str:
    with _runtime().control.session() as db:
        return get_site(db, site_id).id


def _filters() -> Filters:
    values = {name: query.text(name, max_length=2048) for name in DIMENSIONS}
    return Filters.parse({name: value for name, value in values.items() if value is not None})


@bp.get("/reports/sites/<site_id>/stats")
@require("reports:read")
def site_stats(site_id: str) -> Any:
    """The overview's six numbers for the period, each with the previous period's and the change."""
    query.only(*PERIOD, *FORMAT, *DIMENSIONS)
    period, filters = _period(), _filters()
    kpis = overview_kpis(_runtime().store, _site(site_id), period, filters)
    rows = [{"metric": name, "value": getattr(kpis.current, name), "previous": getattr(kpis.previous, name),
             "change": kpi.change} for name, kpi in zip(NAMES, kpis.kpis(), strict=True)]
    payload = {"site_id": site_id, "period": _period_json(period),
               "previous_period": _period_json(kpis.previous_period), "filters": filters.active(),
               "metrics": asdict(kpis.current), "previous": asdict(kpis.previous),
               "change": {row["metric"]: row["change"] for row in rows}}
    return answer(payload, rows, name=f"site-{site_id}-stats")


@bp.get("/reports/sites/<site_id>/timeseries")
@require("reports:read")
def site_timeseries(site_id: str) -> Any:
    """One of the six numbers per hour, day, week or month of the period."""
    query.only(*PERIOD, *FORMAT, *DIMENSIONS, "metric", "bucket")
    period, filters = _period(), _filters()
    metric = query.choice("metric", NAMES, default="visitors")
    bucket = query.choice("bucket", BUCKETS)
    try:
        series = timeseries(_runtime().store, _site(site_id), period, filters, metric, bucket=bucket)
    except OdnosError as exc:
        if exc.code != "bad_bucket":
            raise
        raise Unprocessable(exc.message, field="bucket", code="bad_bucket") from None
    rows = [{"start": _iso(point.start), "value": point.value} for point in series.points]
    payload = {"site_id": site_id, "period": _period_json(period), "metric": series.metric,
               "bucket": series.bucket, "points": rows}
    return answer(payload, rows, name=f"site-{site_id}-{series.metric}")


@bp.get("/reports/sites/<site_id>/pages")
@require("reports:read")
def site_pages(site_id: str) -> Any:
    """The most visited pages of the period, most visitors first."""
    query.only(*PERIOD, *FORMAT, *DIMENSIONS, "limit")
    period, filters = _period(), _filters()
    limit = query.number("limit", default=10, lowest=1, highest=MAX_ROWS)
    rows = [asdict(row) for row in top_pages(_runtime().store, _site(site_id), period, filters, limit)]
    return answer({"site_id": site_id, "period": _period_json(period), "pages": rows}, rows,
                  name=f"site-{site_id}-pages")


@bp.get("/reports/sites/<site_id>/sources")
@require("reports:read")
def site_sources(site_id: str) -> Any:
    """Visits by referrer source or referrer domain, most visitors first."""
    query.only(*PERIOD, *FORMAT, *DIMENSIONS, "dimension", "limit")
    period, filters = _period(), _filters()
    dimension = query.choice("dimension", SOURCE_DIMENSIONS, default="referrer_source")
    limit = query.number("limit", default=10, lowest=1, highest=MAX_ROWS)
    found = sources(_runtime().store, _site(site_id), period, filters, dimension, limit)
    rows = [asdict(row) for row in found]
    return answer({"site_id": site_id, "period": _period_json(period), "dimension": dimension,
                   "sources": rows}, rows, name=f"site-{site_id}-sources")


# -- segments -------------------------------------------------------------------------------------


def _segment(name: str) -> Segment:
    with _runtime().control.session() as db:
        try:
            return get_segment(db, name)
        except NotFound as exc:
            raise NotFound(exc.message, code="unknown_segment") from None


@bp.get("/reports/segments/<name>/size")
@require("reports:read")
def segment_size_report(name: str) -> Any:
    """How many contacts are in the segment now."""
    query.only(*FORMAT)
    segment = _segment(name)
    size = segment_size(_runtime().store, segment.definition)
    row = {"id": segment.id, "segment": segment.name, "size": size}
    return answer(row, [row], name=f"segment-{segment.id}-size")


@bp.get("/reports/segments/<name>/members")
@require("reports:read")
def segment_members_report(name: str) -> Any:
    """The segment's members in contact id order, ``limit`` after ``cursor``."""
    query.only(*FORMAT, "cursor", "limit")
    segment = _segment(name)
    limit = query.number("limit", default=100, lowest=1, highest=MAX_ROWS)
    after = query.text("cursor", max_length=64) or ""
    page = segment_members(_runtime().store, segment.definition, after_contact_id=after, limit=limit)
    rows = [contact_json(contact) for contact in page]
    cursor = page[-1].contact_id if len(page) == limit else None
    return answer({"id": segment.id, "segment": segment.name, "members": rows, "next_cursor": cursor}, rows,
                  name=f"segment-{segment.id}-members")
