"""Secrets and files: the data folder and what holds secrets are the owner's only, a world-writable
data folder stops odnos with a clear error, and no secret reaches a log line or an error message
(the log of a real server session is searched for every secret in use)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.fixtures.clickhouse import free_port
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tests.fixtures.web import WebClient, component
from tracker.errors import ConfigError
from tracker.settings import load_settings
from tracker.tokens import TokenCodec

PASSWORD = "correct horse battery"
WRONG = "a wrong guess 12345"
ADMIN = "admin@example.com"
SMTP_PASSWORD = "smtp-pass-9f3k2"  # noqa: S105 - the secret the log is searched for


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_world_writable_data_folder_stops_odnos(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    env = odnos_env(data)
    added = run_odnos("user", "add", "--email", ADMIN, "--password", PASSWORD, env=env)
    assert added.returncode == 2, added.stdout + added.stderr
    assert added.stderr.startswith("odnos: error: ODNOS_DATA_DIR: ") and "chmod 700" in added.stderr
    assert not (data / "odnos.sqlite3").exists(), "something was written before the refusal"
    serve = run_odnos("serve", "--port", str(free_port()), env=env, timeout=60)
    assert serve.returncode == 2 and "writable by every user" in serve.stderr, serve.stderr
    data.chmod(0o700)
    again = run_odnos("user", "add", "--email", ADMIN, "--password", PASSWORD, env=env)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(("env", "secret"), [
    ({"ODNOS_SECRET_KEYS": "tooshort-secret"}, "tooshort-secret"),
    ({"ODNOS_SMTP_URL": f"ftp://mailer:{SMTP_PASSWORD}@mail.example.com"}, SMTP_PASSWORD),
    ({"ODNOS_CLICKHOUSE_URL": f"http://default:{SMTP_PASSWORD}@ch:9000/odnos"}, SMTP_PASSWORD),
])
def test_a_refused_setting_is_named_without_its_secret(env: dict[str, str], secret: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ=env)
    assert next(iter(env)) in str(refused.value) and secret not in str(refused.value)


@pytest.mark.server
def test_no_secret_reaches_the_log_of_a_server_session(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = odnos_env(data, ODNOS_LOG_LEVEL="DEBUG",
                    ODNOS_SMTP_URL=f"smtp://mailer:{SMTP_PASSWORD}@127.0.0.1:{free_port()}")
    added = run_odnos("user", "add", "--email", ADMIN, "--password", PASSWORD, "--role", "admin", env=env)
    assert added.returncode == 0, added.stderr
    assert PASSWORD not in added.stdout + added.stderr
    site = run_odnos("site", "add", "Shop", "--domain", "shop.example.com", env=env)
    site_id = site.stdout.split()[-1]
    with OdnosServer(env) as server:
        keys = tuple((data / "secret_keys").read_text().split())
        codec = TokenCodec(keys)
        client = WebClient(server.port)
        assert client.sign_in(ADMIN, WRONG).status == 401
        client.log_in(ADMIN, PASSWORD)
        session_cookie = client.cookie.split("=", 1)[1]
        created = client.callback("apikey-created.children", [
            {"id": "apikey-create", "property": "n_clicks", "value": 1}],
            [{"id": "apikey-name", "property": "value", "value": "tool"},
             {"id": "apikey-scopes", "property": "value", "value": ["reports:read"]}])
        api_key = component(json.loads(created.body), "apikey-plaintext")["children"]
        assert client.request("GET", "/settings").status == 200
        unsubscribe = codec.unsubscribe("c_logged")
        click = codec.click("c_logged", 1, 1, "https://shop.example.com/")
        pixel = "/o/" + codec.open("c_logged", 1)
        for path in ("/u/" + unsubscribe, "/c/" + click, "/c/" + click[:-3], pixel, "/u/" + unsubscribe[:-2]):
            assert client.request("GET", path).status < 500
        assert client.request("POST", "/e", json_body={"site": site_id, "name": 7}).status == 400
        assert client.request("POST", "/_dash-update-component", json_body={"output": "nope"}).status == 400
        logged_out = WebClient(server.port)
        logged_out.cookie = "session=" + session_cookie[:-4] + "abcd"  # a forged cookie
        assert logged_out.request("GET", "/").status == 302
    log = "".join(server.output)
    assert " is running at " in log and len(log.splitlines()) > 3, log
    secrets_in_use = {"signing key": keys[0], "admin password": PASSWORD, "failed password": WRONG,
                      "session cookie": session_cookie, "API key": api_key,
                      "API key secret": api_key.split("_", 2)[2], "SMTP password": SMTP_PASSWORD,
                      "unsubscribe token": unsubscribe, "click token": click}
    leaked = [name for name, value in secrets_in_use.items() if value in log]
    assert leaked == [], leaked

    assert _mode(data) == 0o700
    for name in ("secret_keys", "odnos.sqlite3", "odnos.sqlite3-wal", "odnos.sqlite3-shm"):
        if name.startswith("odnos.sqlite3-") and not (data / name).exists():
            continue  # SQLite removes them on a clean close
        assert _mode(data / name) == 0o600, (name, oct(_mode(data / name)))
