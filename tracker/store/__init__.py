"""Event store: one small interface over ClickHouse, embedded (chDB) or a server.

Nothing above this package knows which engine it talks to. ``open_store(settings)`` picks the
backend from ``ODNOS_CLICKHOUSE_URL``; ``sql.render`` is the only place values enter SQL text.
"""

from __future__ import annotations

import os

# clickhouse-driver builds a 23 MB date table in every process at import unless told to build it
# lazily (the variable's spelling is the library's).
os.environ.setdefault("CLICKHOUSE_DRIVER_LASY_DATE_LUT", "1")

from tracker.settings import Settings  # noqa: E402
from tracker.store.base import EventStore, Result  # noqa: E402


def open_store(settings: Settings, *, readonly: bool = False) -> EventStore:
    """Open the event store the settings name (chDB under the data folder, or a server)."""
    target = settings.clickhouse
    if target.embedded:
        from tracker.store.chdb_store import ChdbStore

        return ChdbStore(target, memory_limit=settings.chdb_max_memory, readonly=readonly)
    from tracker.store.clickhouse_store import ClickHouseStore

    return ClickHouseStore(target, readonly=readonly)


__all__ = ["EventStore", "Result", "open_store"]
