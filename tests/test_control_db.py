"""ControlPlane: URLs and their errors, SQLite settings, migrations (repeated, concurrent, reversible)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tracker.control import db
from tracker.control.db import ControlPlane, alembic_config, normalize_url
from tracker.control.models import Base, Role, User
from tracker.errors import ConfigError, StoreUnavailable

HEAD = "0007"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/odnos", "postgresql+psycopg://u:p@db:5432/odnos"),
        ("postgres://u:p@db/odnos", "postgresql+psycopg://u:p@db/odnos"),
        ("postgresql+psycopg://u@db/odnos", "postgresql+psycopg://u@db/odnos"),
        ("sqlite:///data/control.db", "sqlite:///data/control.db"),
    ],
)
def test_urls_are_normalised(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "",
        "mysql://u:s3cr3t-pw@db/odnos",
        "postgresql+psycopg2://u:s3cr3t-pw@db/odnos",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql://u:s3cr3t-pw@/odnos",
        "postgresql://u:s3cr3t-pw@db",
    ],
)
def test_bad_urls_raise_config_error_with_an_example(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ControlPlane(url)
    assert "sqlite:///" in caught.value.message or "postgresql://" in caught.value.message
    assert "s3cr3t-pw" not in caught.value.message


def test_postgresql_url_without_psycopg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = db.importlib.util.find_spec
    monkeypatch.setattr(
        db.importlib.util, "find_spec", lambda name: None if name == "psycopg" else real_find_spec(name)
    )
    with pytest.raises(ConfigError, match=r"pip install 'odnos\[postgres\]'"):
        ControlPlane("postgresql://u:p@db/odnos")


def test_unreachable_postgresql_raises_store_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    plane = ControlPlane(f"postgresql://odnos:s3cr3t-pw@127.0.0.1:{port}/odnos")
    with pytest.raises(StoreUnavailable) as caught:
        plane.migrate()
    assert f"127.0.0.1:{port}" in caught.value.message
    assert "s3cr3t-pw" not in caught.value.message
    assert caught.value.status == 503


def test_missing_sqlite_folder_is_created(tmp_path: Path) -> None:
    plane = ControlPlane(f"sqlite:///{tmp_path}/a/b/control.db")
    plane.migrate()
    plane.dispose()
    assert (tmp_path / "a" / "b" / "control.db").is_file()


def test_sqlite_folder_that_cannot_exist_raises_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreUnavailable, match="Cannot create the folder"):
        ControlPlane(f"sqlite:///{tmp_path}/file/control.db")


def test_unwritable_sqlite_folder_raises_store_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root may write anywhere, so the permission answer is simulated rather than chmod-ed.
    monkeypatch.setattr(db.os, "access", lambda path, mode: False)
    with pytest.raises(StoreUnavailable, match="not writable"):
        ControlPlane(f"sqlite:///{tmp_path}/control.db")


def test_sqlite_file_that_is_not_a_database_raises_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "control.db").write_bytes(b"this is not SQLite" * 100)
    plane = ControlPlane(f"sqlite:///{tmp_path}/control.db")
    with pytest.raises(StoreUnavailable, match="not a database"):
        plane.migrate()


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    plane = ControlPlane(f"sqlite:///{tmp_path}/control.db")
    with plane.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert (
            connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
            == 1000 * db.SQLITE_BUSY_TIMEOUT_SECONDS
        )
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    plane.dispose()


def test_migrate_creates_every_table_and_records_head(control_url: str) -> None:
    plane = ControlPlane(control_url)
    assert plane.current_revision() is None
    plane.migrate()
    assert plane.current_revision() == HEAD
    assert set(sa.inspect(plane.engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    plane.dispose()


def test_migrating_again_is_a_no_op_that_keeps_data(control: ControlPlane) -> None:
    with control.session() as session:
        session.add(User(email="ann@example.com", password_hash="x", role=Role.admin))
    control.migrate()
    assert control.current_revision() == HEAD
    with control.session() as session:
        assert session.scalars(sa.select(User.email)).all() == ["ann@example.com"]


def test_migrated_schema_matches_the_models(control: ControlPlane) -> None:
    """A model changed without a migration (or the reverse) fails here."""
    inspector = sa.inspect(control.engine)
    with control.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    for table in Base.metadata.sorted_tables:
        in_models = {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
        in_database = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert in_database == in_models, table.name


def test_downgrade_to_base_and_upgrade_again(control: ControlPlane) -> None:
    with control.engine.connect() as connection:
        command.downgrade(alembic_config(connection), "base")
        connection.commit()
    assert control.current_revision() is None
    assert sa.inspect(control.engine).get_table_names() == ["alembic_version"]
    control.migrate()
    assert control.current_revision() == HEAD


# Each process imports first, then waits for a common start time, so the migrations really overlap.
_MIGRATE_AT = """
import sys, time
from tracker.control.db import ControlPlane
plane = ControlPlane(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
plane.migrate()
print(plane.current_revision())
"""


def test_concurrent_migrations_from_several_processes_all_succeed(control_url: str) -> None:
    start_at = time.time() + 1.5
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_AT, control_url, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [process.communicate(timeout=60) for process in processes]
    for process, (out, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
        assert out.strip() == HEAD
    plane = ControlPlane(control_url)
    with plane.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [
            HEAD
        ]
    plane.dispose()
