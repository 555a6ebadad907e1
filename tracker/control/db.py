"""Open the control-plane database from a URL, hand out sessions, and migrate it to the newest schema.

Two backends, one code path: SQLite (the embedded default, a file shared by several worker
processes) and PostgreSQL through psycopg 3 (server mode). Everything backend-specific lives here.

SQLite notes, since several processes share the file:

- WAL lets readers go on while one process writes; the busy timeout makes a writer wait for the
  lock instead of failing at once with "database is locked".
- ``synchronous`` stays at its default (FULL): the send ledger must survive a power cut, because
  a lost ``pending`` row could mean a contact mailed twice.
- The driver's own transaction handling is kept: it issues ``BEGIN`` just before the first write,
  so a read-then-write transaction takes the write lock at its first write and waits for it
  there. (An explicit ``BEGIN`` at the first read would make a later write fail without waiting in
  WAL mode whenever another process committed in between.) Savepoints are therefore not used.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine.interfaces import ExceptionContext
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from tracker.errors import ConfigError, StoreUnavailable

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
URL_EXAMPLES = "sqlite:///odnos-data/control.db or postgresql://odnos:PASSWORD@localhost:5432/odnos"

SQLITE_BUSY_TIMEOUT_SECONDS = 15
POSTGRES_CONNECT_TIMEOUT_SECONDS = 10
# Key of the PostgreSQL advisory lock held while migrating (any fixed 64-bit number; this one
# spells "odnos-mg" in ASCII), so two processes starting at once do not both create the tables.
MIGRATION_LOCK_KEY = 0x6F646E6F732D6D67

_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}


class ControlPlane:
    """The control-plane database of one odnos deployment.

    ``url`` is normalised (``postgresql://`` becomes ``postgresql+psycopg://``); ``sessions`` is
    the session factory; ``session()`` opens one transaction. Bad URLs raise ``ConfigError``; an
    unreachable server or an unusable SQLite folder raises ``StoreUnavailable`` (at construction
    for the folder, at first connection for the server).
    """

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = _create_engine(self.url)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def session(self) -> AbstractContextManager[Session]:
        """One unit of work: ``with plane.session() as s:`` commits at the end, rolls back on error."""
        return self.sessions.begin()

    def migrate(self) -> None:
        """Bring the schema to the newest revision; a no-op when it is there already.

        Safe when several processes start at once: all but one wait for the migration lock
        (SQLite's write lock via ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock) and then find
        the schema current. Both backends have transactional DDL, so a failed migration leaves
        the previous schema intact.
        """
        with self.engine.connect() as connection:
            if self.dialect == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                # Transaction-scoped: released by the commit or rollback, even if we crash.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            command.upgrade(alembic_config(connection), "head")
            connection.commit()

    def current_revision(self) -> str | None:
        """The applied revision id (``"0001"``...), or None for a database never migrated."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def dispose(self) -> None:
        """Close pooled connections (at shutdown, and in a child process after ``fork``)."""
        self.engine.dispose()


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration for working on this connection, with no alembic.ini.

    ``migrate`` uses it; so can developer commands, e.g. writing the next migration:
    ``command.revision(alembic_config(conn), "add x", autogenerate=True, rev_id="0002")``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def normalize_url(url: str) -> URL:
    """Parse and check a control-database URL; raise ``ConfigError`` saying what a valid one looks like."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError) as exc:
        raise _bad_url(repr(url), f"is not a URL; use {URL_EXAMPLES}.") from exc
    shown = repr(parsed.render_as_string(hide_password=True))
    if parsed.drivername == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise _bad_url(
                shown,
                "names no file; several processes share the control database, so it must be a file, "
                "e.g. sqlite:///odnos-data/control.db.",
            )
        return parsed
    if parsed.drivername in _POSTGRES_SCHEMES:
        if importlib.util.find_spec("psycopg") is None:
            raise _bad_url(
                shown, "needs the psycopg driver: pip install 'odnos[postgres]' (or 'psycopg[binary]')."
            )
        if not parsed.host or not parsed.database:
            raise _bad_url(
                shown,
                "lacks a host or a database name; use e.g. postgresql://odnos:PASSWORD@localhost:5432/odnos.",
            )
        return parsed.set(drivername="postgresql+psycopg")
    raise _bad_url(shown, f"uses {parsed.drivername!r}, which odnos does not support; use {URL_EXAMPLES}.")


def _bad_url(shown: str, problem: str) -> ConfigError:
    return ConfigError(f"The control database URL (ODNOS_DATABASE_URL) {shown} {problem}")


def _create_engine(url: URL) -> Engine:
    if url.drivername == "sqlite":
        _check_sqlite_folder(url)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        event.listen(engine, "connect", _prepare_sqlite_connection)
    else:
        connect_args = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_SECONDS
        # pre_ping: connections pooled before a server restart are replaced, not handed out dead.
        engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    event.listen(engine, "handle_error", _explain_connect_error)
    return engine


def _check_sqlite_folder(url: URL) -> None:
    """Create the database's folder if needed; fail early, naming it, if SQLite could not write there."""
    folder = Path(url.database or "").expanduser().absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(
            f"Cannot create the folder {str(folder)!r} for the control database: {exc.strerror}. "
            f"Create it, or point the control database URL elsewhere."
        ) from exc
    # SQLite writes the -wal and -shm files beside the database, so the folder itself must be writable.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreUnavailable(
            f"The folder {str(folder)!r} of the control database is not writable by this process; "
            f"SQLite keeps its -wal and -shm files there. Fix its permissions or choose another path."
        )


def _prepare_sqlite_connection(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    _switch_to_wal(dbapi_connection)
    dbapi_connection.execute("PRAGMA foreign_keys=ON")  # off by default in SQLite; ON DELETE needs it


def _switch_to_wal(dbapi_connection: sqlite3.Connection) -> None:
    """Put the file in WAL mode (a no-op once it is), retrying while another process holds it.

    Switching a new file needs an exclusive lock, and SQLite answers "database is locked" at once,
    without its busy handler, when two connections both try: so this waits here instead.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _explain_connect_error(context: ExceptionContext) -> None:
    """Turn a failure to connect (not a failing statement) into ``StoreUnavailable`` with a hint."""
    if context.connection is not None or context.engine is None:
        return
    url = context.engine.url
    if url.drivername == "sqlite":
        hint = "check that the file is a SQLite database and that this process may read and write it"
    else:
        hint = (
            f"is PostgreSQL running and reachable at {url.host}:{url.port or 5432}, "
            f"and do the user, password and database name in the URL exist?"
        )
    raise StoreUnavailable(
        f"Cannot open the control database {url.render_as_string(hide_password=True)!r}: "
        f"{str(context.original_exception).strip()}; {hint}"
    ) from context.original_exception
