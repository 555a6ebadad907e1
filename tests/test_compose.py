"""The compose files, checked without a Docker engine: they parse, run only real odnos commands,
set only variables the settings know, and health-check every long-running server; the cluster
file's ClickHouse nodes, Keeper and ``remote_servers`` agree with each other."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tracker.cli import build_parser
from tracker.settings import PREFIX, SETTINGS

ROOT = Path(__file__).resolve().parent.parent
FILES = ["docker-compose.yml", "docker-compose.cluster.yml"]


def _compose(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def _subcommands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def _clickhouse_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items()
            if s.get("image", "").startswith("clickhouse/clickhouse-server")}


def test_compose_has_every_part() -> None:
    services = _compose()["services"]
    expected = {"clickhouse", "postgres", "migrate", "collector", "dashboard", "scheduler", "mailpit"}
    assert expected <= set(services)
    major = int(services["clickhouse"]["image"].split(":")[1].split(".")[0])
    assert major >= 24


@pytest.mark.parametrize("name", FILES)
def test_every_command_exists_in_the_package(name: str) -> None:
    known = _subcommands()
    services = _compose(name)["services"].values()
    odnos_services = [s for s in services if s.get("image", "").startswith("odnos")]
    assert len(odnos_services) == 4
    for service in odnos_services:
        command = service["command"]
        assert command[0] == "odnos" and command[1] in known, command
        parser = build_parser()
        args = parser.parse_args(command[1:])  # unknown flags would exit here
        assert args.run is not None


@pytest.mark.parametrize("name", FILES)
def test_every_variable_is_a_known_setting(name: str) -> None:
    known = {s.env for s in SETTINGS}
    compose = _compose(name)
    for service_name, service in compose["services"].items():
        env = service.get("environment") or {}
        for key in env:
            if key.startswith(PREFIX):
                assert key in known, f"{service_name}: {key} is not a setting"
    assert compose["x-odnos-env"]["ODNOS_CLICKHOUSE_URL"].startswith("clickhouse://")


@pytest.mark.parametrize("name", FILES)
def test_servers_have_health_checks_and_volumes(name: str) -> None:
    compose = _compose(name)
    services = compose["services"]
    servers = [*_clickhouse_services(compose), "postgres", "collector", "dashboard", "mailpit"]
    for server in servers:
        assert "healthcheck" in services[server], server
    volumes = set(compose["volumes"])
    for server in [*_clickhouse_services(compose), "postgres", "collector"]:
        mounted = {v.split(":")[0] for v in services[server]["volumes"] if not v.startswith("./")}
        assert mounted <= volumes and mounted, server
    assert services["collector"]["environment"]["ODNOS_WORKERS"] != "1"
    assert (ROOT / "Dockerfile").exists()
    for service in services.values():  # every file a service mounts is in the repository
        for volume in service.get("volumes", []):
            if volume.startswith("./"):
                assert (ROOT / volume.split(":")[0]).is_file(), volume


def _mounted_config(service: dict, inside: str) -> ET.Element:
    source = next(v.split(":")[0] for v in service["volumes"] if v.split(":")[1].startswith(inside))
    return ET.parse(ROOT / source).getroot()


def test_the_cluster_file_has_two_shards_of_two_replicas_that_its_config_names() -> None:
    compose = _compose("docker-compose.cluster.yml")
    nodes = _clickhouse_services(compose)
    cluster = compose["x-odnos-env"]["ODNOS_CLICKHOUSE_CLUSTER"]
    placed = {(s["environment"]["SHARD"], s["environment"]["REPLICA"]): name for name, s in nodes.items()}
    assert sorted(placed) == [("1", "ch-s1r1"), ("1", "ch-s1r2"), ("2", "ch-s2r1"), ("2", "ch-s2r2")]
    assert all(s["hostname"] == s["environment"]["REPLICA"] for s in nodes.values())

    configs = {ET.tostring(_mounted_config(s, "/etc/clickhouse-server/config.d")) for s in nodes.values()}
    assert len(configs) == 1, "every node loads the same cluster config"
    config = _mounted_config(next(iter(nodes.values())), "/etc/clickhouse-server/config.d")
    shards = config.findall(f"remote_servers/{cluster}/shard")
    listed = [[r.findtext("host") for r in shard.findall("replica")] for shard in shards]
    assert listed == [["ch-s1r1", "ch-s1r2"], ["ch-s2r1", "ch-s2r2"]]
    assert all(shard.findtext("internal_replication") == "true" for shard in shards)
    assert config.find("macros/shard").get("from_env") == "SHARD"
    assert config.find("macros/replica").get("from_env") == "REPLICA"

    keepers = {name: s for name, s in compose["services"].items()
               if "clickhouse-keeper" in s.get("image", "")}
    assert sorted(n.findtext("host") for n in config.findall("zookeeper/node")) == sorted(keepers)
    raft = _mounted_config(next(iter(keepers.values())), "/etc/clickhouse-keeper")
    servers = {s.findtext("hostname"): s.findtext("id")
               for s in raft.findall("keeper_server/raft_configuration/server")}
    assert {name: s["environment"]["KEEPER_ID"] for name, s in keepers.items()} == servers
    assert len(keepers) == 3, "Keeper keeps a quorum with one node lost"

    url = compose["x-odnos-env"]["ODNOS_CLICKHOUSE_URL"]
    assert url.split("@")[1].split(":")[0] in nodes
    assert set(compose["services"]["migrate"]["depends_on"]) >= set(nodes)
