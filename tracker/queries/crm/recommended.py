"""Recommended items for contacts: "customers who bought or viewed this also bought or viewed".

An item is a product bought (a ``purchase`` event's ``item`` property) or a page viewed (a
pageview's URL without query string). A person is a contact when the event names one, directly
or through the ``identities`` link from its visitor, else the site visitor. For each contact, the
candidates are the items of the people who share at least one item with the contact, ranked by
how many of those people have them (``co``), then by how many people have them at all (``pop``),
then by name so every engine returns the same order; what the contact already bought or viewed is
never recommended. The most popular items fill the list when there are too few: a contact with no
history gets the bestsellers. Bots are left out.

One query answers a whole batch of contacts, because the mailer renders thousands of messages a
minute and a round trip per message would be the bottleneck. Runs unchanged on chDB and on
ClickHouse 18.16 (no CTEs over subqueries there: the shared subquery is spelled out in each place;
joined subqueries carry aliases, which chDB requires; ``cutQueryStringAndFragment`` keeps a fragment
on 18.16 when there is no query string, hence ``cutFragment(cutQueryString(url))``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from tracker.store.base import EventStore

MAX_RECOMMENDED = 20
KINDS = ("any", "item", "page")
# Popular items considered for the fill-up; a contact who has more of them than this gets fewer.
_FALLBACK_EXTRA = 200

# (person, key) of every purchase and pageview in the window; key = 'b' + item or 'v' + page URL.
_PERSON_ITEMS = """
    SELECT if(contact_id != '', contact_id,
              if(linked != '', linked, concat('v:', site_id, ':', visitor_id))) AS person, key
    FROM (
        SELECT site_id, visitor_id, contact_id,
               if(name = 'purchase', concat('b', props.value[indexOf(props.key, 'item')]),
                  concat('v', cutFragment(cutQueryString(url)))) AS key
        FROM events
        WHERE ts >= %(since)s AND is_bot = 0 AND (contact_id != '' OR visitor_id != '')
          AND (%(site)s = '' OR site_id = %(site)s)
          AND ((name = 'purchase' AND %(kind)s != 'page' AND props.value[indexOf(props.key, 'item')] != '')
               OR (name = 'pageview' AND %(kind)s != 'item' AND pathname != ''
                   AND substring(pathname, 1, length(%(prefix)s)) = %(prefix)s))
    ) AS seen
    ANY LEFT JOIN (
        SELECT site_id, visitor_id, argMax(contact_id, ts) AS linked FROM identities
        GROUP BY site_id, visitor_id
    ) AS links USING (site_id, visitor_id)
"""

_TARGETS = f"""
    SELECT target, mine
    FROM (SELECT arrayJoin(%(target_list)s) AS target) AS wanted
    ANY LEFT JOIN (
        SELECT person AS target, groupUniqArray(key) AS mine FROM ({_PERSON_ITEMS})
        WHERE person IN %(targets)s GROUP BY person
    ) AS history USING target
"""  # noqa: S608 - our SQL fragments only; values are bound parameters

RECOMMENDED_SQL = f"""
SELECT target, key, co, pop
FROM (
    SELECT target, key, max(co) AS co
    FROM (
        SELECT target, key, toUInt64(uniqExact(person)) AS co
        FROM (
            SELECT target, mine, person, keys
            FROM (
                SELECT person, groupUniqArray(key) AS keys FROM ({_PERSON_ITEMS}) GROUP BY person
                HAVING hasAny(keys, (SELECT groupUniqArray(key) FROM ({_PERSON_ITEMS})
                                     WHERE person IN %(targets)s))
            ) AS peers
            CROSS JOIN ({_TARGETS}) AS targets
            WHERE person != target AND hasAny(keys, mine)
        )
        ARRAY JOIN keys AS key
        WHERE NOT has(mine, key)
        GROUP BY target, key
        UNION ALL
        SELECT target, key, toUInt64(0) AS co
        FROM ({_TARGETS}) AS targets
        CROSS JOIN (
            SELECT key FROM ({_PERSON_ITEMS}) GROUP BY key
            ORDER BY uniqExact(person) DESC, key LIMIT %(fallback)s
        ) AS popular
        WHERE NOT has(mine, key)
    )
    GROUP BY target, key
) AS candidates
ANY LEFT JOIN (
    SELECT key, toUInt64(uniqExact(person)) AS pop FROM ({_PERSON_ITEMS}) GROUP BY key
) AS popularity USING key
ORDER BY target, co DESC, pop DESC, key
LIMIT %(limit)s BY target
"""  # noqa: S608 - our SQL fragments only; values are bound parameters


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One recommended item. ``item`` is the product, or the page's path; ``url`` is set for pages.

    ``score`` is how many people who share something with the contact have it (0 for a
    popularity fill-up); ``popularity`` is how many people have it at all.
    """

    item: str
    kind: Literal["item", "page"]
    url: str
    score: int
    popularity: int

    def __str__(self) -> str:
        return self.item


def recommended(store: EventStore, contact_ids: Sequence[str], limit: int, *, kind: str = "any",
                path_prefix: str = "", site_id: str = "", days: int = 180,
                now: datetime | None = None) -> dict[str, list[Recommendation]]:
    """Up to ``limit`` recommendations for each of ``contact_ids`` (every id is a key of the result).

    ``kind`` 'item' keeps products only, 'page' pages only (``path_prefix`` narrows pages, e.g.
    '/products/'); ``site_id`` '' looks at every site; ``days`` is the window of behaviour read.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not 1 <= limit <= MAX_RECOMMENDED:
        raise ValueError(f"limit must be between 1 and {MAX_RECOMMENDED}, got {limit}")
    targets = sorted(set(contact_ids))
    result: dict[str, list[Recommendation]] = {contact_id: [] for contact_id in contact_ids}
    if not targets:
        return result
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    params = {"since": since.replace(tzinfo=None, microsecond=0), "site": site_id, "kind": kind,
              "prefix": path_prefix, "targets": tuple(targets), "target_list": targets, "limit": limit,
              "fallback": limit + _FALLBACK_EXTRA}
    rows = store.query(RECOMMENDED_SQL, params, name="crm recommended").rows
    for target, key, co, pop in rows:
        result[target].append(_recommendation(key, int(co), int(pop)))
    return result


def _recommendation(key: str, score: int, popularity: int) -> Recommendation:
    if key[:1] == "b":
        return Recommendation(key[1:], "item", "", score, popularity)
    url = key[1:]
    return Recommendation(urlsplit(url).path or "/", "page", url, score, popularity)
