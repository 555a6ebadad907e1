"""Replicas: two shards of two replicas each, ZooKeeper, ``Replicated*MergeTree`` tables.

The product writes and reads through one node; a replica of the other shard is stopped, writes and
reads go on (ClickHouse sends them to the live replica), and the stopped one catches up once it is
back.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fixtures.cluster import ClickHouseCluster, ZooKeeper
from tests.fixtures.processes import wait_until
from tracker.events import event_row
from tracker.queries.period import Period
from tracker.queries.site.overview_kpis import overview_kpis
from tracker.settings import ClickHouseTarget
from tracker.store.clickhouse_store import ClickHouseStore
from tracker.store.migrate import migrate

pytestmark = pytest.mark.server
DAY = datetime(2026, 11, 2, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def replicated() -> Iterator[ClickHouseCluster]:
    root = Path(tempfile.mkdtemp(prefix="odnos-replicas-"))
    keeper = ZooKeeper(root / "zookeeper")
    cluster = ClickHouseCluster(root, shards=2, replicas=2, zookeeper=keeper)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        keeper.stop()
        shutil.rmtree(root, ignore_errors=True)


def _node_store(cluster: ClickHouseCluster, shard: int, replica: int, database: str) -> ClickHouseStore:
    server = cluster.grid[shard][replica]
    return ClickHouseStore(ClickHouseTarget(embedded=False, database=database, host="127.0.0.1",
                                            port=server.tcp_port, http_port=server.http_port))


def _pageviews(first: int, count: int) -> list[dict]:
    return [event_row("pageview", DAY.timestamp() + n, site_id="s", url="https://a.example/p",
                      hostname="a.example", pathname="/p", visitor_id=f"v{n}", session_id=f"s{n}")
            for n in range(first, first + count)]


def _local_events(store: ClickHouseStore) -> int:
    return store.query("SELECT count() FROM events_local").scalar()


def test_a_shard_keeps_working_with_one_replica_down_and_the_replica_catches_up(replicated) -> None:
    database = "rp_" + uuid.uuid4().hex[:10]
    cluster = replicated.store(database)  # through shard 1, replica 1
    migrate(cluster)
    engines = dict(cluster.query(f"SELECT name, engine FROM system.tables WHERE database = '{database}' "  # noqa: S608 - generated name
                                 "AND name LIKE '%%_local'").rows)
    assert engines["events_local"] == "ReplicatedMergeTree"
    assert engines["contacts_local"] == "ReplicatedReplacingMergeTree"
    assert engines["rollup_sessions_local"] == "ReplicatedAggregatingMergeTree"

    cluster.insert("events", _pageviews(0, 1000))
    replicas = [[_node_store(replicated, s, r, database) for r in range(2)] for s in range(2)]
    for first, second in replicas:  # both replicas of a shard hold the same rows
        assert wait_until(lambda a=first, b=second: _local_events(a) == _local_events(b) > 0)
    assert sum(_local_events(first) for first, _ in replicas) == 1000

    down = replicated.grid[1][0]  # shard 2's first replica
    down.stop()
    cluster.insert("events", _pageviews(1000, 500))
    assert cluster.query("SELECT count(), uniqExact(visitor_id) FROM events").first() == (1500, 1500)
    kpis = overview_kpis(cluster, "s", Period.days(DAY.date(), DAY.date()))
    assert kpis.current.visitors == 1500 and kpis.current.pageviews == 1500

    down.start()
    restarted, peer = replicas[1]
    restarted.close()  # its connection died with the server
    assert wait_until(lambda: _local_events(restarted) == _local_events(peer)), "the replica caught up"
    assert sum(_local_events(first) for first, _ in replicas) == 1500
    for pair in replicas:
        for store in pair:
            store.close()
    cluster.close()
