"""Apply the ClickHouse DDL in ``schemas/clickhouse/NNNN_name.sql`` in order, once each.

The runner records each applied file (version, name, checksum) in ``schema_migrations``, so running
it twice is a no-op, and it refuses to go on when a file that was applied has since been edited
(write a new numbered file instead). Every statement is idempotent (``IF NOT EXISTS``; an
``ADD COLUMN`` whose column exists counts as done, 18.16 having no ``IF NOT EXISTS`` there), so two
runners racing, or a crash between a statement and its record, only repeat harmless work. The same
files run on chDB 26 and on ClickHouse server 18.16, as shared/clickhouse-compat.md requires.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

from tracker.errors import OdnosError, QueryError
from tracker.store.base import EventStore
from tracker.store.cluster import Layout, created_tables, has_zookeeper

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version String,
    name String,
    checksum String,
    applied_at DateTime('UTC')
)
ENGINE = MergeTree
ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self) -> list[str]:
        """The file's statements, split on semicolons at line ends, comment lines dropped."""
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*$", body, flags=re.MULTILINE) if s.strip()]


def available() -> list[Migration]:
    """Every migration file shipped in the ``schemas`` package, ordered by version."""
    folder = resources.files("schemas") / "clickhouse"
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(match.group(1), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise OdnosError("two migration files share a version number in schemas/clickhouse")
    return found


def applied(store: EventStore) -> dict[str, str]:
    """Version -> checksum of what this database has applied."""
    result = store.query("SELECT version, any(checksum) FROM schema_migrations GROUP BY version",
                         name="applied migrations")
    return dict(result.rows)


def migrate(store: EventStore) -> list[str]:
    """Create the database where missing and apply pending migrations on every node; return their names.

    On a cluster each node keeps its own ledger, and a migration runs node by node in the form
    ``tracker.store.cluster`` gives it; a node that is behind (new, or down during the last run) is
    brought up to the others. Nodes that disagree (one applied a file the others applied with another
    checksum) are refused before anything runs.
    """
    nodes = store.nodes()
    ledgers = []
    for node in nodes:
        node.ensure_database()
        node.command(_LEDGER)
        ledgers.append(applied(node))
    migrations = available()
    _check_ledgers(store, nodes, ledgers, migrations)
    layout = cluster_layout(store, migrations) if store.cluster else None
    ran = []
    for migration in migrations:
        label = f"{migration.version}_{migration.name}"
        first = True
        for node, done in zip(nodes, ledgers, strict=True):
            if migration.version in done:
                continue
            for statement in migration.statements():
                for sql in layout.for_node(statement, first) if layout else [statement]:
                    _apply(node, sql)
            node.command(_RECORD, {"version": migration.version, "name": migration.name,
                                   "checksum": migration.checksum})
            log.info("applied migration %s to %s", label, node.label)
            first = False
        if not first:
            ran.append(label)
    return ran


_RECORD = """
INSERT INTO schema_migrations (version, name, checksum, applied_at)
SELECT %(version)s, %(name)s, %(checksum)s, now()
"""


def _check_ledgers(store: EventStore, nodes: list[EventStore], ledgers: list[dict[str, str]],
                   migrations: list[Migration]) -> None:
    """Refuse edited files and nodes that applied one version differently."""
    shipped = {m.version: m for m in migrations}
    seen: dict[str, tuple[str, EventStore]] = {}
    for node, done in zip(nodes, ledgers, strict=True):
        for version, checksum in sorted(done.items()):
            migration = shipped.get(version)
            if migration is not None and checksum != migration.checksum:
                raise OdnosError(f"migration {version}_{migration.name}.sql changed after it was applied to "
                                 f"{node.label}; add a new numbered file instead of editing it")
            other = seen.setdefault(version, (checksum, node))
            if other[0] != checksum:
                raise OdnosError(f"the nodes of the cluster disagree: {other[1].label} and {node.label} "
                                 f"applied migration {version} with different contents; restore one "
                                 "version of it on every node before odnos uses the cluster")


def cluster_layout(store: EventStore, migrations: list[Migration]) -> Layout:
    """How ``migrations`` become statements on the nodes of ``store``'s cluster."""
    statements = [s for m in migrations for s in m.statements()]
    return Layout(cluster=store.cluster, database=store.database,
                  replicated=has_zookeeper(store), tables=created_tables(statements))


# 18.16 has no ADD COLUMN IF NOT EXISTS: a column another runner added first means the work is done.
_ADD_COLUMN = re.compile(r"^\s*ALTER\s+TABLE\s+\S+\s+ADD\s+COLUMN\s", re.IGNORECASE)


def _apply(store: EventStore, statement: str) -> None:
    """Run one statement; an ``ADD COLUMN`` whose column exists already counts as applied."""
    try:
        store.command(statement)
    except QueryError as exc:
        if not (_ADD_COLUMN.match(statement) and "already exists" in str(exc)):
            raise
        log.info("column already added by another runner: %s", statement.splitlines()[0][:80])

