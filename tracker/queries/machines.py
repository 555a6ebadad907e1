"""Which email opens and clicks are a machine's once later verdicts apply: the one place readers ask.

The collector judges each hit as it arrives and keeps it as it was; some verdicts come later. The
click that reveals a scanner's burst over a message's links, and a click on the message's invisible
trap link, are followed by a ``machine_revision`` event (``tracker.enrich.email_machines``) naming
the message, the contact, the reason and ``window_ms``: that contact's opens and clicks of that
message within ``window_ms`` either side of the revision are a machine's, including those that came
first. Reports, segments and rules must read people's email events through this module, never
through ``is_machine = 0 AND is_bot = 0`` alone:

- ``human_condition(scope)``: a condition for a ``WHERE`` over ``events`` rows: the row is a
  person's (not a bot, not a machine, not revised). For segments and rules.
- ``email_events(where)``: a subquery of email events with ``machine`` and ``reason`` as revised
  (and ``stored_machine`` as the collector judged). For reports over raw events.
- ``revised_events(store, scope, values)``: event id -> revision reason, for readers that list
  events one by one (a contact's timeline).
- ``rollup_correction(...)``: what revisions take off figures read from a rollup that counted the
  stored verdicts (``rollup_campaigns_daily``), exactly, for counts and distinct contacts alike.

``scope`` and ``where`` are the caller's conditions over ``events`` columns, with its own
``%(name)s`` parameters (rendered by ``tracker.store.sql``); they only narrow which email events are
read. Revisions are few (one per burst or trap click), so they are read whole.
The SQL runs on chDB 26 and ClickHouse 18.16: a plain ``ALL INNER JOIN ... USING`` on equal keys
and the window as a filter after it (18.16 joins on equality only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tracker.enrich.email_machines import REVISION_EVENT
from tracker.store.base import EventStore

EMAIL_EVENTS = ("email_open", "email_click")

# event_id and the revision's reason of every email event inside a revision's window.
_REVISED = f"""
SELECT event_id, revised_reason FROM
(
    SELECT event_id, message_id, contact_id, toUInt64(ts) * 1000 + ts_ms AS at_ms FROM events
    WHERE name IN {EMAIL_EVENTS} AND is_machine = 0 AND is_bot = 0 AND ({{scope}})
) AS email ALL INNER JOIN
(
    SELECT message_id, contact_id, toUInt64(ts) * 1000 + ts_ms AS revision_ms,
        toUInt64OrZero(props.value[indexOf(props.key, 'window_ms')]) AS window_ms,
        machine_reason AS revised_reason
    FROM events WHERE site_id = '' AND name = '{REVISION_EVENT}'
) AS revision USING (message_id, contact_id)
WHERE at_ms + window_ms >= revision_ms AND at_ms <= revision_ms + window_ms
"""  # noqa: S608 - scope fragments come from our query modules; values bound

_EMAIL_EVENTS = f"""
(
    SELECT event_id, site_id, campaign_id, message_id, contact_id, name, link_id, target_url, ts, ts_ms,
        toUInt8(is_machine OR is_bot) AS stored_machine,
        {{machine}} AS machine,
        multiIf(is_machine = 1, machine_reason, is_bot = 1, bot_reason, {{revised_reason}}) AS reason
    FROM (SELECT * FROM events WHERE name IN {EMAIL_EVENTS} AND ({{where}})) AS stored
    ANY LEFT JOIN
    (
        SELECT event_id, any(revised_reason) AS revised_reason FROM ({_REVISED}) GROUP BY event_id
    ) AS revised USING (event_id)
)
"""  # noqa: S608 - scope fragments come from our query modules; values bound
_REVISED_VERDICT = {"{machine}": "toUInt8(stored_machine OR revised_reason != '')",
                    "{revised_reason}": "revised_reason"}
_STORED_VERDICT = {"{machine}": "stored_machine", "{revised_reason}": "''"}

_MACHINE = re.compile(r"\bmachine\b")  # the revised verdict's column in an aggregate expression

# The contacts any revision names: only their events can differ from what a rollup counted.
_REVISED_CONTACTS = (f"contact_id IN (SELECT contact_id FROM events WHERE site_id = '' "  # noqa: S608 - scope fragments come from our query modules; values bound
                     f"AND name = '{REVISION_EVENT}')")


def revised_ids(scope: str = "1") -> str:
    """A subquery of the ``event_id`` of every person-looking email event a revision turned around."""
    return f"SELECT event_id FROM ({_REVISED.replace('{scope}', scope)})"  # noqa: S608 - scope fragments come from our query modules; values bound


def revised_events(store: EventStore, scope: str, values: Mapping[str, Any]) -> dict[str, str]:
    """``event_id`` -> the revision's reason, for each person-looking email event in ``scope`` it turned."""
    rows = store.query(_REVISED.replace("{scope}", scope), values, name="revised events").rows
    return {str(event_id): reason for event_id, reason in rows}


def human_condition(scope: str = "1") -> str:
    """A condition over ``events`` rows: a person's event after revisions (no bot, no machine).

    ``scope`` narrows the email events the revision join reads (a campaign, a time range); leave it
    "1" when the caller's own filter is wider than any scope it could name.
    """
    return f"(is_bot = 0 AND is_machine = 0 AND event_id NOT IN ({revised_ids(scope)}))"


def email_events(where: str = "1", *, revised: bool = True) -> str:
    """A subquery (use it after ``FROM``) of the email opens and clicks matching ``where``.

    Columns: event_id, site_id, campaign_id, message_id, contact_id, name, link_id, target_url, ts,
    ts_ms, ``stored_machine`` (as the collector judged: machine or bot), ``machine`` and ``reason``
    (the machine or bot reason, or the revision's: ``burst``, ``trap_link``); with ``revised=False``
    these two are the stored verdicts too.
    """
    sql = _EMAIL_EVENTS.replace("{where}", where).replace("{scope}", where)
    for placeholder, expression in (_REVISED_VERDICT if revised else _STORED_VERDICT).items():
        sql = sql.replace(placeholder, expression)
    return sql


def rollup_correction(store: EventStore, aggregates: Mapping[str, str], where: str,
                      values: Mapping[str, Any], group_by: str) -> dict[tuple, dict[str, int]]:
    """Per group, how much each aggregate over stored verdicts exceeds the same over revised ones.

    ``aggregates`` maps names to aggregate expressions over ``email_events`` columns that read
    ``machine`` (``"countIf(name = 'email_click' AND machine = 0)"``, ``"uniqExactIf(contact_id,
    ...)"``); ``group_by`` is a comma-separated list of its columns (``"campaign_id"``). A figure a
    rollup gave for a group, minus its correction here, is the revised figure: only the contacts a
    revision names can differ, and their events are counted here both ways, so even distinct
    contacts subtract exactly. Groups where nothing changes are absent.
    """
    scoped = f"({where}) AND {_REVISED_CONTACTS}"
    # One pass: each aggregate over the verdicts as stored (``stored_machine`` for ``machine``), then
    # over the revised ones, from the same rows.
    as_stored = [_MACHINE.sub("stored_machine", expression) for expression in aggregates.values()]
    columns = ", ".join([*as_stored, *aggregates.values()])
    width, count = len(group_by.split(",")), len(aggregates)
    rows = store.query(f"SELECT {group_by}, {columns} FROM {email_events(scoped)} GROUP BY {group_by}",  # noqa: S608 - scope fragments come from our query modules; values bound
                       values, name="revision correction").rows
    changes = {}
    for row in rows:
        before, after = row[width:width + count], row[width + count:]
        delta = {name: int(b) - int(a) for name, b, a in zip(aggregates, before, after, strict=True)}
        if any(delta.values()):
            changes[tuple(row[:width])] = delta
    return changes
