"""`odnos migrate`: create or upgrade the event store and the control database."""

from __future__ import annotations

import argparse

from tracker.control.db import ControlPlane
from tracker.settings import ensure_data_dir, load_settings
from tracker.store import open_store
from tracker.store.migrate import migrate


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("migrate", help="create or upgrade the databases (safe to run twice)",
                            description="Apply pending ClickHouse migrations (schemas/clickhouse) and "
                                        "control-database migrations. Running it twice is a no-op.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    ensure_data_dir(settings)
    store = open_store(settings)
    try:
        ran = migrate(store)
    finally:
        store.close()
    control = ControlPlane(settings.sqlalchemy_url)
    try:
        control.migrate()
        revision = control.current_revision()
    finally:
        control.dispose()
    for name in ran:
        print(f"applied {name}")
    print(f"event store {store.database} ({store.kind}) is current; control database at revision {revision}")
    return 0
