"""``event_row`` gives every value its column's type, and its idea of the columns is the real table's."""

from __future__ import annotations

import os
import uuid

import pytest

from tracker.events import EVENT_DEFAULTS, UINT_MAX, event_row, new_event_id, typed_row
from tracker.store.migrate import migrate

# What each ClickHouse type of the events table holds, written out from the type names.
TYPE_LIMITS = {"UInt8": 255, "UInt16": 65_535, "UInt32": 4_294_967_295, "DateTime('UTC')": 4_294_967_295}


def test_whole_number_floats_and_bools_become_ints() -> None:
    row = event_row("pageview", 1_700_000_000.25, scroll=50.0, engaged_ms=1000.0, is_bot=True)
    assert [(row[k], type(row[k])) for k in ("scroll", "engaged_ms", "is_bot", "ts", "ts_ms")] == [
        (50, int), (1000, int), (1, int), (1_700_000_000, int), (250, int)]


@pytest.mark.parametrize("fields", [
    {"scroll": 50.5}, {"scroll": 256}, {"scroll": -1}, {"engaged_ms": 2**32},
    {"is_machine": "1"}, {"received_at": 2**40}, {"engaged_ms": None},
    {"url": 5}, {"site_id": ["a"]}, {"visitor_id": {"a": "b"}}, {"browser": None},
    {"event_id": "not-a-uuid"}, {"event_id": 7},
    {"props.key": ["a"], "props.value": []}, {"props.key": [1], "props.value": ["x"]},
])
def test_values_a_column_cannot_hold_are_refused(fields: dict) -> None:
    with pytest.raises(ValueError, match="events"):
        event_row("pageview", **fields)


def test_times_and_names_outside_the_columns_are_refused() -> None:
    for ts in (-5.5, 2.0**32, 1e20):
        with pytest.raises(ValueError, match="events.ts"):
            event_row("pageview", ts)
    with pytest.raises(ValueError, match="events.name"):
        event_row(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="events.props.key"):
        event_row("pageview", props={1: "x"})  # type: ignore[dict-item]


def test_event_ids_are_given_in_the_canonical_form() -> None:
    given = uuid.uuid4()
    assert event_row("pageview", event_id=given.hex.upper())["event_id"] == str(given)
    assert uuid.UUID(event_row("pageview")["event_id"]).version == 4


def test_the_columns_are_the_tables(store) -> None:
    migrate(store)
    types = dict(store.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                             "AND table = 'events'").rows)
    assert types.keys() == EVENT_DEFAULTS.keys()
    assert {k: TYPE_LIMITS[t] for k, t in types.items() if t in TYPE_LIMITS} == UINT_MAX
    others = {k: t for k, t in types.items() if k not in UINT_MAX}
    assert set(others.values()) == {"String", "UUID", "Array(String)"}
    assert {k for k, t in others.items() if t == "Array(String)"} == {"props.key", "props.value"}


def test_the_largest_values_land_unchanged(store) -> None:
    """ClickHouse wraps a number too large for its column (300 in a UInt8 reads 44): the limits are exact."""
    migrate(store)
    row = event_row("pageview", 4_294_967_295.5, {"k": "v"}, site_id="edge", scroll=255,
                    engaged_ms=4_294_967_295, is_bot=255, is_machine=255, received_at=4_294_967_295,
                    url="https://x.example/é\u0000\"\\")
    store.insert("events", [row])
    [got] = store.query("SELECT toUnixTimestamp(ts), ts_ms, toUnixTimestamp(received_at), scroll, "
                        "engaged_ms, is_bot, is_machine, url, props.key, props.value FROM events "
                        "WHERE site_id = 'edge'").rows
    assert got == (4_294_967_295, 500, 4_294_967_295, 255, 4_294_967_295, 255, 255, row["url"], ["k"], ["v"])


def test_event_ids_are_random_version_4_uuids() -> None:
    ids = [new_event_id() for _ in range(5000)]  # more than one read of the pool
    assert len(set(ids)) == len(ids)
    assert all(str(uuid.UUID(i)) == i and uuid.UUID(i).version == 4 for i in ids)
    assert {i[19] for i in ids} == set("89ab")  # the RFC variant, its two free bits random


def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    new_event_id()  # the pool holds bytes now, which the child must not hand out again
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.write(write, ",".join(new_event_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    assert len(child) == 10
    assert not child & {new_event_id() for _ in range(10)}


def test_typed_row_is_event_row_without_the_checks() -> None:
    fields = {"site_id": "s", "url": "https://x.example/a", "scroll": 40, "is_bot": 1,
              "received_at": 1_700_000_001}
    event_id = new_event_id()
    typed = typed_row("pageview", 1_700_000_000.25, {"k": "v"}, event_id, fields)
    assert typed == event_row("pageview", 1_700_000_000.25, {"k": "v"}, event_id=event_id, **fields)
    assert list(typed) == list(EVENT_DEFAULTS)
