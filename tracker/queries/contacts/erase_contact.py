"""Erasure in the event store: find every row tied to a contact, delete it, wait until it is gone.

Tied means the contact id, or (in a table with site and visitor columns) a visitor that was ever
linked to the contact: a shared device's visits go too, since keeping someone's visits is worse
than losing a stranger's. The tables are found in ``system.columns`` rather than listed here, so
a table a later migration adds with a ``contact_id`` column is erased as well. ``ALTER TABLE ...
DELETE`` is a mutation, asynchronous on the server (and on chDB, where it usually finishes at
once); both engines report progress in ``system.mutations``, which is what the wait polls
(``mutations_sync`` does not exist on 18.16). On a cluster the tables found are the ``Distributed``
ones (counts read every shard) and the mutations run on each node's local table.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from tracker.errors import OdnosError
from tracker.store.base import EventStore

TABLES_SQL = """
SELECT table, groupArray(name) AS columns
FROM system.columns
WHERE database = currentDatabase() AND name IN ('contact_id', 'site_id', 'visitor_id')
  AND table IN (SELECT name FROM system.tables
                WHERE database = currentDatabase() AND engine LIKE %(engine)s)
GROUP BY table
HAVING has(columns, 'contact_id')
ORDER BY table
"""

EVER_LINKED_SQL = """
SELECT DISTINCT site_id, visitor_id FROM identities WHERE contact_id = %(contact_id)s
"""

PENDING_SQL = """
SELECT count() FROM system.mutations
WHERE database = currentDatabase() AND table = %(table)s AND is_done = 0
"""

_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


@dataclass(frozen=True)
class Tied:
    """Where a contact's rows are: the condition per table, with its parameters."""

    tables: dict[str, str]  # table -> WHERE condition
    params: dict[str, Any]


def tied_rows(store: EventStore, contact_id: str) -> Tied:
    """The tables holding the contact's rows and the condition that selects them."""
    by_site: dict[str, list[str]] = defaultdict(list)
    for site_id, visitor_id in store.query(EVER_LINKED_SQL, {"contact_id": contact_id},
                                           name="erase: linked visitors").rows:
        by_site[site_id].append(visitor_id)
    params: dict[str, Any] = {"contact_id": contact_id}
    visitor_terms = []
    for n, (site_id, visitors) in enumerate(sorted(by_site.items())):
        params[f"s{n}"], params[f"v{n}"] = site_id, tuple(sorted(visitors))
        visitor_terms.append(f"(site_id = %(s{n})s AND visitor_id IN %(v{n})s)")
    tables = {}
    engine = "Distributed" if store.cluster else "%MergeTree"
    for table, columns in store.query(TABLES_SQL, {"engine": engine}, name="erase: tables").rows:
        if not _NAME.match(table):
            raise OdnosError(f"cannot erase from table {table!r}: unexpected characters in its name")
        terms = ["contact_id = %(contact_id)s"]
        if {"site_id", "visitor_id"} <= set(columns):
            terms += visitor_terms
        tables[table] = " OR ".join(terms)
    return Tied(tables, params)


def count_tied(store: EventStore, tied: Tied) -> dict[str, int]:
    """How many rows of each table are the contact's."""
    return {table: store.query(f"SELECT count() FROM `{table}` WHERE {where}", tied.params,  # noqa: S608 - table names checked against _NAME; values bound
                               name=f"erase: count {table}").scalar()
            for table, where in tied.tables.items()}


def delete_tied(store: EventStore, tied: Tied, *, timeout: float = 600.0) -> None:
    """Delete the rows and return once every mutation is done (OdnosError after ``timeout``)."""
    nodes = store.nodes()
    for table, where in tied.tables.items():
        for node in nodes:
            node.command(f"ALTER TABLE `{store.local(table)}` DELETE WHERE {where}", tied.params)
    deadline = time.monotonic() + timeout
    for table, node in ((table, node) for table in tied.tables for node in nodes):
        while node.query(PENDING_SQL, {"table": store.local(table)}, name="erase: mutations").scalar():
            if time.monotonic() > deadline:
                raise OdnosError(f"the deletion from {table} has not finished after {timeout:.0f} s; "
                                 "it goes on in ClickHouse (system.mutations): run the erase again later "
                                 "to check", code="erase_pending", status=503)
            time.sleep(0.1)
