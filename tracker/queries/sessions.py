"""One row per session, from the sessions rollup or from raw events: what every visit metric is built on.

Definitions (the dashboard's, chosen after Plausible's and GA4's):

- A *session* is the non-bot events sharing a ``session_id`` (a visit: the snippet and the
  collector start a new one after 30 minutes without a hit). It begins at its first pageview;
  sessions without a pageview (an engagement event alone) are not visits.
- A session belongs to the period, and to the time bucket, in which it *begins*, and is measured
  whole: its pageviews and engaged time after the period's end still count. Events are looked up
  from the day before the period's first day to the day after its last (UTC), so a session that
  runs past midnight is whole and one that began the day before is known to have begun before;
  sessions longer than a day are cut at that margin.
- Its *entry page* is its first pageview's path, its *exit page* the last one's; its source,
  referrer domain, UTM tags, country, device, browser and OS are those of its entry pageview.
- ``views`` counts its pageviews, ``actions`` its custom events (any name but pageview,
  engagement, identify and 404), ``engaged_time`` the sum of ``engaged_ms`` of its engagement
  events: the snippet's foreground time, so a one-page visit read for 40 s lasts 40 s, not 0 s
  (the first-to-last-event difference other tools use; Plausible #111).
- It *bounced* when it has one pageview, no custom event and less than 10 s of engaged time
  (GA4's "engaged session" test, which Plausible's single-pageview rule misses for long reads).

Three sources give the same rows (tests check it):

- finished days, from ``rollup_sessions_final`` (0017): one plain row per session, written by
  ``tracker.queries.finish_sessions`` once the day and the next are over; a plain scan;
- the other days, from ``rollup_sessions`` (0014): mergeable states per day and session, grouped
  by session here (with the neighbouring days' rows, so a session is whole and its start known);
- ``raw=True``: the same columns computed from ``events``, with the same hashes and window.

The page filter needs each pageview, so with it the rollups' sessions are narrowed to the set of
sessions that viewed a matching page, read from events.
"""

from __future__ import annotations

from tracker.queries.filters import SESSION_DIMENSIONS, Filters, condition

BOUNCE_MS = 10_000
NOT_ACTIONS = ("pageview", "engagement", "identify", "404")
_NOT_ACTIONS_SQL = ", ".join(f"'{name}'" for name in NOT_ACTIONS)
# The first-pageview sort key of an event, epoch milliseconds; other events sort after every pageview.
_KEY = "if(name = 'pageview', toUInt64(ts) * 1000 + ts_ms, 18446744073709551615)"

# output column -> (from rollup_sessions, from raw events); rollup_sessions_final has the outputs as columns
COLUMNS: dict[str, tuple[str, str]] = {
    "visitor": ("visitor", "any(cityHash64(visitor_id))"),
    "began": ("minMerge(start)", "min(k)"),
    "views": ("sumMerge(pageviews)", "countIf(name = 'pageview')"),
    "engaged_time": ("sumMerge(engaged)", "sumIf(toUInt64(engaged_ms), name = 'engagement')"),
    "actions": ("sumMerge(interactions)", f"countIf(name NOT IN ({_NOT_ACTIONS_SQL}))"),
    "entry": ("argMinMerge(entry_page)", "argMin(pathname, k)"),
    "exit": ("argMaxMerge(exit_page)", "argMax(pathname, if(name = 'pageview', k, 0))"),
    **{f"session_{dim}": (f"argMinMerge(entry_{dim})", f"argMin({dim}, k)") for dim in SESSION_DIMENSIONS},
}
# Raw columns each output needs besides session_id, visitor_id, name, ts, ts_ms.
_RAW_NEEDS = {"engaged_time": ("engaged_ms",), "entry": ("pathname",), "exit": ("pathname",),
              **{f"session_{dim}": (dim,) for dim in SESSION_DIMENSIONS}}
BOUNCED = f"(views = 1 AND actions = 0 AND engaged_time < {BOUNCE_MS})"
# Days whose sessions are in rollup_sessions_final (the latest ledger row of the day says done).
FINISHED = ("(SELECT day FROM rollup_sessions_final_days GROUP BY day "
            "HAVING argMax(done, started * 2 + done) = 1)")
BEGAN_DAY = "toDate(toDateTime(intDiv(began, 1000), 'UTC'))"

# Sessions begin on the period's days; their rows are read from one day earlier and one day later.
_FIRST = "toDate(%(first_day)s)"
_LAST = "toDate(%(last_day)s)"


def _page_sessions() -> str:
    """Sessions (as hashes) with a pageview of a page matching the page filter, in the day window."""
    return ("SELECT cityHash64(session_id) FROM events WHERE site_id = %(site_id)s "  # noqa: S608 - our SQL fragments only; values are bound parameters
            f"AND toDate(ts) >= {_FIRST} - 1 AND toDate(ts) <= {_LAST} + 1 "
            "AND name = 'pageview' AND is_bot = 0 "
            f"AND session_id != '' AND {condition('page')}")


def _open_days() -> str:
    """Rows near the period's days that are not finished (usually the last two or three): scalar
    subqueries, so the primary key prunes everything else; nothing when none is open."""
    days = (f"(SELECT {_FIRST} + number AS d FROM numbers(toUInt64({_LAST} - {_FIRST} + 1)) "  # noqa: S608 - our SQL fragments only; values are bound parameters
            f"WHERE d NOT IN {FINISHED})")
    since, until = f"(SELECT min(d) FROM {days})", f"(SELECT max(d) FROM {days})"  # noqa: S608 - our SQL fragments only; values are bound parameters
    return f"day >= {since} - 1 AND day <= {until} + 1 AND {since} > toDate('1970-01-01')"


def session_rows(columns: list[str] | tuple[str, ...], filters: Filters, *, raw: bool = False,
                 all_sites: bool = False) -> str:
    """A subquery: one row per session that began in the period (``%(start_ms)s`` to ``%(end_ms)s``)
    of the site ``%(site_id)s`` and matches ``filters``, with ``session`` (the id's cityHash64) and
    ``columns`` from ``COLUMNS``.

    Every filter but ``page`` tests the session's entry pageview; ``page`` keeps sessions that
    viewed a matching page. ``all_sites`` (for ``finish_sessions``) reads every site, adds
    ``site_id`` to the rows and reads rollup_sessions only. Parameters: ``tracker.queries.scope.params``.
    """
    wanted = list(dict.fromkeys(["began", "views", *columns,
                                 *(f"session_{name}" for name in filters.active() if name != "page")]))
    tests = ["began >= %(start_ms)s", "began < %(end_ms)s", "views > 0",
             *(condition(name, f"session_{name}") for name in filters.active() if name != "page")]
    if raw:
        return _raw_rows(wanted, filters, tests)
    site = "" if all_sites else "site_id = %(site_id)s AND "
    pages = f" AND session IN ({_page_sessions()})" if filters.page is not None else ""
    # A session has one visitor: grouping by both costs a wider key, so only when the visitor is wanted.
    keys = ", ".join(["site_id"] * all_sites + ["session"] + ["visitor"] * ("visitor" in wanted))
    merged = ", ".join(["site_id"] * all_sites + ["session"]
                       + [name if name == "visitor" else f"{COLUMNS[name][0]} AS {name}" for name in wanted])
    rows = [f"{site}day >= {_FIRST} - 1 AND day <= {_LAST} + 1{pages}"]
    if not all_sites:
        rows.append(_open_days())
    grouped = (f"SELECT {merged} FROM rollup_sessions WHERE {' AND '.join(rows)} "  # noqa: S608 - our SQL fragments only; values are bound parameters
               f"GROUP BY {keys} HAVING {' AND '.join(tests)}")
    if all_sites:
        return grouped
    # Outside the GROUP BY: ClickHouse 18.16 cannot resolve a subquery's columns inside HAVING.
    grouped = f"SELECT * FROM ({grouped}) WHERE {BEGAN_DAY} NOT IN {FINISHED}"  # noqa: S608 - our SQL fragments only; values are bound parameters
    plain = ", ".join(["session", *wanted])
    finished = (f"SELECT {plain} FROM rollup_sessions_final WHERE site_id = %(site_id)s AND day >= {_FIRST} "  # noqa: S608 - our SQL fragments only; values are bound parameters
                f"AND day <= {_LAST} AND day IN {FINISHED}{pages} AND {' AND '.join(tests)}")
    return f"{finished} UNION ALL {grouped}"


def _raw_rows(wanted: list[str], filters: Filters, tests: list[str]) -> str:
    needs = {col for name in wanted for col in _RAW_NEEDS.get(name, ())}
    having = list(tests)
    if filters.page is not None:
        needs.add("pathname")
        having.append(f"countIf(name = 'pageview' AND {condition('page')}) > 0")
    inner = ", ".join(["session_id", "visitor_id", "name", "ts", "ts_ms", *sorted(needs)])
    where = (f"site_id = %(site_id)s AND toDate(ts) >= {_FIRST} - 1 AND toDate(ts) <= {_LAST} + 1 "
             "AND is_bot = 0 AND session_id != ''")
    select = ", ".join(f"{COLUMNS[name][1]} AS {name}" for name in wanted)
    return (f"SELECT cityHash64(session_id) AS session, {select} "  # noqa: S608 - our SQL fragments only; values are bound parameters
            f"FROM (SELECT {inner}, {_KEY} AS k FROM events WHERE {where}) "
            f"GROUP BY session HAVING {' AND '.join(having)}")
