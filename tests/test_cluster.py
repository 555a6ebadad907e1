"""The product on a sharded ClickHouse cluster: two 18.16 servers, ``Distributed`` tables over local ones.

The twin test loads the demo (through ``odnos demo``) into one server, copies the rows it wrote to
the cluster, and asks every question of ``tracker.queries`` of both: the answers must be the same.
The questions are enumerated from the package (every public function that takes the store first),
so a new one cannot be left out of the comparison.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pkgutil
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import tracker.queries
from tests.fixtures.clickhouse import ClickHouseServer
from tests.fixtures.cluster import CLUSTER, ClickHouseCluster
from tests.fixtures.processes import odnos_env, run_odnos
from tracker.crm.segments.compile import compile_definition
from tracker.errors import ConfigError, OdnosError
from tracker.events import event_row
from tracker.queries.campaigns.campaign_followups import campaign_followups
from tracker.queries.campaigns.campaign_list import campaign_list, survey_answers
from tracker.queries.campaigns.campaign_report import campaign_report
from tracker.queries.campaigns.click_map import click_map
from tracker.queries.contacts.changed_contacts import changed_contacts
from tracker.queries.contacts.contact_profile import contact_profile, linked_visitors
from tracker.queries.contacts.contact_timeline import contact_timeline
from tracker.queries.contacts.contact_vocabulary import contact_vocabulary
from tracker.queries.contacts.current_contacts import current_contacts
from tracker.queries.contacts.erase_contact import count_tied, delete_tied, tied_rows
from tracker.queries.contacts.person_events import contact_events, visitor_events, visitor_links
from tracker.queries.contacts.search_contacts import search_contacts
from tracker.queries.crm.recommended import recommended
from tracker.queries.filters import Filters
from tracker.queries.finish_sessions import finish_sessions
from tracker.queries.period import Period
from tracker.queries.rules.rule_events import rule_events
from tracker.queries.segments.segment_members import last_campaign, members, size
from tracker.queries.site.bots_excluded import bots_excluded
from tracker.queries.site.breakdowns import pageview_breakdown, visit_breakdown
from tracker.queries.site.countries import countries
from tracker.queries.site.custom_events import custom_events
from tracker.queries.site.devices import devices
from tracker.queries.site.entry_pages import entry_pages
from tracker.queries.site.event_properties import event_properties
from tracker.queries.site.exit_pages import exit_pages
from tracker.queries.site.funnel import funnel
from tracker.queries.site.goals import Goal, goals
from tracker.queries.site.overview_kpis import overview_kpis, period_metrics
from tracker.queries.site.realtime import realtime_visitors
from tracker.queries.site.retention import retention
from tracker.queries.site.sources import sources
from tracker.queries.site.timeseries import timeseries
from tracker.queries.site.top_pages import top_pages
from tracker.queries.site.utm import utm
from tracker.settings import ClickHouseTarget
from tracker.store.base import EventStore
from tracker.store.clickhouse_store import ClickHouseStore
from tracker.store.migrate import available, migrate
from tracker.store.retention import drop_old_partitions

pytestmark = pytest.mark.server

# Store-first functions that write (tested below on the cluster) or that only serve the questions
# above them with SQL pieces of their callers (reached through campaign_list and campaign_report).
NOT_QUESTIONS = {"finish_sessions.finish_sessions", "finish_sessions.finish_day",
                 "contacts.erase_contact.delete_tied", "machines.revised_events",
                 "machines.rollup_correction", "campaigns.campaign_list.revised_rows"}


def _database() -> str:
    return "cl_" + uuid.uuid4().hex[:10]


def _server_store(server: ClickHouseServer, database: str) -> ClickHouseStore:
    return ClickHouseStore(ClickHouseTarget(embedded=False, database=database, host="127.0.0.1",
                                            port=server.tcp_port, http_port=server.http_port))


def _local_count(cluster: ClickHouseCluster, database: str, sql: str) -> list[Any]:
    """``sql`` on each node by itself (its local tables), one answer per node."""
    answers = []
    for node in cluster.nodes:
        store = _server_store(node, database)
        answers.append(store.query(sql).rows)
        store.close()
    return answers


def _export(server: ClickHouseServer, database: str, sql: str) -> bytes:
    query = urllib.parse.quote(f"{sql} FORMAT JSONEachRow")
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/?database={database}&query={query}",
                                timeout=60) as answer:
        return answer.read()


@dataclasses.dataclass
class Twins:
    single: ClickHouseStore
    cluster: ClickHouseStore
    database: str
    site_id: str
    period: Period
    now: datetime


@pytest.fixture(scope="module")
def twins(tmp_path_factory, clickhouse_server: ClickHouseServer,
          clickhouse_cluster: ClickHouseCluster) -> Iterator[Twins]:
    database = _database()
    env = odnos_env(tmp_path_factory.mktemp("twin") / "data", ODNOS_LOG_LEVEL="WARNING",
                    ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for(database))
    loaded = run_odnos("demo", env=env)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    site_id = loaded.stdout.strip().splitlines()[-1].split()[-1]
    single = _server_store(clickhouse_server, database)
    cluster = clickhouse_cluster.store(database)
    migrate(cluster)
    # What odnos wrote itself; the views make the rest (identities, the contacts identify makes,
    # every rollup) on the cluster as they did on the server.
    for table, where in (("contacts", "source NOT IN ('identify', 'email_link')"), ("events", "1")):
        rows = _export(clickhouse_server, database, f"SELECT * FROM {table} WHERE {where}")  # noqa: S608 - constants
        cluster.insert_json_lines(table, rows, rows.count(b"\n"))
    now = datetime.now(UTC).replace(tzinfo=None)
    finish_sessions(single, now)
    finish_sessions(cluster, now)
    today = now.date()
    yield Twins(single, cluster, database, site_id, Period.days(today - timedelta(days=31), today), now)
    single.close()
    cluster.close()


def _plain(value: Any) -> Any:
    """A result as plain data; floats to 9 significant digits (shards add in another order)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.9g}")
    return value


def _questions() -> set[str]:
    """Every public function of tracker.queries whose first parameter is the store."""
    found = set()
    for module in pkgutil.walk_packages(tracker.queries.__path__, "tracker.queries."):
        loaded = importlib.import_module(module.name)
        for name, item in vars(loaded).items():
            if (inspect.isfunction(item) and item.__module__ == module.name and not name.startswith("_")
                    and next(iter(inspect.signature(item).parameters), "") == "store"):
                found.add(f"{module.name.removeprefix('tracker.queries.')}.{name}")
    return found - NOT_QUESTIONS


def _calls(store: EventStore, twins: Twins, facts: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """Each question, asked with what the demo data holds; the same calls for both stores."""
    site, period, now = twins.site_id, twins.period, twins.now
    week = Period(period.end - timedelta(days=7), period.end)
    country = Filters(country=facts["country"])
    steps = [Goal("page", "/"), Goal("page", "/products*"), Goal("event", facts["event"])]
    segment = compile_definition(facts["segment"], now=now, last_campaign=facts["campaign"])
    calls: dict[str, Callable[[], Any]] = {
        "campaigns.campaign_followups.campaign_followups":
            lambda: campaign_followups(store, site, facts["campaign"], steps),
        "campaigns.campaign_list.campaign_list":
            lambda: (campaign_list(store), campaign_list(store, raw=True)),
        "campaigns.campaign_list.survey_answers": lambda: survey_answers(store, None),
        "campaigns.campaign_report.campaign_report":
            lambda: (campaign_report(store, facts["campaign"]),
                     campaign_report(store, facts["campaign"], raw=True)),
        "campaigns.click_map.click_map": lambda: (click_map(store, facts["campaign"]),
                                                  click_map(store, facts["campaign"], raw=True)),
        "contacts.changed_contacts.changed_contacts":
            lambda: changed_contacts(store, segment.sql, segment.params, limit=1000),
        "contacts.contact_profile.contact_profile": lambda: contact_profile(store, facts["contact"]),
        "contacts.contact_profile.linked_visitors": lambda: linked_visitors(store, facts["contact"]),
        "contacts.contact_timeline.contact_timeline": lambda: contact_timeline(store, facts["contact"]),
        "contacts.contact_vocabulary.contact_vocabulary": lambda: contact_vocabulary(store),
        "contacts.current_contacts.current_contacts": lambda: current_contacts(store, facts["contacts"]),
        "contacts.erase_contact.tied_rows": lambda: tied_rows(store, facts["contact"]).params,
        "contacts.erase_contact.count_tied": lambda: count_tied(store, tied_rows(store, facts["contact"])),
        "contacts.person_events.contact_events": lambda: contact_events(store, facts["contact"]),
        "contacts.person_events.visitor_events": lambda: visitor_events(store, facts["visitor"], site),
        "contacts.person_events.visitor_links": lambda: visitor_links(store, facts["visitor"], site),
        "contacts.search_contacts.search_contacts":
            lambda: (search_contacts(store, limit=500), search_contacts(store, "a", limit=500)),
        "crm.recommended.recommended": lambda: recommended(store, facts["contacts"], 3, now=now),
        "rules.rule_events.rule_events":
            lambda: rule_events(store, "pageview", now - timedelta(days=31), now, limit=500),
        "segments.segment_members.last_campaign": lambda: last_campaign(store),
        "segments.segment_members.members": lambda: members(store, segment.sql, segment.params, limit=5000),
        "segments.segment_members.size": lambda: size(store, segment.sql, segment.params),
        "site.bots_excluded.bots_excluded": lambda: bots_excluded(store, site, period),
        "site.breakdowns.visit_breakdown":
            lambda: visit_breakdown(store, site, period, country, "session_browser", 20),
        "site.breakdowns.pageview_breakdown":
            lambda: pageview_breakdown(store, site, period, Filters(), "os", 20),
        "site.countries.countries": lambda: countries(store, site, period),
        "site.custom_events.custom_events": lambda: custom_events(store, site, period),
        "site.devices.devices": lambda: devices(store, site, period, country, raw=True),
        "site.entry_pages.entry_pages":
            lambda: (entry_pages(store, site, period), entry_pages(store, site, week)),
        "site.event_properties.event_properties":
            lambda: event_properties(store, site, period, facts["event"]),
        "site.exit_pages.exit_pages": lambda: exit_pages(store, site, period, country),
        "site.funnel.funnel": lambda: funnel(store, site, period, steps, window=3600),
        "site.goals.goals":
            lambda: (goals(store, site, period, steps), goals(store, site, period, steps, raw=True)),
        "site.overview_kpis.overview_kpis":
            lambda: (overview_kpis(store, site, period), overview_kpis(store, site, week, country),
                     overview_kpis(store, site, period, raw=True)),
        "site.overview_kpis.period_metrics": lambda: period_metrics(store, site, week),
        "site.realtime.realtime_visitors":
            lambda: realtime_visitors(store, site, minutes=60, now=facts["latest"]),
        "site.retention.retention":
            lambda: (retention(store, site, period), retention(store, site, period, raw=True)),
        "site.sources.sources": lambda: (sources(store, site, period), sources(store, site, period, country)),
        "site.timeseries.timeseries":
            lambda: (timeseries(store, site, period), timeseries(store, site, week, metric="bounce_rate"),
                     timeseries(store, site, period, metric="visit_duration", raw=True)),
        "site.top_pages.top_pages":
            lambda: (top_pages(store, site, period), top_pages(store, site, period, raw=True)),
        "site.utm.utm": lambda: utm(store, site, period, dimension="utm_source"),
    }
    return calls


def _facts(store: EventStore, twins: Twins) -> dict[str, Any]:
    """Ids and names to ask about, read from the one server's data."""
    contacts = [row[0] for row in store.query(
        "SELECT contact_id FROM events WHERE contact_id != '' AND name = 'pageview' "
        "GROUP BY contact_id ORDER BY count() DESC, contact_id LIMIT 20").rows]
    visitor = store.query("SELECT any(visitor_id) FROM events WHERE contact_id = %(c)s AND name = 'pageview'",
                          {"c": contacts[0]}).scalar()
    event = custom_events(store, twins.site_id, twins.period)[0].name
    latest = store.query("SELECT max(ts) FROM events WHERE site_id = %(s)s AND name = 'pageview'",
                         {"s": twins.site_id}).scalar() + timedelta(minutes=1)
    examples = Path(__file__).parent.parent / "schemas" / "examples" / "segments"
    return {"contacts": contacts, "contact": contacts[0], "visitor": visitor, "event": event,
            "latest": latest,
            "campaign": campaign_list(store)[0].campaign_id,
            "country": countries(store, twins.site_id, twins.period)[0].value,
            "segment": json.loads((examples / "opened_not_clicked.json").read_text())}


def test_every_question_answers_on_the_cluster_as_on_one_server(twins: Twins) -> None:
    facts = _facts(twins.single, twins)
    one, many = _calls(twins.single, twins, facts), _calls(twins.cluster, twins, facts)
    assert set(one) == _questions(), "a question of tracker.queries is missing from this comparison"
    differ, empty = [], []
    for name in sorted(one):
        expected, got = _plain(one[name]()), _plain(many[name]())
        if got != expected:
            differ.append(f"{name}:\n  one server: {str(expected)[:600]}\n  cluster:    {str(got)[:600]}")
        if expected in ([], {}, 0, None, ""):
            empty.append(name)
    assert not differ, "\n".join(differ)
    # Equal answers prove something only where there was something to answer (the demo has no survey).
    assert empty == ["campaigns.campaign_list.survey_answers"], f"nothing found by: {empty}"


def test_rows_are_sharded_by_visitor_and_contacts_by_contact(twins: Twins,
                                                             clickhouse_cluster: ClickHouseCluster) -> None:
    nodes, database = clickhouse_cluster, twins.database
    visitors = _local_count(nodes, database, "SELECT DISTINCT visitor_id FROM events_local")
    contacts = _local_count(nodes, database, "SELECT contact_id FROM contacts_local FINAL")
    identities = _local_count(nodes, database, "SELECT DISTINCT visitor_id FROM identities_local")
    for per_node in (visitors, contacts):
        first, second = ({row[0] for row in rows} for rows in per_node)
        assert first and second, "both shards hold rows"
        assert not first & second, "a visitor (or contact) is on one shard only"
        assert min(len(first), len(second)) > 0.3 * (len(first) + len(second)), "split about evenly"
    for node_visitors, node_identities in zip(visitors, identities, strict=True):
        assert {r[0] for r in node_identities} <= {r[0] for r in node_visitors}, "identities by their events"
    total = twins.single.query("SELECT count() FROM events").scalar()
    counts = _local_count(nodes, database, "SELECT count() FROM events_local")
    assert sum(rows[0][0] for rows in counts) == total


def test_migrations_make_local_and_distributed_tables_on_every_node(
        clickhouse_cluster: ClickHouseCluster) -> None:
    database = _database()
    cluster = clickhouse_cluster.store(database)
    ran = migrate(cluster)
    assert ran == [f"{m.version}_{m.name}" for m in available()]
    assert migrate(cluster) == []
    tables = _local_count(clickhouse_cluster, database,
                          f"SELECT name, engine FROM system.tables WHERE database = '{database}' "  # noqa: S608 - generated name
                          "AND engine NOT LIKE '%View' AND name != 'schema_migrations' ORDER BY name")
    assert tables[0] == tables[1]
    engines = dict(tables[0])
    distributed = {name for name, engine in engines.items() if engine == "Distributed"}
    assert {"events", "contacts", "identities", "rollup_sessions"} <= distributed
    assert {name + "_local" for name in distributed} == set(engines) - distributed
    assert all(engine.endswith("MergeTree") and not engine.startswith("Replicated")
               for name, engine in engines.items() if name not in distributed), "no ZooKeeper: not replicated"
    ledgers = _local_count(clickhouse_cluster, database,
                           "SELECT version, checksum FROM schema_migrations ORDER BY version")
    assert ledgers[0] == ledgers[1] == [(m.version, m.checksum) for m in available()]

    # A node that lost its ledger (a new node, or one restored empty) is brought up to the others.
    second = _server_store(clickhouse_cluster.nodes[1], database)
    second.command("DROP TABLE schema_migrations")
    second.command("DROP TABLE rollup_bots_daily")
    assert migrate(cluster) == [f"{m.version}_{m.name}" for m in available()]
    assert second.query("SELECT count() FROM schema_migrations").scalar() == len(available())
    assert second.query("EXISTS TABLE rollup_bots_daily").scalar() == 1
    second.close()
    cluster.close()


def test_nodes_that_disagree_are_refused_before_anything_runs(clickhouse_cluster: ClickHouseCluster) -> None:
    database = _database()
    first, second = (_server_store(node, database) for node in clickhouse_cluster.nodes)
    for node, checksum in ((first, "aaaa"), (second, "bbbb")):
        node.ensure_database()
        node.command("CREATE TABLE schema_migrations (version String, name String, checksum String, "
                     "applied_at DateTime('UTC')) ENGINE = MergeTree ORDER BY version")
        node.command(f"INSERT INTO schema_migrations SELECT '9999', 'later', '{checksum}', now()")  # noqa: S608 - constants
    cluster = clickhouse_cluster.store(database)
    with pytest.raises(OdnosError, match=r"disagree: .*:\d+.* and .*:\d+.* applied migration 9999"):
        migrate(cluster)
    assert first.query(f"EXISTS TABLE {database}.events_local").scalar() == 0  # noqa: S608 - generated name

    edited = available()[0]
    second.command("TRUNCATE TABLE schema_migrations")
    second.command(f"INSERT INTO schema_migrations SELECT '{edited.version}', '{edited.name}', 'edited', "  # noqa: S608 - constants
                   "now()")
    where = f"{database} on 127.0.0.1:{clickhouse_cluster.nodes[1].tcp_port}"
    label = f"{edited.version}_{edited.name}"
    with pytest.raises(OdnosError, match=f"{label}.sql changed after it was applied to {where}"):
        migrate(cluster)
    for store in (first, second, cluster):
        store.close()


def test_an_unknown_cluster_name_says_where_to_define_it(clickhouse_cluster: ClickHouseCluster) -> None:
    server = clickhouse_cluster.nodes[0]
    store = ClickHouseStore(ClickHouseTarget(embedded=False, database=_database(), host="127.0.0.1",
                                             port=server.tcp_port, http_port=server.http_port,
                                             cluster="nosuch"))
    with pytest.raises(ConfigError, match="no cluster 'nosuch' in its remote_servers"):
        migrate(store)


def _visits(site: str, day: date, visitors: int, contact: str = "") -> list[dict[str, Any]]:
    ts = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()
    return [event_row("pageview", ts + n, site_id=site, url="https://a.example/", hostname="a.example",
                      pathname="/", visitor_id=f"v{n}-{day}", session_id=f"s{n}-{day}", contact_id=contact)
            for n in range(visitors)]


def test_retention_drops_old_months_on_every_node(clickhouse_cluster: ClickHouseCluster) -> None:
    database = _database()
    cluster = clickhouse_cluster.store(database)
    migrate(cluster)
    today = date(2026, 11, 20)
    cluster.insert("events", _visits("s", date(2025, 3, 5), 200) + _visits("s", date(2026, 11, 2), 100))
    per_node = _local_count(clickhouse_cluster, database,
                            "SELECT count() FROM events_local WHERE ts < '2026-01-01 00:00:00'")
    assert all(rows[0][0] > 0 for rows in per_node), "old rows on both shards"
    dropped = drop_old_partitions(cluster, 12, today)
    assert {(d.table, d.partition_id) for d in dropped} >= {("events_local", "202503"),
                                                            ("rollup_hourly_local", "202503")}
    assert cluster.query("SELECT count() FROM events").scalar() == 100
    assert cluster.query("SELECT min(ts) >= toDateTime('2026-01-01 00:00:00') FROM events").scalar() == 1
    per_node = _local_count(clickhouse_cluster, database, "SELECT count() FROM system.parts WHERE active AND "
                            f"database = '{database}' AND partition = '202503'")  # noqa: S608 - generated name
    assert [rows[0][0] for rows in per_node] == [0, 0]
    cluster.close()


def test_erasing_a_contact_deletes_its_rows_on_every_shard(clickhouse_cluster: ClickHouseCluster) -> None:
    database = _database()
    cluster = clickhouse_cluster.store(database)
    migrate(cluster)
    cluster.insert("events", _visits("s", date(2026, 11, 2), 60, contact="c-gone")
                   + _visits("s", date(2026, 11, 3), 40))
    holding = _local_count(clickhouse_cluster, database,
                           "SELECT count() FROM events_local WHERE contact_id = 'c-gone'")
    assert all(rows[0][0] > 0 for rows in holding), "the contact's visits are on both shards"
    tied = tied_rows(cluster, "c-gone")
    assert count_tied(cluster, tied)["events"] == 60
    delete_tied(cluster, tied, timeout=60)
    assert count_tied(cluster, tied_rows(cluster, "c-gone")) == dict.fromkeys(tied.tables, 0)
    assert cluster.query("SELECT count() FROM events").scalar() == 40
    cluster.close()


def test_odnos_demo_and_migrate_run_on_the_cluster(tmp_path: Path,
                                                   clickhouse_cluster: ClickHouseCluster) -> None:
    database = _database()
    env = odnos_env(tmp_path / "data", ODNOS_LOG_LEVEL="WARNING", ODNOS_CLICKHOUSE_CLUSTER=CLUSTER,
                    ODNOS_CLICKHOUSE_URL=clickhouse_cluster.url_for(database))
    loaded = run_odnos("demo", env=env)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    per_node = _local_count(clickhouse_cluster, database, "SELECT count() FROM events_local")
    assert all(rows[0][0] > 1000 for rows in per_node)
    again = run_odnos("migrate", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    bad = run_odnos("migrate", env={**env, "ODNOS_CLICKHOUSE_CLUSTER": "elsewhere"})
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "no cluster 'elsewhere' in its remote_servers" in bad.stderr
