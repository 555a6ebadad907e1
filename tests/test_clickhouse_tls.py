"""TLS to a ClickHouse server: ``clickhouses://`` URLs, the CA file, and the errors a wrong setup gets.

Against Debian's 18.16 server listening on HTTPS and the secure native port with a self-signed
certificate made by the fixture (tests/fixtures/clickhouse.py ``clickhouse_tls_server``): odnos
migrates, inserts over HTTPS and queries over the secure native port; a certificate the CA file
does not vouch for is refused with one line saying what to set, through the store and through
``odnos migrate``; plain clients on the TLS ports and TLS clients on the plain ports fail clearly.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.fixtures.clickhouse import ClickHouseTLSServer
from tests.fixtures.processes import odnos_env, run_odnos
from tracker.errors import ConfigError, StoreUnavailable
from tracker.events import event_row
from tracker.settings import ClickHouseTarget, load_settings
from tracker.store import open_store
from tracker.store.clickhouse_store import CONNECT_TIMEOUT, ClickHouseStore
from tracker.store.migrate import migrate


def target(url: str) -> ClickHouseTarget:
    return load_settings(environ={"ODNOS_CLICKHOUSE_URL": url}).clickhouse


# -- the URL ----------------------------------------------------------------------------------------

def test_clickhouses_url_means_tls_on_both_ports_with_their_defaults() -> None:
    secure = target("clickhouses://bob:pw@ch.example/stats")
    assert (secure.secure, secure.verify, secure.ca_certs, secure.port, secure.http_port) == (
        True, True, "", 9440, 8443)
    by_option = target("clickhouse://ch.example/stats?secure=1&http_port=9443")
    assert (by_option.secure, by_option.port, by_option.http_port) == (True, 9440, 9443)
    plain = target("clickhouse://ch.example/stats")
    assert (plain.secure, plain.port, plain.http_port) == (False, 9000, 8123)


def test_ca_file_and_verify_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ca.pem").write_text("x")
    monkeypatch.chdir(tmp_path)
    relative = target("clickhouses://ch.example:9441/db?ca_certs=ca.pem")
    assert (relative.ca_certs, relative.port, relative.verify) == (str(tmp_path / "ca.pem"), 9441, True)
    unverified = target("clickhouses://ch.example/db?verify=0")
    assert (unverified.secure, unverified.verify) == (True, False)


@pytest.mark.parametrize(("url", "fragment"), [
    ("clickhouse://h/db?ca_certs=/etc/hosts", "apply to TLS only; use clickhouses://"),
    ("clickhouse://h/db?verify=0", "apply to TLS only"),
    ("clickhouses://h/db?ca_certs=/etc/hosts&verify=0", "not both"),
    ("clickhouses://h/db?ca_certs=/no/such/ca.pem", "ca_certs file /no/such/ca.pem does not exist"),
    ("clickhouse://h/db?secure=maybe", "secure='maybe' must be 1 or 0"),
    ("clickhouses://h/db?tls=1", "the options are http_port"),
])
def test_bad_tls_options_say_what_to_write(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match="ODNOS_CLICKHOUSE_URL") as error:
        target(url)
    assert fragment in error.value.message


def test_a_ca_file_that_is_not_a_certificate_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="holds no usable PEM certificate"):
        ClickHouseStore(target(f"clickhouses://127.0.0.1/db?ca_certs={tmp_path / 'ca.pem'}"))


# -- the real server ---------------------------------------------------------------------------------

@pytest.fixture
def database(clickhouse_tls_server: ClickHouseTLSServer) -> Iterator[str]:
    name = "tls_" + uuid.uuid4().hex[:12]
    yield name
    store = ClickHouseStore(target(clickhouse_tls_server.secure_url_for(
        name, f"&ca_certs={clickhouse_tls_server.ca_file}")))
    with contextlib.suppress(Exception):
        store.command(f"DROP DATABASE IF EXISTS {name}")
    store.close()


def test_migrate_insert_and_query_over_tls_with_the_ca_file(clickhouse_tls_server: ClickHouseTLSServer,
                                                           database: str) -> None:
    server = clickhouse_tls_server
    settings = load_settings(environ={
        "ODNOS_CLICKHOUSE_URL": server.secure_url_for(database, f"&ca_certs={server.ca_file}")})
    store = open_store(settings)
    assert "0001_events" in migrate(store)  # DDL over the secure native port
    rows = [event_row("pageview", ts=1_767_000_000 + i, site_id="s1", visitor_id=f"v{i % 7}")
            for i in range(500)]
    store.insert("events", rows)  # JSON lines to the HTTPS port, the only HTTP port the URL names
    result = store.query("SELECT count(), uniqExact(visitor_id), min(ts) FROM events WHERE site_id = %(s)s",
                         {"s": "s1"})
    assert result.first()[:2] == (500, 7)
    assert result.first()[2] == datetime(2025, 12, 29, 9, 20)  # 1,767,000,000 s, naive UTC as chDB gives
    store.close()

    reader = open_store(settings, readonly=True)  # a dashboard reader over TLS too
    assert reader.query("SELECT count() FROM events").scalar() == 500
    reader.close()


def test_verify_0_skips_the_check_only_when_asked(clickhouse_tls_server: ClickHouseTLSServer,
                                                  database: str) -> None:
    server = clickhouse_tls_server
    public_cas = ClickHouseStore(target(server.secure_url_for(database)))
    with pytest.raises(StoreUnavailable, match="does not verify against the public CAs"):
        public_cas.ping()
    unverified = ClickHouseStore(target(server.secure_url_for(database, "&verify=0")))
    unverified.ensure_database()
    unverified.command("CREATE TABLE t (k String) ENGINE = MergeTree ORDER BY k")
    unverified.insert("t", [{"k": "a"}, {"k": "b"}])
    assert unverified.query("SELECT count() FROM t").scalar() == 2
    unverified.close()


def test_a_wrong_ca_is_refused_with_what_to_fix(clickhouse_tls_server: ClickHouseTLSServer,
                                                database: str) -> None:
    server = clickhouse_tls_server
    store = ClickHouseStore(target(server.secure_url_for(database, f"&ca_certs={server.other_ca_file}")))
    expected = (f"does not verify against the CA file {server.other_ca_file} (self-signed certificate); "
                "set ca_certs=/path/ca.pem in ODNOS_CLICKHOUSE_URL")
    with pytest.raises(StoreUnavailable) as native:
        store.ping()
    assert f"127.0.0.1:{server.tcp_port_secure} (native over TLS)" in native.value.message
    assert expected in native.value.message
    with pytest.raises(StoreUnavailable) as https:
        store.insert_json_lines("events", b'{"site_id":"s1"}\n', 1)
    assert f"127.0.0.1:{server.https_port} (HTTP over TLS)" in https.value.message
    assert expected in https.value.message


def test_odnos_migrate_with_a_wrong_ca_is_one_line(clickhouse_tls_server: ClickHouseTLSServer,
                                                   database: str, tmp_path: Path) -> None:
    server = clickhouse_tls_server
    wrong = odnos_env(tmp_path, ODNOS_CLICKHOUSE_URL=server.secure_url_for(
        database, f"&ca_certs={server.other_ca_file}"))
    result = run_odnos("migrate", env=wrong)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("odnos: error: "), result.stderr
    assert "does not verify against the CA file" in lines[0] and "ca_certs=" in lines[0]

    right = odnos_env(tmp_path, ODNOS_CLICKHOUSE_URL=server.secure_url_for(
        database, f"&ca_certs={server.ca_file}"))
    result = run_odnos("migrate", env=right)
    assert result.returncode == 0, result.stderr
    assert "applied 0001_events" in result.stdout


def test_plain_clients_on_the_tls_ports_are_told_to_use_clickhouses(
        clickhouse_tls_server: ClickHouseTLSServer, database: str) -> None:
    server = clickhouse_tls_server
    plain = ClickHouseStore(target(
        f"clickhouse://default@127.0.0.1:{server.tcp_port_secure}/{database}?http_port={server.https_port}"))
    with pytest.raises(StoreUnavailable) as native:
        plain.ping()
    assert f"if port {server.tcp_port_secure} is a TLS port, use clickhouses://" in native.value.message
    with pytest.raises(StoreUnavailable) as http:
        plain.insert_json_lines("events", b'{"site_id":"s1"}\n', 1)
    assert f"if port {server.https_port} is a TLS port, use clickhouses://" in http.value.message


def test_tls_clients_on_the_plain_ports_are_told_which_ports_speak_tls(
        clickhouse_tls_server: ClickHouseTLSServer, database: str) -> None:
    server = clickhouse_tls_server
    secure = ClickHouseStore(target(f"clickhouses://default@127.0.0.1:{server.tcp_port}/{database}"
                                    f"?http_port={server.http_port}&ca_certs={server.ca_file}"))
    with pytest.raises(StoreUnavailable) as native:
        secure.ping()
    assert "the TLS handshake failed" in native.value.message
    assert f"is port {server.tcp_port} the server's TLS port" in native.value.message
    with pytest.raises(StoreUnavailable) as http:
        secure.insert_json_lines("events", b'{"site_id":"s1"}\n', 1)
    assert f"is port {server.http_port} the server's TLS port" in http.value.message


def test_a_port_that_never_answers_the_tls_hello_fails_within_seconds() -> None:
    # What a TLS client meets on some plain ports: the connection opens, the handshake gets no answer.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        store = ClickHouseStore(target(f"clickhouses://127.0.0.1:{port}/db?http_port={port}&verify=0"))
        for attempt in (store.ping, lambda: store.insert_json_lines("events", b'{"site_id":"s1"}\n', 1)):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as error:
                attempt()
            assert f"is port {port} the server's TLS port" in error.value.message
            assert time.monotonic() - started < CONNECT_TIMEOUT + 2
