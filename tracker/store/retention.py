"""Retention: drop the whole months of events and rollups older than ``ODNOS_RETENTION_MONTHS``.

ClickHouse 18.16 has no TTL, and deleting rows there is a heavy mutation; the events table and
every rollup are partitioned by month (or by day), so a month past the retention goes with one
``DROP PARTITION`` per table, on chDB and on the server alike. Which partitions exist comes from
``system.parts``: a partition id of 6 digits is a month (``toYYYYMM``), of 8 a day; the contacts,
identities and other tables without a time partition (id ``all``) are never touched. On a
cluster each node drops its own local tables' partitions. The scheduler runs it daily
(``tracker.scheduler``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

from tracker.store.base import EventStore

log = logging.getLogger(__name__)

_PARTITIONS = """
SELECT DISTINCT table, partition_id FROM system.parts
WHERE database = currentDatabase() AND active
ORDER BY table, partition_id
"""
_TIME_PARTITION = re.compile(r"\d{6}(?:\d{2})?")
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Dropped:
    table: str
    partition_id: str


def first_kept_month(today: date, months: int) -> int:
    """``YYYYMM`` of the oldest month kept: this month and the ``months - 1`` before it."""
    index = today.year * 12 + today.month - 1 - (months - 1)
    return (index // 12) * 100 + index % 12 + 1


def drop_old_partitions(store: EventStore, months: int, today: date) -> list[Dropped]:
    """Drop every time partition wholly older than the last ``months`` months; 0 keeps everything."""
    if months <= 0:
        return []
    keep_from = first_kept_month(today, months)
    dropped = []
    for node in store.nodes():  # every node of a cluster holds its shard's partitions
        for table, partition_id in node.query(_PARTITIONS, name="retention partitions").rows:
            if not (_TIME_PARTITION.fullmatch(partition_id) and _TABLE.fullmatch(table)):
                continue
            if int(partition_id[:6]) >= keep_from:
                continue
            # Both come from system.parts and are checked above: an identifier and a run of digits.
            node.command(f"ALTER TABLE {table} DROP PARTITION ID '{partition_id}'")
            dropped.append(Dropped(table, partition_id))
    if dropped:
        log.info("retention: dropped %d partitions older than %d (%d months kept) from %s",
                 len(dropped), keep_from, months, ", ".join(sorted({d.table for d in dropped})))
    return dropped
