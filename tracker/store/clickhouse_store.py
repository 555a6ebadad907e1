"""The server backend: a ClickHouse server, queried natively with clickhouse-driver.

Works with Debian's 18.16 server and with 24.8+ alike. Inserts go to the server's HTTP port as the
spool's JSONEachRow bytes, unchanged: the 18.16 native protocol does not take inline data, and
parsing every line in Python to build a native block cost the collector a third of its CPU. One
client and one HTTP connection per thread (neither is thread-safe); a reader store sets
``readonly=2``: no writes and no DDL, but table functions such as ``numbers()`` (which ``readonly=1``
forbids on 18.16) and per-query settings stay allowed. A ``clickhouses://`` URL (or ``?secure=1``)
puts both on TLS, the secure native port and HTTPS, with one trust rule for the two: the URL's
``ca_certs`` file, else public CAs, and no check only with ``verify=0``.
"""

from __future__ import annotations

import base64
import http.client
import re
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors

from tracker.errors import ConfigError, QueryError, StoreUnavailable
from tracker.settings import ClickHouseTarget
from tracker.store import cluster
from tracker.store.base import EventStore, Result, rejection
from tracker.store.sql import render

_NETWORK_ERRORS = (ch_errors.NetworkError, ch_errors.SocketTimeoutError, EOFError, OSError)
_CLOSED_ON_US = ("reset by peer", "eof", "closed connection", "broken pipe")
CONNECT_TIMEOUT = 3  # seconds to connect, TLS handshake included (a plain port may never answer it)
INSERT_TIMEOUT = 60  # seconds for a query or an insert to answer
# ClickHouse closes an idle HTTP keep-alive connection after keep_alive_timeout (3 s by default);
# a connection idle longer than this is reopened rather than written to half-closed.
KEEP_ALIVE_IDLE = 2.0


def _tls_context(target: ClickHouseTarget) -> ssl.SSLContext:
    """TLS for the HTTPS port, checked as the native client checks: the URL's CA file or public CAs."""
    if not target.verify:  # only when the URL says verify=0
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=target.ca_certs or None)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"ODNOS_CLICKHOUSE_URL: ca_certs file {target.ca_certs} holds no usable PEM "
                          f"certificate ({exc}); give the CA that signed the server's certificate") from None


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
        self.cluster = target.cluster
        self._target = target
        self._local = threading.local()
        credentials = base64.b64encode(f"{target.user}:{target.password}".encode()).decode()
        self._http_headers = {"Authorization": f"Basic {credentials}",
                              "Content-Type": "application/x-ndjson"}
        self._tls = _tls_context(target) if target.secure else None
        self._settings: dict[str, Any] = {"readonly": 2} if readonly else {}
        self._insert_options = ""
        self._nodes: list[EventStore] | None = None
        if target.cluster:
            self._in_cluster()

    def _in_cluster(self) -> None:
        """Send the cluster's settings with every statement (see ``tracker.store.cluster``)."""
        self._settings.update(cluster.SETTINGS)
        self._insert_options = "".join(f"&{k}={v}" for k, v in cluster.SETTINGS.items())

    def _client(self, database: str | None = None) -> Client:
        client = getattr(self._local, "client", None)
        if client is None or database is not None:
            client = Client(host=self._target.host, port=self._target.port, user=self._target.user,
                            password=self._target.password,
                            database=self.database if database is None else database,
                            connect_timeout=CONNECT_TIMEOUT, send_receive_timeout=INSERT_TIMEOUT,
                            settings=self._settings,
                            secure=self._target.secure, verify=self._target.verify,
                            ca_certs=self._target.ca_certs or None)
            if database is None:
                self._local.client = client
        return client

    @property
    def label(self) -> str:
        return f"{self.database} on {self._where()}"

    def _where(self) -> str:
        return f"{self._target.host}:{self._target.port}"

    def _unreachable(self, exc: BaseException, *, over_http: bool) -> StoreUnavailable:
        """The error for a failed connection, saying what to change in ODNOS_CLICKHOUSE_URL."""
        target = self._target
        port = target.http_port if over_http else target.port
        kind = ("HTTP" if over_http else "native") + (" over TLS" if target.secure else "")
        where = f"ClickHouse at {target.host}:{port} ({kind})"
        timed_out = isinstance(exc, ch_errors.SocketTimeoutError | TimeoutError)
        text = str(exc) if not timed_out or "timed out" in str(exc) else f"timed out: {exc}"
        failed = re.search(r"certificate verify failed: ([^(]*)", text)
        if failed:
            trust = f"the CA file {target.ca_certs}" if target.ca_certs else "the public CAs"
            return StoreUnavailable(f"{where}: its TLS certificate does not verify against {trust} "
                                    f"({failed.group(1).strip()}); set ca_certs=/path/ca.pem in "
                                    "ODNOS_CLICKHOUSE_URL to the CA that signed the server's certificate, "
                                    "or verify=0 to skip verification")
        tls_port = (f"is port {port} the server's TLS port (tcp_port_secure, 9440, in the URL; "
                    "https_port, 8443, as ?http_port=)?")
        if target.secure and ("[SSL" in text or "handshake" in text.lower()):
            return StoreUnavailable(f"{where}: the TLS handshake failed ({text}); {tls_port} For plain "
                                    "ports use clickhouse://")
        advice = "its http_port" if over_http else "that the server is running"
        if not target.secure and any(marker in text.lower() for marker in _CLOSED_ON_US):
            advice += f"; if port {port} is a TLS port, use clickhouses://"
        if target.secure and timed_out:
            advice += f"; a plain port leaves the TLS handshake unanswered: {tls_port}"
        return StoreUnavailable(f"{where} is unreachable ({text}); check ODNOS_CLICKHOUSE_URL and {advice}")

    def _execute(self, sql: str, data: Any = None, *, name: str, client: Client | None = None) -> Any:
        client = client or self._client()
        try:
            if data is None:
                return client.execute(sql, with_column_types=True)
            return client.execute(sql, data)
        except _NETWORK_ERRORS as exc:
            client.disconnect()
            raise self._unreachable(exc, over_http=False) from None
        except ch_errors.ServerException as exc:
            if exc.code == 81:  # UNKNOWN_DATABASE
                raise StoreUnavailable(f"ClickHouse at {self._where()} has no database "
                                       f"{self.database!r}; run `odnos migrate` to create it") from None
            if exc.code in (192, 193, 516):  # unknown user, wrong password, authentication failed
                raise StoreUnavailable(f"ClickHouse at {self._where()} refused the login: check the "
                                       "user and password in ODNOS_CLICKHOUSE_URL") from None
            reason = exc.message.split("Stack trace:", 1)[0].strip()  # older servers append theirs
            raise QueryError(f"query {name or sql[:60]!r} failed: {reason}") from exc

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
            conn = (http.client.HTTPSConnection(self._target.host, self._target.http_port,
                                                timeout=CONNECT_TIMEOUT, context=self._tls)
                    if self._tls is not None else
                    http.client.HTTPConnection(self._target.host, self._target.http_port,
                                               timeout=CONNECT_TIMEOUT))
            self._local.http = conn
        idle = time.monotonic() - getattr(self._local, "http_used", 0.0)
        if conn.sock is not None and idle > KEEP_ALIVE_IDLE:
            conn.close()  # the server may have closed it: a request on it would fail half-sent
        try:
            if conn.sock is None:  # connect (and the TLS handshake) within the native client's timeout
                conn.connect()
                conn.sock.settimeout(INSERT_TIMEOUT)
            conn.request("POST", f"/?query={query}{self._insert_options}", body=data,
                         headers=self._http_headers)
            response = conn.getresponse()
            answer = response.read()
            self._local.http_used = time.monotonic()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self._unreachable(exc, over_http=True) from None
        if response.status != 200:
            message = answer.decode("utf-8", "replace").strip()[:500]
            if response.status in (401, 403) or "Code: 192" in message or "Code: 193" in message:
                raise StoreUnavailable(f"ClickHouse at {self._where()} refused the login: check the "
                                       "user and password in ODNOS_CLICKHOUSE_URL")
            raise rejection(table, answer.decode("utf-8", "replace")) or QueryError(
                f"insert into {table} failed: {message}")

    def ping(self) -> None:
        self._execute("SELECT 1", name="ping")

    def nodes(self) -> list[EventStore]:
        """Every node of ``ODNOS_CLICKHOUSE_CLUSTER`` as this server's ``system.clusters`` lists it."""
        if not self._target.cluster:
            return [self]
        if self._nodes is None:
            client = self._client(database="default")  # the database may not exist yet
            try:
                rows, _ = self._execute(render(cluster.NODES_SQL, {"cluster": self.cluster}),
                                        name="cluster nodes", client=client)
            finally:
                client.disconnect()
            self._nodes = []
            for node in cluster.nodes(self.cluster, rows):
                store = ClickHouseStore(replace(self._target, host=node.host, port=node.port, cluster=""),
                                        readonly=self.readonly)
                store._in_cluster()  # a statement there may still reach the Distributed tables
                self._nodes.append(store)
        return self._nodes

    def local(self, table: str) -> str:
        return table + cluster.LOCAL_SUFFIX if self._target.cluster else table

    def ensure_database(self) -> None:
        client = self._client(database="default")
        try:
            self._execute(f"CREATE DATABASE IF NOT EXISTS {self.database}", name="create database",
                          client=client)
        finally:
            client.disconnect()

    def close(self) -> None:
        for node in self._nodes or ():
            node.close()
        client = getattr(self._local, "client", None)
        if client is not None:
            client.disconnect()
            self._local.client = None
        conn = getattr(self._local, "http", None)
        if conn is not None:
            conn.close()
            self._local.http = None
