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
from datetime import UTC, datetime
from importlib import resources

from tracker.errors import OdnosError, QueryError
from tracker.store.base import EventStore

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
    """Create the database if missing, apply pending migrations, return the names applied."""
    store.ensure_database()
    store.command(_LEDGER)
    done = applied(store)
    ran = []
    for migration in available():
        label = f"{migration.version}_{migration.name}"
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise OdnosError(f"migration {label}.sql changed after it was applied to "
                                 f"{store.database}; add a new numbered file instead of editing it")
            continue
        for statement in migration.statements():
            _apply(store, statement)
        store.insert("schema_migrations", [{
            "version": migration.version, "name": migration.name, "checksum": migration.checksum,
            "applied_at": int(datetime.now(UTC).timestamp()),
        }])
        log.info("applied migration %s to %s", label, store.database)
        ran.append(label)
    return ran


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

