"""The event store on both engines: parameters with hostile values, inserts, reads, errors."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.errors import QueryError, StoreUnavailable
from tracker.settings import ClickHouseTarget
from tracker.store.clickhouse_store import ClickHouseStore
from tracker.store.sql import render

HOSTILE = [
    "plain",
    "it's",
    "back\\slash",
    "trailing backslash\\",
    "\\'",
    "'); DROP TABLE victims; --",
    "'; DROP TABLE victims; SELECT '",
    "%(other)s",
    "%s %% %d",
    "line\nbreak\r\ttab",
    "nul\x00byte",
    "\x01\x02\x1f\x7f control",
    "unicode ☃ 𝄞 ünïcödé",
    "\"double\" `back` quotes",
    "?",
    "",
]


def test_render_refuses_types_it_cannot_quote() -> None:
    for bad in (b"bytes", {"a": 1}, object(), float("nan")):
        with pytest.raises((TypeError, ValueError)):
            render("SELECT %(v)s", {"v": bad})
    with pytest.raises(KeyError):
        render("SELECT %(missing)s", {"v": 1})


def test_render_quotes_every_kind_of_value() -> None:
    sql = render("SELECT %(s)s, %(n)s, %(b)s, %(d)s, %(t)s, %(l)s, %(none)s, 100%%",
                 {"s": "a'b", "n": 3, "b": True, "d": date(2026, 1, 2),
                  "t": datetime(2026, 1, 2, 3, 4, 5), "l": ["x", "y'"], "none": None})
    assert sql == ("SELECT 'a\\'b', 3, 1, '2026-01-02', '2026-01-02 03:04:05', ['x', 'y\\''], NULL, 100%")


def test_hostile_strings_round_trip_and_inject_nothing(store) -> None:
    store.command("CREATE TABLE victims (s String) ENGINE = MergeTree ORDER BY s")
    store.insert("victims", [{"s": value} for value in HOSTILE])
    for value in HOSTILE:
        assert store.query("SELECT %(v)s", {"v": value}).scalar() == value
        count = store.query("SELECT count() FROM victims WHERE s = %(v)s", {"v": value}).scalar()
        assert count == 1, value
    assert store.query("SELECT count() FROM victims").scalar() == len(HOSTILE)
    listed = store.query("SELECT count() FROM victims WHERE s IN %(v)s", {"v": tuple(HOSTILE[:5])})
    assert listed.scalar() == 5


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_text_round_trips(store, value: str) -> None:
    assert store.query("SELECT %(v)s AS v, length(%(v)s) > -1", {"v": value}).scalar() == value


def test_insert_and_read_types_agree_across_engines(store) -> None:
    store.command("CREATE TABLE t (id UUID, ts DateTime('UTC'), n UInt64, f Float64, "
                  "tags Array(String), p Nested(key String, value String)) ENGINE = MergeTree ORDER BY ts")
    store.insert("t", [{"id": "8c1f2b7e-1d2a-4f5e-9a1b-2c3d4e5f6a7b", "ts": 1_763_800_000, "n": 2**40,
                        "f": 0.5, "tags": ["a", "b"], "p.key": ["plan"], "p.value": ["pro"]}])
    result = store.query("SELECT id, ts, n, f, tags, p.value[indexOf(p.key, 'plan')] AS plan FROM t")
    assert result.columns == ("id", "ts", "n", "f", "tags", "plan")
    assert result.first() == ("8c1f2b7e-1d2a-4f5e-9a1b-2c3d4e5f6a7b", datetime(2025, 11, 22, 8, 26, 40),
                              2**40, 0.5, ["a", "b"], "pro")
    assert result.dicts()[0]["plan"] == "pro"


def test_insert_json_lines_lands_a_batch(store) -> None:
    store.command("CREATE TABLE t (k String, v UInt32) ENGINE = MergeTree ORDER BY k")
    data = b"".join(b'{"k":"key%d","v":%d}\n' % (i, i) for i in range(5000))
    store.insert_json_lines("t", data, 5000)
    assert store.query("SELECT count(), sum(v) FROM t").first() == (5000, sum(range(5000)))


def test_bad_sql_is_a_query_error(store) -> None:
    with pytest.raises(QueryError):
        store.query("SELECT nosuchcolumn FROM nosuchtable")


def test_readonly_store_refuses_writes(store_factory) -> None:
    writer = store_factory()
    writer.ensure_database()
    writer.command("CREATE TABLE t (k String) ENGINE = MergeTree ORDER BY k")
    reader = store_factory(readonly=True)
    assert reader.query("SELECT count() FROM t").scalar() == 0
    with pytest.raises(QueryError):
        reader.command("DROP TABLE t")
    with pytest.raises(QueryError):
        reader.command("INSERT INTO t VALUES ('x')")
    assert writer.query("EXISTS TABLE t").scalar() == 1
    # the dashboard's questions fill date ranges with numbers(): a reader must be able to run them
    assert reader.query("SELECT sum(number) FROM numbers(5)").scalar() == 10


def test_unreachable_server_is_store_unavailable() -> None:
    from tests.fixtures.clickhouse import free_port

    store = ClickHouseStore(ClickHouseTarget(embedded=False, database="odnos", host="127.0.0.1",
                                             port=free_port(), http_port=free_port()))
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.ping()
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.insert_json_lines("events", b'{"name":"x"}\n', 1)


def test_rejected_insert_is_a_query_error(store) -> None:
    store.command("CREATE TABLE t (k String, v UInt32) ENGINE = MergeTree ORDER BY k")
    with pytest.raises(QueryError):
        store.insert_json_lines("t", b'{"k":"a","v":"not a number"}\n', 1)
    assert store.query("SELECT count() FROM t").scalar() == 0


@pytest.mark.server
def test_an_insert_after_the_server_closed_the_idle_connection_lands(clickhouse_server) -> None:
    """ClickHouse closes an idle keep-alive connection after 3 s; the next insert must not fail on it."""
    import time as clock

    from tracker.settings import load_settings
    from tracker.store import open_store

    database = "idle_" + uuid.uuid4().hex[:8]
    settings = load_settings(environ={"ODNOS_CLICKHOUSE_URL": clickhouse_server.url_for(database)})
    store = open_store(settings)
    try:
        store.ensure_database()
        store.command("CREATE TABLE t (n UInt32) ENGINE = MergeTree ORDER BY n")
        store.insert_json_lines("t", b'{"n":1}\n', 1)
        clock.sleep(4)
        store.insert_json_lines("t", b'{"n":2}\n', 1)
        assert store.query("SELECT count() FROM t").scalar() == 2
    finally:
        store.command(f"DROP DATABASE IF EXISTS {database}")
        store.close()
