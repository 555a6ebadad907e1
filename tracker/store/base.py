"""The event store interface both backends implement, and the result they return."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson


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

    @abc.abstractmethod
    def query(self, sql: str, params: Mapping[str, Any] | None = None, *, name: str = "") -> Result:
        """Run one SELECT and return its rows. ``name`` labels the query in logs and errors."""

    @abc.abstractmethod
    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one statement that returns nothing (DDL, ALTER)."""

    @abc.abstractmethod
    def insert_json_lines(self, table: str, data: bytes, rows: int) -> None:
        """Insert ``rows`` JSONEachRow lines (each ending in a newline) into ``table`` at once."""

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

    def announce_holder(self, holder: str) -> None:  # noqa: B027 - optional hook, a no-op for servers
        """Say which process holds the store, for the message another process gets (embedded only)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store may be used again afterwards (it reconnects)."""
