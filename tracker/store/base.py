"""The event store interface both backends implement, the result they return, and insert refusals."""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tracker.errors import RowsRejected

# ClickHouse error codes (the same on 18.16 and on chDB 26) an insert gets when the rows themselves
# cannot be stored: their text does not parse or does not fit the column, whatever the server's
# state, so sending them again can never succeed. Every other code (memory, too many parts, a
# missing table, a timeout) may clear, and the writer retries it.
REFUSED_DATA_CODES = frozenset({
    6,  # CANNOT_PARSE_TEXT
    25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
    26,  # CANNOT_PARSE_QUOTED_STRING
    27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  # ATTEMPT_TO_READ_AFTER_EOF
    33,  # CANNOT_READ_ALL_DATA
    38,  # CANNOT_PARSE_DATE
    41,  # CANNOT_PARSE_DATETIME
    53,  # TYPE_MISMATCH
    69,  # ARGUMENT_OUT_OF_BOUND
    70,  # CANNOT_CONVERT_TYPE
    72,  # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA (an unknown JSON field, too)
    128,  # TOO_LARGE_ARRAY_SIZE
    130,  # CANNOT_READ_ARRAY_FROM_TEXT
    131,  # TOO_LARGE_STRING_SIZE
    190,  # SIZES_OF_ARRAYS_DONT_MATCH (the two arrays of a Nested column)
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    376,  # CANNOT_PARSE_UUID
})
_CODE = re.compile(r"Code: (\d+)")
_ROW = re.compile(r"\(at row (\d+)\)")


def rejection(table: str, message: str) -> RowsRejected | None:
    """The ``RowsRejected`` for an insert's error text when it blames the rows; None when it does not."""
    code = _CODE.search(message)
    if code is None or int(code.group(1)) not in REFUSED_DATA_CODES:
        return None
    row = _ROW.search(message)
    text = message.strip()[:1000]
    return RowsRejected(f"{table} refused the rows: {text}", server_message=text,
                        row=int(row.group(1)) if row else None)


@dataclass(frozen=True)
class Result:
    """Rows of a query as tuples, with the column names."""

    columns: tuple[str, ...]
    rows: list[tuple]

    def first(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        row = self.first()
        return row[0] if row else None

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class EventStore(abc.ABC):
    """ClickHouse as odnos uses it: batched inserts, parameterised reads, DDL, ping.

    ``query`` and ``command`` take ``%(name)s`` placeholders rendered by ``tracker.store.sql``;
    values never go into SQL any other way. Inserts take whole batches (one part per insert).
    """

    kind: str
    database: str
    cluster: str = ""  # ODNOS_CLICKHOUSE_CLUSTER on a server; "" on one server and on chDB

    @property
    def label(self) -> str:
        """Which store this is, for messages."""
        return self.database

    @abc.abstractmethod
    def query(self, sql: str, params: Mapping[str, Any] | None = None, *, name: str = "") -> Result:
        """Run one SELECT and return its rows. ``name`` labels the query in logs and errors."""

    @abc.abstractmethod
    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one statement that returns nothing (DDL, ALTER)."""

    @abc.abstractmethod
    def insert_json_lines(self, table: str, data: bytes, rows: int) -> None:
        """Insert ``rows`` JSONEachRow lines (each ending in a newline) into ``table`` at once.

        All or nothing. Raises ``RowsRejected`` when the store refuses the data itself (see
        ``rejection``), ``StoreUnavailable`` or another ``QueryError`` when the failure may pass.
        """

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert a batch of rows given as dicts keyed by column name."""
        if rows:
            data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
            self.insert_json_lines(table, data, len(rows))

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    @abc.abstractmethod
    def ensure_database(self) -> None:
        """Create the database named in the URL when it is missing."""

    def nodes(self) -> list[EventStore]:
        """One store per server that holds tables (every node of a cluster), for what ClickHouse does
        per table and not through ``Distributed`` tables: DDL, dropping partitions, mutations."""
        return [self]

    def local(self, table: str) -> str:
        """The name ``table`` has on each of ``nodes()``: its node-local table on a cluster."""
        return table

    def announce_holder(self, holder: str) -> None:  # noqa: B027 - optional hook, a no-op for servers
        """Say which process holds the store, for the message another process gets (embedded only)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store may be used again afterwards (it reconnects)."""
