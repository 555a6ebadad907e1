"""Turn a (validated) segment definition into one SQL condition over a ``contacts FINAL`` row.

The SQL text comes only from fragments written here; field names pass through the whitelist in
``FIELDS``, and every value the user wrote (attribute names, paths, event names, numbers, dates)
becomes a ``%(pN)s`` parameter for tracker.store.sql's renderer. The result runs unchanged on chDB
26 and ClickHouse 18.16: contact conditions are plain expressions on the row, behaviour is
``contact_id IN (subquery counting events per contact)``, nothing else (no window functions, no
Map, no JSON functions).

Behaviour counts people only: every behaviour subquery keeps ``is_bot = 0 AND is_machine = 0``,
and email opens and clicks also leave out those a later verdict revised (tracker.queries.machines).
An event belongs to a contact when it carries the contact id (email events, the hand-off
pageview, identify), or else when its visitor's newest identity link names the contact.
"Last seen" reads the ``last_seen`` table (schemas/clickhouse/0007), the same events kept as one
newest time per contact and visitor, so it costs the same at 10 M events as at 100 M.
Windows ("in the last D days") are measured from ``now``, which the caller may fix (tests do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tracker.enrich.email_machines import REVISION_EVENT
from tracker.queries.contacts.columns import CONSENT_SQL
from tracker.queries.machines import human_condition

# Contact fields a "field" condition may name -> the column; nothing else reaches the SQL.
FIELDS = {"email": "email", "first_name": "first_name", "last_name": "last_name", "source": "source"}

# Events that carry the contact id (email events): no look-up.
_DIRECT = "SELECT contact_id AS cid FROM events WHERE contact_id != '' AND {where}"

# Site events: the event's own contact id (the hand-off pageview, identify), else the newest link
# of its visitor. LEFT, not INNER: an ANY INNER JOIN also collapses repeated left rows on newer
# ClickHouse (not on 18.16), and the counts need every row. Visitors are joined on a 64-bit hash
# of (site, visitor): a hash table of integers is cheaper to build and probe than one of string
# pairs (a collision, about one in 10^13 per pair at a million links, would give one visitor's
# events to another's contact). The join is built only from the links of visitors whose matching
# events carry no contact id of their own (the only rows that use it): built from every link it
# cost twice the events it served (a signup condition at 1 M contacts and 10 M events: 0.43 s,
# against 0.20 s so, the second pass over the events included).
_ATTRIBUTED = """
    SELECT cid FROM (
        SELECT if(contact_id != '', contact_id, linked) AS cid
        FROM (SELECT contact_id, cityHash64(site_id, visitor_id) AS visitor_key FROM {source}
              WHERE {where}) AS ev
        ANY LEFT JOIN (
            SELECT cityHash64(site_id, visitor_id) AS visitor_key, argMax(contact_id, ts) AS linked
            FROM identities
            WHERE cityHash64(site_id, visitor_id) IN (
                SELECT cityHash64(site_id, visitor_id) FROM {source} WHERE contact_id = '' AND ({where}))
            GROUP BY visitor_key
        ) AS li USING (visitor_key)
    ) WHERE cid != ''
"""

# Counting: one row per matching event and contact, then a HAVING on the count.
_COUNTED = "SELECT cid FROM ({rows}) GROUP BY cid HAVING {having}"

# The contacts any machine_revision names (revisions are written with no site).
_REVISED_CONTACTS = (f"contact_id IN (SELECT contact_id FROM events "  # noqa: S608 - our SQL fragments only; values are bound parameters
                     f"WHERE site_id = '' AND name = '{REVISION_EVENT}')")


@dataclass
class Compiled:
    """``sql`` is a boolean expression over a contacts row; ``params`` the values it names."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


class _Compiler:
    def __init__(self, now: datetime, last_campaign: str) -> None:
        self.now = now
        self.last_campaign = last_campaign
        self.params: dict[str, Any] = {}

    def value(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def time(self, when: datetime) -> str:
        # Explicitly UTC: a bare literal would be read in the server's time zone on some versions.
        return f"toDateTime({self.value(when.strftime('%Y-%m-%d %H:%M:%S'))}, 'UTC')"

    def ago(self, days: int) -> str:
        return self.time(self.now - timedelta(days=days))

    # -- groups ---------------------------------------------------------------------------------

    def node(self, node: dict[str, Any]) -> str:
        if "all" in node:
            parts = [self.node(child) for child in node["all"]]
            return "(" + " AND ".join(parts) + ")" if parts else "1"
        if "any" in node:
            return "(" + " OR ".join(self.node(child) for child in node["any"]) + ")"
        if "not" in node:
            return f"NOT ({self.node(node['not'])})"
        return getattr(self, "_" + node["type"])(node)

    # -- the contact row ------------------------------------------------------------------------

    def text_test(self, value_sql: str, exists_sql: str, node: dict[str, Any]) -> str:
        op = node["op"]
        if op == "exists":
            return exists_sql
        if op == "in":
            return f"{value_sql} IN {self.value(tuple(node['values']))}"
        operand = self.value(node["value"])
        return {"equals": f"{value_sql} = {operand}", "not_equals": f"{value_sql} != {operand}",
                "contains": f"position({value_sql}, {operand}) > 0"}[op]

    def _attribute(self, node: dict[str, Any]) -> str:
        key = self.value(node["name"])
        return self.text_test(f"attrs.value[indexOf(attrs.key, {key})]", f"has(attrs.key, {key})", node)

    def _field(self, node: dict[str, Any]) -> str:
        column = FIELDS[node["field"]]
        return self.text_test(column, f"{column} != ''", node)

    def _tag(self, node: dict[str, Any]) -> str:
        return f"has(tags, {self.value(node['tag'])})"

    def _consent(self, node: dict[str, Any]) -> str:
        states = node["status"] if isinstance(node["status"], list) else [node["status"]]
        return f"{CONSENT_SQL} IN {self.value(tuple(states))}"

    def _created(self, node: dict[str, Any]) -> str:
        terms = []
        if "within_days" in node:
            terms.append(f"created_at >= {self.ago(node['within_days'])}")
        if "more_than_days" in node:
            terms.append(f"created_at < {self.ago(node['more_than_days'])}")
        if "after" in node:
            terms.append(f"created_at >= {self.time(_day(node['after']))}")
        if "before" in node:
            terms.append(f"created_at < {self.time(_day(node['before']))}")
        return "(" + " AND ".join(terms) + ")"

    # -- behaviour ------------------------------------------------------------------------------

    def behaviour(self, filters: list[str], node: dict[str, Any], *, via_visitors: bool,
                  email: bool = False) -> str:
        """``contact_id`` in (or not in) the contacts with the right number of matching events.

        ``email``: opens and clicks, whose verdict a later revision may turn to machine (read
        through tracker.queries.machines, scoped to these same events).
        """
        filters = list(filters)
        if "days" in node:
            filters.append(f"ts >= {self.ago(node['days'])}")
        if "site" in node:
            filters.append(f"site_id = {self.value(node['site'])}")
        scope = " AND ".join(filters)
        if email:
            # Only the contacts a revision names can have a revised open or click: scoping the
            # revision look-up to them keeps it to a few rows however many emails went out.
            where = f"{scope} AND " + human_condition(f"{scope} AND {_REVISED_CONTACTS}")
        else:
            where = f"{scope} AND is_bot = 0 AND is_machine = 0"
        template = _ATTRIBUTED if via_visitors else _DIRECT
        rows = template.format(source="events", where=where)
        at_most = node.get("at_most")
        at_least = node.get("at_least", 1 if at_most is None else 0)
        if at_least == 1 and at_most is None:  # "ever did": no counting needed
            return f"contact_id IN ({rows})"
        if at_least >= 1:
            having = f"count() >= {self.value(at_least)}"
            if at_most is not None:
                having += f" AND count() <= {self.value(at_most)}"
            return f"contact_id IN ({_COUNTED.format(rows=rows, having=having)})"
        if at_most is None:
            return "1"  # at least zero times: everyone
        having = f"count() > {self.value(at_most)}"
        return f"contact_id NOT IN ({_COUNTED.format(rows=rows, having=having)})"

    def _visited(self, node: dict[str, Any]) -> str:
        if "path" in node:
            path = f"pathname = {self.value(node['path'])}"
        else:
            path = f"pathname LIKE {self.value(_like(node['path_pattern']))}"
        return self.behaviour(["name = 'pageview'", path], node, via_visitors=True)

    def _event(self, node: dict[str, Any]) -> str:
        filters = [f"name = {self.value(node['name'])}"]
        if "property" in node:
            prop = node["property"]
            key = self.value(prop["name"])
            filters.append(self.text_test(f"props.value[indexOf(props.key, {key})]",
                                          f"has(props.key, {key})", prop))
        return self.behaviour(filters, node, via_visitors=True)

    def _purchased(self, node: dict[str, Any]) -> str:
        filters = ["name = 'purchase'"]
        if "item" in node:
            filters.append(f"props.value[indexOf(props.key, 'item')] = {self.value(node['item'])}")
        amount = "toFloat64OrZero(props.value[indexOf(props.key, 'value')])"
        if "min_value" in node:
            filters.append(f"{amount} >= {self.value(float(node['min_value']))}")
        if "max_value" in node:
            filters.append(f"{amount} <= {self.value(float(node['max_value']))}")
        return self.behaviour(filters, node, via_visitors=True)

    def _campaign(self, node: dict[str, Any]) -> list[str]:
        if node.get("last_campaign"):
            return [f"campaign_id = {self.value(self.last_campaign)}"]
        if "campaign" in node:
            return [f"campaign_id = {self.value(node['campaign'])}"]
        return []

    def _opened(self, node: dict[str, Any]) -> str:
        return self.behaviour(["name = 'email_open'", *self._campaign(node)], node, via_visitors=False,
                              email=True)

    def _clicked(self, node: dict[str, Any]) -> str:
        filters = ["name = 'email_click'", *self._campaign(node)]
        if "link" in node:
            filters.append(f"link_id = {self.value(node['link'])}")
        if "url" in node:
            filters.append(f"target_url = {self.value(node['url'])}")
        return self.behaviour(filters, node, via_visitors=False, email=True)

    def _last_seen(self, node: dict[str, Any]) -> str:
        # The last_seen table (schemas/clickhouse/0007) holds each (contact, site, visitor)'s newest
        # human activity; seen within D days is an event of the same kinds in that window.
        days = node.get("less_than_days", node.get("more_than_days"))
        where = f"ts >= {self.ago(days)}"
        seen = f"contact_id IN ({_ATTRIBUTED.format(source='last_seen', where=where)})"
        return seen if "less_than_days" in node else f"NOT ({seen})"


def _day(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


def _like(pattern: str) -> str:
    """A glob with ``*`` for any text, as a LIKE pattern (%, _ and backslash taken literally)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def uses_last_campaign(node: dict[str, Any]) -> bool:
    """Does the definition name "the last campaign" anywhere (so its id must be looked up first)?"""
    if "all" in node or "any" in node:
        return any(uses_last_campaign(child) for child in node.get("all", node.get("any")))
    if "not" in node:
        return uses_last_campaign(node["not"])
    return bool(node.get("last_campaign"))


def compile_definition(definition: dict[str, Any], *, now: datetime | None = None,
                       last_campaign: str = "") -> Compiled:
    """The SQL condition and parameters of a validated definition, windows measured from ``now``.

    ``last_campaign`` is the id "the last campaign" stands for, looked up by the caller when
    ``uses_last_campaign`` says so: a value in the query rather than a scalar subquery, which
    ClickHouse 18.16 evaluates again in every subquery that names it.
    """
    compiler = _Compiler((now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0), last_campaign)
    return Compiled(compiler.node(definition), compiler.params)
