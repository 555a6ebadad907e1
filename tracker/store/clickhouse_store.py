"""The server backend: a ClickHouse server, queried natively with clickhouse-driver.

Works with Debian's 18.16 server and with 24.8+ alike. Inserts go to the server's HTTP port as the
spool's JSONEachRow bytes, unchanged: the 18.16 native protocol does not take inline data, and
parsing every line in Python to build a native block cost the collector a third of its CPU. One
client and one HTTP connection per thread (neither is thread-safe); a reader store sets
``readonly=1``.
"""

from __future__ import annotations

import base64
import http.client
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors

from tracker.errors import QueryError, StoreUnavailable
from tracker.settings import ClickHouseTarget
from tracker.store.base import EventStore, Result
from tracker.store.sql import render

_NETWORK_ERRORS = (ch_errors.NetworkError, ch_errors.SocketTimeoutError, EOFError, OSError)


def _plain(value: Any) -> Any:
    """Give the same Python values chDB's reader gives: str UUIDs, naive UTC datetimes."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class ClickHouseStore(EventStore):
    kind = "server"

    def __init__(self, target: ClickHouseTarget, *, readonly: bool = False) -> None:
        self.database = target.database
        self.readonly = readonly
        self._target = target
        self._local = threading.local()
        credentials = base64.b64encode(f"{target.user}:{target.password}".encode()).decode()
        self._http_headers = {"Authorization": f"Basic {credentials}",
                              "Content-Type": "application/x-ndjson"}

    def _client(self, database: str | None = None) -> Client:
        client = getattr(self._local, "client", None)
        if client is None or database is not None:
            settings = {"readonly": 1} if self.readonly else {}
            client = Client(host=self._target.host, port=self._target.port, user=self._target.user,
                            password=self._target.password,
                            database=self.database if database is None else database,
                            connect_timeout=3, send_receive_timeout=60, settings=settings)
            if database is None:
                self._local.client = client
        return client

    def _where(self) -> str:
        return f"{self._target.host}:{self._target.port}"

    def _execute(self, sql: str, data: Any = None, *, name: str, client: Client | None = None) -> Any:
        client = client or self._client()
        try:
            if data is None:
                return client.execute(sql, with_column_types=True)
            return client.execute(sql, data)
        except _NETWORK_ERRORS as exc:
            client.disconnect()
            raise StoreUnavailable(f"ClickHouse at {self._where()} is unreachable ({exc}); check "
                                   "ODNOS_CLICKHOUSE_URL and that the server is running") from None
        except ch_errors.ServerException as exc:
            if exc.code == 81:  # UNKNOWN_DATABASE
                raise StoreUnavailable(f"ClickHouse at {self._where()} has no database "
                                       f"{self.database!r}; run `odnos migrate` to create it") from None
            if exc.code in (192, 193, 516):  # unknown user, wrong password, authentication failed
                raise StoreUnavailable(f"ClickHouse at {self._where()} refused the login: check the "
                                       "user and password in ODNOS_CLICKHOUSE_URL") from None
            raise QueryError(f"query {name or sql[:60]!r} failed: {exc.message}") from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None, *, name: str = "") -> Result:
        rows, columns = self._execute(render(sql, params), name=name)
        return Result(tuple(c[0] for c in columns), [tuple(_plain(v) for v in row) for row in rows])

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._execute(render(sql, params), name="command")

    def insert_json_lines(self, table: str, data: bytes, rows: int) -> None:
        if not rows:
            return
        query = quote(f"INSERT INTO {self.database}.{table} FORMAT JSONEachRow")
        conn = getattr(self._local, "http", None)
        if conn is None:
            conn = http.client.HTTPConnection(self._target.host, self._target.http_port, timeout=60)
            self._local.http = conn
        try:
            conn.request("POST", f"/?query={query}", body=data, headers=self._http_headers)
            response = conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            where = f"{self._target.host}:{self._target.http_port}"
            raise StoreUnavailable(f"ClickHouse at {where} (HTTP) is unreachable ({exc}); check "
                                   "ODNOS_CLICKHOUSE_URL and its http_port") from None
        if response.status != 200:
            message = answer.decode("utf-8", "replace").strip()[:500]
            if response.status in (401, 403) or "Code: 192" in message or "Code: 193" in message:
                raise StoreUnavailable(f"ClickHouse at {self._where()} refused the login: check the "
                                       "user and password in ODNOS_CLICKHOUSE_URL")
            raise QueryError(f"insert into {table} failed: {message}")

    def ping(self) -> None:
        self._execute("SELECT 1", name="ping")

    def ensure_database(self) -> None:
        client = self._client(database="default")
        try:
            self._execute(f"CREATE DATABASE IF NOT EXISTS {self.database}", name="create database",
                          client=client)
        finally:
            client.disconnect()

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.disconnect()
            self._local.client = None
        conn = getattr(self._local, "http", None)
        if conn is not None:
            conn.close()
            self._local.http = None
