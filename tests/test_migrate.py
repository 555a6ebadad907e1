"""ClickHouse migrations on chDB and the 18.16 server: order, idempotence, edits refused."""

from __future__ import annotations

import threading

import pytest

from tracker.errors import OdnosError
from tracker.store import migrate as migrations


def test_migrate_creates_database_and_tables_then_is_a_no_op(store_factory) -> None:
    store = store_factory()  # the database does not exist yet: the runner creates it
    ran = migrations.migrate(store)
    assert ran == [f"{m.version}_{m.name}" for m in migrations.available()]
    assert ran[:3] == ["0001_events", "0002_contacts", "0003_identities"]
    tables = {row[0] for row in store.query("SHOW TABLES").rows}
    assert {"events", "contacts", "identities", "schema_migrations"} <= tables
    assert migrations.migrate(store) == []
    assert store.query("SELECT count() FROM schema_migrations").scalar() == len(ran)


def test_events_table_takes_a_full_row(store_factory) -> None:
    store = store_factory()
    migrations.migrate(store)
    store.insert("events", [{"event_id": "8c1f2b7e-1d2a-4f5e-9a1b-2c3d4e5f6a7b", "site_id": "s1",
                             "name": "pageview", "ts": 1_763_800_000, "url": "https://a.example/x",
                             "props.key": ["plan"], "props.value": ["pro"]}])
    row = store.query("SELECT name, toString(toDate(ts)), props.value[indexOf(props.key, 'plan')] "
                      "FROM events WHERE site_id = %(s)s", {"s": "s1"}).first()
    assert row == ("pageview", "2025-11-22", "pro")


def test_contacts_latest_version_wins(store_factory) -> None:
    store = store_factory()
    migrations.migrate(store)
    base = {"contact_id": "c1", "email": "a@example.com", "created_at": 1, "updated_at": 1}
    store.insert("contacts", [{**base, "status": "subscribed", "version": 1}])
    store.insert("contacts", [{**base, "status": "unsubscribed", "version": 2}])
    assert store.query("SELECT status FROM contacts FINAL WHERE contact_id = 'c1'").rows == [
        ("unsubscribed",)]


def test_edited_applied_migration_is_refused(store_factory, monkeypatch) -> None:
    store = store_factory()
    migrations.migrate(store)
    original = migrations.available()
    edited = [migrations.Migration(m.version, m.name, m.sql + "\n-- edited") if m.version == "0001" else m
              for m in original]
    monkeypatch.setattr(migrations, "available", lambda: edited)
    with pytest.raises(OdnosError, match="changed after it was applied"):
        migrations.migrate(store)


def test_two_runners_at_once_both_succeed(store_factory) -> None:
    stores = [store_factory(), store_factory()]
    errors = []

    def run(store) -> None:
        try:
            migrations.migrate(store)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert migrations.migrate(stores[0]) == []


def test_statements_split_and_comments_dropped() -> None:
    m = migrations.Migration("9999", "x", "-- header; with a semicolon\nCREATE TABLE a (x UInt8) "
                             "ENGINE = Memory;\n\nCREATE TABLE b (y UInt8) ENGINE = Memory\n")
    assert m.statements() == ["CREATE TABLE a (x UInt8) ENGINE = Memory",
                              "CREATE TABLE b (y UInt8) ENGINE = Memory"]


def test_identities_follow_events_with_both_ids(store_factory) -> None:
    from tracker.events import event_row

    store = store_factory()
    migrations.migrate(store)
    store.insert("events", [event_row("pageview", site_id="s", visitor_id="v1", contact_id="c1"),
                            event_row("pageview", site_id="s", visitor_id="v2"),
                            event_row("email_open", site_id="s", contact_id="c9"),
                            event_row("identify", site_id="s", visitor_id="v3", contact_id="c3")])
    rows = store.query("SELECT visitor_id, contact_id, method FROM identities FINAL ORDER BY visitor_id").rows
    assert rows == [("v1", "c1", "email_link"), ("v3", "c3", "identify")]
