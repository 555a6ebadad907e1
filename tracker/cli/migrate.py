"""`odnos migrate`: create or upgrade the event store and the control database."""

from __future__ import annotations

import argparse

from tracker.cli.common import open_runtime
from tracker.store.migrate import migrate


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("migrate", help="create or upgrade the databases (safe to run twice)",
                            description="Apply pending ClickHouse migrations (schemas/clickhouse) and "
                                        "control-database migrations. Running it twice is a no-op.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with open_runtime(migrate_schema=False) as runtime:  # migrated here, to say what it applied
        store = runtime.store
        ran = migrate(store)
        runtime.control.migrate()
        revision = runtime.control.current_revision()
    for name in ran:
        print(f"applied {name}")
    print(f"event store {store.database} ({store.kind}) is current; control database at revision {revision}")
    return 0
