"""docker-compose.yml, checked without a Docker engine: it parses, runs only real odnos commands,
sets only variables the settings know, and health-checks every long-running server."""

from __future__ import annotations

from pathlib import Path

import yaml

from tracker.cli import build_parser
from tracker.settings import PREFIX, SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _subcommands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def test_compose_has_every_part() -> None:
    services = _compose()["services"]
    expected = {"clickhouse", "postgres", "migrate", "collector", "dashboard", "scheduler", "mailpit"}
    assert expected <= set(services)
    major = int(services["clickhouse"]["image"].split(":")[1].split(".")[0])
    assert major >= 24


def test_every_command_exists_in_the_package() -> None:
    known = _subcommands()
    odnos_services = [s for s in _compose()["services"].values() if s.get("image", "").startswith("odnos")]
    assert len(odnos_services) == 4
    for service in odnos_services:
        command = service["command"]
        assert command[0] == "odnos" and command[1] in known, command
        parser = build_parser()
        args = parser.parse_args(command[1:])  # unknown flags would exit here
        assert args.run is not None


def test_every_variable_is_a_known_setting() -> None:
    known = {s.env for s in SETTINGS}
    compose = _compose()
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        for key in env:
            if key.startswith(PREFIX):
                assert key in known, f"{name}: {key} is not a setting"
    assert compose["x-odnos-env"]["ODNOS_CLICKHOUSE_URL"].startswith("clickhouse://")


def test_servers_have_health_checks_and_volumes() -> None:
    services = _compose()["services"]
    for name in ("clickhouse", "postgres", "collector", "dashboard", "mailpit"):
        assert "healthcheck" in services[name], name
    volumes = set(_compose()["volumes"])
    for name in ("clickhouse", "postgres", "collector"):
        mounted = {v.split(":")[0] for v in services[name]["volumes"]}
        assert mounted <= volumes and mounted, name
    assert services["collector"]["environment"]["ODNOS_WORKERS"] != "1"
    assert (ROOT / "Dockerfile").exists()
