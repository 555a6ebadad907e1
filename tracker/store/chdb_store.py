"""The embedded backend: chDB (ClickHouse as a library) in this process, on a folder of its own.

Facts from shared/clickhouse-compat.md drive the shape: one shared chDB session serialises every
call, so each call borrows a connection of its own (cheap to open: 0.13 ms) from a small pool; readers
get ``readonly=1``
connections so the dashboard can never write; the engine's memory is capped from the settings; and
the folder is locked so a second process gets a clear message instead of chDB's bare error.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

import chdb
import orjson

from tracker.errors import QueryError, RowsRejected, StoreUnavailable
from tracker.settings import ClickHouseTarget
from tracker.store.base import EventStore, Result, rejection
from tracker.store.lock import FolderLock
from tracker.store.sql import render

_locks: dict[str, FolderLock] = {}
_locks_guard = threading.Lock()
_open_stores: weakref.WeakSet[ChdbStore] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Close every pooled connection before the interpreter tears down.

    A connection still alive when chDB's own exit-time shutdown runs crashes the process (SIGSEGV
    after "ShutdownTablesThreadPool is not initialized"), so a command that ends without closing
    its store would exit with -11 after doing its work.
    """
    for store in list(_open_stores):
        store.close()


def _folder_lock(target: ClickHouseTarget) -> FolderLock:
    """One lock per folder per process: several stores in a process share the engine."""
    key = str(target.path)
    with _locks_guard:
        if key not in _locks:
            lock = FolderLock(target.path.with_name(target.path.name + ".lock"))
            lock.acquire("odnos")
            _locks[key] = lock
        return _locks[key]


def _parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _converter(ch_type: str) -> Callable[[Any], Any] | None:
    """How a JSONCompact value of ``ch_type`` becomes the Python value clickhouse-driver would give."""
    if ch_type.startswith("Nullable("):
        inner = _converter(ch_type[9:-1])
        return None if inner is None else (lambda v: None if v is None else inner(v))
    if ch_type.startswith("Array("):
        inner = _converter(ch_type[6:-1])
        return None if inner is None else (lambda v: [inner(x) for x in v])
    if ch_type.startswith("DateTime"):
        return _parse_datetime
    if ch_type == "Date":
        return date.fromisoformat
    if ch_type.startswith(("UInt64", "Int64")):
        return int
    if ch_type.startswith("Float"):
        return float
    return None


class ChdbStore(EventStore):
    kind = "chdb"

    def __init__(self, target: ClickHouseTarget, *, memory_limit: int, readonly: bool = False) -> None:
        self.database = target.database
        self.readonly = readonly
        self._target = target
        self._memory_limit = memory_limit
        # Connections not in use. A pool, not one per thread: a connection kept in a thread-local is
        # finalised when its thread ends, and chDB's finaliser hangs in a thread the server started
        # (its request threads): the stop of `odnos serve` then waited for the kill timeout.
        self._idle: list[Any] = []
        self._idle_guard = threading.Lock()
        self._lock = _folder_lock(target)
        _open_stores.add(self)

    def _open(self) -> Any:
        query = f"max_server_memory_usage={self._memory_limit}&session_timezone=UTC"
        if self.readonly:
            query += "&readonly=1"
        try:
            self._target.path.mkdir(parents=True, exist_ok=True)
            conn = chdb.connect(f"{self._target.path}?{query}")
        except Exception as exc:  # chDB raises bare RuntimeError/ChdbError here
            raise StoreUnavailable(f"cannot open the embedded store in {self._target.path}: {exc}. "
                                   "Is another odnos process using this data folder?") from None
        # The database may not exist yet: ensure_database() drops the pool once it is created.
        with contextlib.suppress(Exception):
            conn.query(f"USE {self.database}")
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._idle_guard:
            conn = self._idle.pop() if self._idle else None
        conn = conn or self._open()
        try:
            yield conn
        finally:
            with self._idle_guard:
                self._idle.append(conn)

    def _run(self, sql: str, fmt: str, name: str) -> Any:
        try:
            with self._connection() as conn:
                return conn.query(sql, fmt)
        except StoreUnavailable:
            raise
        except Exception as exc:
            # Show the statement as the caller wrote it, without the FORMAT clause query() adds
            shown = name or sql.removesuffix(_ADDED_FORMAT)[:60]
            raise QueryError(f"query {shown!r} failed: {str(exc).replace(_ADDED_FORMAT, '')}") from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None, *, name: str = "") -> Result:
        text = render(sql, params)
        result = self._run(text + _ADDED_FORMAT if _needs_format(text) else text, "JSONCompact", name)
        raw = result.bytes()
        if not raw:
            return Result((), [])
        payload = orjson.loads(raw)
        meta = payload.get("meta", [])
        columns = tuple(m["name"] for m in meta)
        converters = [_converter(m["type"]) for m in meta]
        rows = []
        for values in payload.get("data", []):
            rows.append(tuple(v if conv is None or v is None else conv(v)
                              for conv, v in zip(converters, values, strict=True)))
        return Result(columns, rows)

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(render(sql, params), "CSV", "command")

    def insert_json_lines(self, table: str, data: bytes, rows: int) -> None:
        if not rows:
            return
        try:
            text = data.decode()  # the data travels inside the query text, which must be UTF-8
        except UnicodeDecodeError as exc:
            reason = f"the line is not UTF-8 (byte {data[exc.start]:#04x})"
            raise RowsRejected(f"{table} refused the rows: {reason}", server_message=reason,
                               row=data.count(b"\n", 0, exc.start) + 1) from None
        try:
            self._run(f"INSERT INTO {self.database}.{table} FORMAT JSONEachRow\n{text}", "CSV",
                      f"insert into {table}")
        except QueryError as exc:
            rejected = rejection(table, str(exc.__cause__ or exc))
            if rejected is None:
                raise
            raise rejected from exc

    def ping(self) -> None:
        self._run("SELECT 1", "CSV", "ping")

    def ensure_database(self) -> None:
        self._run(f"CREATE DATABASE IF NOT EXISTS {self.database}", "CSV", "create database")
        self.close()  # connections opened before it existed are not in it: the next ones are

    def announce_holder(self, holder: str) -> None:
        self._lock.describe(holder)

    def close(self) -> None:
        """Close the connections not in use; a later call opens new ones."""
        with self._idle_guard:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_ADDED_FORMAT = "\nFORMAT JSONCompact"


def _needs_format(sql: str) -> bool:
    """True unless the statement already ends in its own FORMAT clause."""
    tail = sql.rstrip().rstrip(";").upper().rsplit(None, 2)
    return not (len(tail) >= 2 and tail[-2] == "FORMAT")
