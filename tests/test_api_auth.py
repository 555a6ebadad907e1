"""Who may call the API: keys made, listed and revoked with the real CLI, scopes, and the rate limit.

Through the real server on both engines (``world``); the rate limit on a server of its own with a
rate low enough to reach (it counts in memory, the store plays no part). The scope parsing, the
token bucket and the 0005 migration are checked directly as well.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import pytest
from alembic import command
from sqlalchemy import text

from tests.fixtures.api import KEYS, ApiWorld, api_world_fixture, make_key  # noqa: F401
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tracker.api.auth import RateLimiter
from tracker.control.api_keys import SCOPES, key_scopes, parse_scopes, verify_api_key
from tracker.control.db import ControlPlane, alembic_config
from tracker.errors import OdnosError

pytestmark = pytest.mark.server


# -- scopes and the bucket, directly ---------------------------------------------------------------


def test_scopes_are_checked_and_kept_in_a_fixed_order() -> None:
    assert parse_scopes("reports:read, send,send") == ["send", "reports:read"]
    assert parse_scopes(["contacts:write", "contacts:read"]) == ["contacts:read", "contacts:write"]
    assert parse_scopes("") == []
    with pytest.raises(OdnosError) as refused:
        parse_scopes("send,contacts:delete")
    assert refused.value.code == "bad_scope"
    assert "'contacts:delete'" in refused.value.message
    assert all(scope in refused.value.message for scope in SCOPES)


def test_the_bucket_allows_the_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=10.0, burst=3)
    assert [limiter.wait_for("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.wait_for("a")
    assert 0.05 < wait <= 0.1  # one token comes back in 1/10 s
    assert limiter.wait_for("b") == 0.0  # another key has its own bucket
    time.sleep(wait + 0.01)
    assert limiter.wait_for("a") == 0.0
    assert limiter.wait_for("a") > 0


def test_keys_from_before_0005_get_no_scope(tmp_path: Path) -> None:
    plane = ControlPlane(f"sqlite:///{tmp_path / 'control.db'}")
    with plane.engine.connect() as connection:
        command.upgrade(alembic_config(connection), "0004")
        connection.execute(text("INSERT INTO users (id, email, password_hash, role, created_at, disabled) "
                                "VALUES (1, 'a@example.com', 'x', 'admin', '2026-01-01 00:00:00', 0)"))
        # The hash of the secret "s" (sha256), so the key can be verified after the upgrade.
        connection.execute(text(
            "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) VALUES (1, 1, 'old', "
            "'abc123', '043a718774c572bd8a25adbeb1bfcd5c0256ae11cecf9f9c3f925d0e52beaf89', "
            "'2026-01-01 00:00:00')"))
        connection.commit()
    plane.migrate()
    with plane.session() as db:
        key = verify_api_key(db, "odn_abc123_s")
        assert key is not None and key.scopes == "" and key_scopes(key) == frozenset()
    plane.dispose()


# -- the CLI ----------------------------------------------------------------------------------------


def test_cli_creates_lists_and_revokes_and_a_revoked_key_is_refused(world: ApiWorld) -> None:
    created = run_odnos("apikey", "create", "--name", "nightly sync", "--scope", "contacts:read",
                        "--scope", "reports:read", env=world.env)
    assert created.returncode == 0, created.stderr
    plaintext = created.stdout.strip().splitlines()[-1]
    assert plaintext.startswith("odn_")
    prefix = plaintext.split("_")[1]
    listed = run_odnos("apikey", "list", env=world.env)
    row = next(line.split("\t") for line in listed.stdout.splitlines() if line.startswith(prefix))
    assert row[1:5] == ["nightly sync", "demo@example.com", "contacts:read,reports:read", "active"]
    assert plaintext not in listed.stdout  # shown once only

    world.keys["cli"] = plaintext
    assert world.call("GET", "/api/v1/contacts?limit=1", key="cli").status == 200
    revoked = run_odnos("apikey", "revoke", prefix, env=world.env)
    assert revoked.returncode == 0 and prefix in revoked.stdout, revoked.stderr
    refused = world.call("GET", "/api/v1/contacts?limit=1", key="cli")
    assert refused.status == 401 and refused.error["code"] == "bad_key"
    again = run_odnos("apikey", "list", env=world.env)
    row = next(line.split("\t") for line in again.stdout.splitlines() if line.startswith(prefix))
    assert row[4] == "revoked"


@pytest.mark.parametrize(("args", "says"), [
    (["create", "--name", "x", "--scope", "contacts:delete"], "Unknown API key scope 'contacts:delete'"),
    (["create", "--name", "x", "--scope", ","], "at least one of"),
    (["create", "--name", "x", "--scope", "send", "--user", "nobody@example.com"], "no user"),
    (["create", "--name", " ", "--scope", "send"], "API key name"),
    (["revoke", "feedfacecafe"], "no API key with prefix"),
])
def test_cli_mistakes_are_one_line_and_exit_2(world: ApiWorld, args: list[str], says: str) -> None:
    done = run_odnos("apikey", *args, env=world.env)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("odnos: error: ") and says in lines[0], done.stderr


# -- authentication and scopes over HTTP ------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Basic YTpi", "Bearer", "Bearer odn_nope_nope", "Bearer x"])
def test_no_key_or_a_bad_one_is_401_with_a_challenge(world: ApiWorld, header: str | None) -> None:
    answer = world.call("GET", "/api/v1/contacts", key=None,
                        headers={"Authorization": header} if header is not None else None)
    assert answer.status == 401, answer.body
    assert answer.error["code"] == ("missing_key" if header is None else "bad_key")
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_wrong_secret_for_a_real_prefix_is_401(world: ApiWorld) -> None:
    prefix = world.keys["all"].split("_")[1]
    answer = world.call("GET", "/api/v1/contacts", key=None,
                        headers={"Authorization": f"Bearer odn_{prefix}_{'A' * 43}"})
    assert answer.status == 401 and answer.error["code"] == "bad_key"


@pytest.mark.parametrize(("method", "path", "scope"), [
    ("GET", "/api/v1/contacts", "contacts:read"),
    ("GET", "/api/v1/contacts/ann%40example.com", "contacts:read"),
    ("PUT", "/api/v1/contacts/ann%40example.com", "contacts:write"),
    ("POST", "/api/v1/contacts/batch", "contacts:write"),
    ("PUT", "/api/v1/contacts/ann%40example.com/consent", "contacts:write"),
    ("DELETE", "/api/v1/contacts/ann%40example.com", "contacts:write"),
    ("GET", "/api/v1/reports/campaigns", "reports:read"),
    ("GET", "/api/v1/reports/segments/x/size", "reports:read"),
])
def test_each_route_needs_its_scope(world: ApiWorld, method: str, path: str, scope: str) -> None:
    body = {"contacts": []} if path.endswith("batch") else {"status": "bounced"} if "consent" in path else {}
    holders = [name for name, scopes in KEYS.items() if scope in scopes.split(",")]
    for name in KEYS:
        answer = world.call(method, path, key=name, body=body if method in ("PUT", "POST") else None)
        if name in holders:
            assert answer.status != 403, (name, answer.body)
        else:
            assert answer.status == 403, (name, answer.body)
            assert answer.error["code"] == "missing_scope" and scope in answer.error["message"]


def test_a_send_key_cannot_read_contacts_and_a_reader_cannot_write(world: ApiWorld) -> None:
    path = f"/api/v1/contacts/{quote('scoped-reader@example.com')}"
    assert world.call("GET", "/api/v1/contacts?limit=5", key="send").status == 403
    assert world.call("GET", path, key="send").status == 403
    assert world.call("PUT", path, key="contacts_read", body={"first_name": "X"}).status == 403
    assert world.call("GET", path, key="contacts_read").status == 404  # nothing was stored


def test_the_document_and_its_page_need_no_key(world: ApiWorld) -> None:
    assert world.call("GET", "/api/v1/openapi.json", key=None).status == 200
    assert world.call("GET", "/api/v1/docs", key=None).status == 200


# -- the rate limit ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory):
    env = odnos_env(tmp_path_factory.mktemp("api-rate"), ODNOS_LOG_LEVEL="WARNING",
                    ODNOS_API_RATE_PER_SECOND="0.5", ODNOS_API_BURST="3")
    assert run_odnos("user", "add", "--email", "admin@example.com", "--password", "correct horse battery",
                     "--role", "admin", env=env).returncode == 0
    keys = [make_key(env, f"k{n}", "contacts:read") for n in range(2)]
    with OdnosServer(env) as server:
        yield server, keys


def test_a_key_past_its_rate_gets_429_with_retry_after(slow_server) -> None:
    server, (first, second) = slow_server
    world = ApiWorld("chdb", {}, server, {"first": first, "second": second}, "")
    for _ in range(3):  # the burst
        assert world.call("GET", "/api/v1/contacts?limit=1", key="first").status == 200
    refused = world.call("GET", "/api/v1/contacts?limit=1", key="first")
    assert refused.status == 429 and refused.error["code"] == "rate_limited", refused.body
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 2  # one token every 2 s, part of one already back
    assert world.call("GET", "/api/v1/contacts?limit=1", key="second").status == 200  # limits are per key
    time.sleep(wait)
    assert world.call("GET", "/api/v1/contacts?limit=1", key="first").status == 200
