"""A ClickHouse cluster as ClickHouse builds it: local tables on every node, ``Distributed`` over them.

With ``ODNOS_CLICKHOUSE_CLUSTER=NAME`` (a cluster in the servers' ``remote_servers``), every table a
migration creates becomes two on each node: ``X_local``, which holds that shard's rows, and ``X``,
a ``Distributed`` table over the ``X_local`` of every shard. The product reads and writes ``X`` as
it does on one server; ClickHouse routes the rows and merges the answers. Nothing here splits data
or combines results itself.

Where rows live:

* ``events`` by ``sipHash64(visitor_id)``, so a visitor's sessions, funnels and retention are on
  one shard; every table with a ``visitor_id`` column (identities, last seen) the same way.
* ``contacts`` by ``sipHash64(contact_id)``: a contact's versions meet on one shard, where
  ``ReplacingMergeTree`` and ``FINAL`` keep the newest. A view that makes contacts from events
  writes through the ``Distributed`` table, so each contact lands on its shard.
* Every other table (the rollups) is filled by views over the node's own ``events_local``, so it
  holds that shard's part of each aggregate; reads merge the states across shards. A direct
  insert (the finished-sessions job) spreads at random.

Migrations run node by node (``ON CLUSTER`` needs ZooKeeper on 18.16, and a node-by-node run works
with or without it), each node keeping its own ``schema_migrations``. When the servers have
ZooKeeper, the local tables are ``Replicated*MergeTree`` with the path
``/clickhouse/tables/{shard}/<database>/<table>`` and the node's ``{replica}`` macro, so the
replicas of a shard share their rows (``internal_replication`` in ``remote_servers``).

Every statement of the product runs with ``distributed_product_mode = 'global'``: a subquery over
a distributed table inside a distributed query (``IN (SELECT ... FROM events)``, a join) runs once
on the node that was asked and is shipped to the shards, as ``GLOBAL IN`` would, so it sees every
shard's rows. Inserts run with ``insert_distributed_sync = 1``: an insert returns once the rows are
on their shards, so the spool never counts as landed what waits in a node's send queue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracker.errors import ConfigError, QueryError

if TYPE_CHECKING:
    from tracker.store.base import EventStore

LOCAL_SUFFIX = "_local"

SETTINGS = {"distributed_product_mode": "global", "insert_distributed_sync": 1}
"""What every query, command and insert of the product sends on a cluster."""

_CONTACT_KEYED = {"contacts": "sipHash64(contact_id)"}
_VISITOR_KEY = "sipHash64(visitor_id)"

_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\s*\((.*)\)\s*ENGINE\s*=\s*"
                           r"(\w+)(?:\(([^)]*)\))?(.*)$", re.IGNORECASE | re.DOTALL)
_CREATE_VIEW = re.compile(r"^\s*CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+\w+\s+TO\s+(\w+)\s",
                          re.IGNORECASE)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\s", re.IGNORECASE)
_ALTER = re.compile(r"^\s*ALTER\s+TABLE\s+(\w+)\s", re.IGNORECASE)
# A table name where SQL names tables: after FROM, JOIN, INTO, TO and TABLE.
_TABLE_AT = r"(\b(?:FROM|JOIN|INTO|TO|TABLE)\s+){name}\b"


@dataclass(frozen=True)
class Node:
    """One server of the cluster, as its ``system.clusters`` row names it."""

    host: str
    port: int
    shard: int
    replica: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port} (shard {self.shard}, replica {self.replica})"


@dataclass(frozen=True)
class Layout:
    """How migrations become statements on a cluster's nodes."""

    cluster: str
    database: str
    replicated: bool
    tables: frozenset[str]  # every table the migrations create

    def for_node(self, statement: str, first: bool) -> list[str]:
        """What one migration statement becomes on one node (``first``: the first node of the run).

        ``CREATE TABLE`` makes the local table and the ``Distributed`` one; a view reads the local
        events and writes locally, unless its target is keyed by contact; a backfill ``INSERT``
        runs node by node on the local tables, or once through the ``Distributed`` tables when
        its target is keyed by contact; ``ALTER TABLE`` changes both tables.
        """
        created = _CREATE_TABLE.match(statement)
        if created:
            return self._create(*created.groups())
        view = _CREATE_VIEW.match(statement)
        if view:
            return [self._localise(statement, keep=view.group(1) if _routed(view.group(1)) else None)]
        insert = _INSERT.match(statement)
        if insert:
            if _routed(insert.group(1)):
                return [statement] if first else []
            return [self._localise(statement)]
        altered = _ALTER.match(statement)
        if altered:
            return [self._localise(statement), statement]
        raise ValueError(f"no cluster form for this migration statement: {statement[:80]}")

    def _create(self, name: str, columns: str, engine: str, arguments: str | None, rest: str) -> list[str]:
        local = name + LOCAL_SUFFIX
        if self.replicated:
            path = f"'/clickhouse/tables/{{shard}}/{self.database}/{local}', '{{replica}}'"
            arguments = f"{path}, {arguments}" if arguments else path
            engine = "Replicated" + engine
        engine_text = f"{engine}({arguments})" if arguments is not None else engine
        by_visitor = re.search(r"\bvisitor_id\s", columns)
        key = _CONTACT_KEYED.get(name) or (_VISITOR_KEY if by_visitor else "rand()")
        return [f"CREATE TABLE IF NOT EXISTS {local}\n({columns})\nENGINE = {engine_text}{rest}",
                f"CREATE TABLE IF NOT EXISTS {name} AS {local} "
                f"ENGINE = Distributed({self.cluster}, {self.database}, {local}, {key})"]

    def _localise(self, statement: str, keep: str | None = None) -> str:
        """``statement`` with every table it names turned into the node's local table (but ``keep``)."""
        for name in sorted(self.tables, key=len, reverse=True):
            if name != keep:
                statement = re.sub(_TABLE_AT.format(name=name), rf"\g<1>{name}{LOCAL_SUFFIX}", statement,
                                   flags=re.IGNORECASE)
        return statement


def _routed(table: str) -> bool:
    """Whether rows written to ``table`` must go through its ``Distributed`` table to their shard."""
    return table in _CONTACT_KEYED


def created_tables(statements: list[str]) -> frozenset[str]:
    """The tables these migration statements create."""
    return frozenset(m.group(1) for s in statements if (m := _CREATE_TABLE.match(s)))


NODES_SQL = """
SELECT host_address, port, shard_num, replica_num FROM system.clusters
WHERE cluster = %(cluster)s ORDER BY shard_num, replica_num
"""


def nodes(name: str, rows: list[tuple]) -> list[Node]:
    """The nodes of cluster ``name`` from the rows of ``NODES_SQL`` on any node."""
    found = [Node(host, port, shard, replica) for host, port, shard, replica in rows]
    if not found:
        raise ConfigError(f"ODNOS_CLICKHOUSE_CLUSTER={name}: the server at ODNOS_CLICKHOUSE_URL has no "
                          f"cluster {name!r} in its remote_servers; define it there on every node, or unset "
                          "ODNOS_CLICKHOUSE_CLUSTER for one server")
    return found


def has_zookeeper(store: EventStore) -> bool:
    """Whether the server has ZooKeeper configured (then tables are replicated)."""
    try:
        store.query("SELECT count() FROM system.zookeeper WHERE path = '/'", name="zookeeper")
    except QueryError:
        return False
    return True
