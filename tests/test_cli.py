"""The `odnos` command as a user runs it: real processes, real stores, one-line errors."""

from __future__ import annotations

import socket
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos

COMMANDS = ["serve", "collector", "dashboard", "scheduler", "migrate", "demo", "user", "site", "sql"]


def _assert_clean_error(result, fragment: str) -> None:
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("odnos: error: "), result.stderr
    assert fragment in lines[0]


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run_odnos("--help", env=odnos_env(tmp_path))
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.fixture(params=["chdb", "server"])
def engine_env(request, tmp_path: Path) -> dict[str, str]:
    if request.param == "chdb":
        return odnos_env(tmp_path / "data")
    server = request.getfixturevalue("clickhouse_server")
    database = "cli_" + tmp_path.name[-8:].replace("-", "_").lower()
    return odnos_env(tmp_path / "data", ODNOS_CLICKHOUSE_URL=server.url_for(database))


def test_migrate_site_user_sql_on_each_engine(engine_env: dict[str, str]) -> None:
    first = run_odnos("migrate", env=engine_env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_events" in first.stdout
    again = run_odnos("migrate", env=engine_env)
    assert again.returncode == 0 and "applied" not in again.stdout.replace("is current", "")

    site = run_odnos("site", "add", "Shop", "--domain", "https://www.Shop.example/", env=engine_env)
    assert site.returncode == 0, site.stderr
    site_id = site.stdout.strip().splitlines()[-1]
    assert site_id.startswith("s_") and f'data-site="{site_id}"' in site.stdout
    listed = run_odnos("site", "list", env=engine_env)
    assert f"{site_id}\tShop\tshop.example" in listed.stdout

    user = run_odnos("user", "add", "--email", "ana@example.com", "--password", "-", "--role", "admin",
                     env=engine_env, stdin="correct horse battery\n")
    assert user.returncode == 0, user.stderr
    assert user.stdout.strip().splitlines()[-1].isdigit()
    duplicate = run_odnos("user", "add", "--email", "ana@example.com", "--password", "another-pass1",
                          env=engine_env)
    _assert_clean_error(duplicate, "ana@example.com")

    rows = run_odnos("sql", "SELECT name, version FROM schema_migrations ORDER BY version", "--header",
                     env=engine_env)
    assert rows.returncode == 0, rows.stderr
    assert rows.stdout.splitlines()[:2] == ["name\tversion", "events\t0001"]
    write = run_odnos("sql", "DROP TABLE events", env=engine_env)
    assert write.returncode == 2 and "Traceback" not in write.stderr
    still = run_odnos("sql", "SELECT count() FROM events", env=engine_env)
    assert still.stdout.strip() == "0"


def test_user_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    _assert_clean_error(run_odnos("migrate", env=odnos_env(tmp_path, ODNOS_CLICKHOUSE_URL="http://x")),
                        "ODNOS_CLICKHOUSE_URL")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    _assert_clean_error(
        run_odnos("migrate", env=odnos_env(tmp_path, ODNOS_CLICKHOUSE_URL=f"clickhouse://127.0.0.1:{closed_port}/db")),
        "unreachable")
    (tmp_path / "file").write_text("not a folder")
    _assert_clean_error(run_odnos("migrate", env=odnos_env(tmp_path / "file" / "data")), "not writable")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _assert_clean_error(run_odnos("serve", "--port", str(port), env=odnos_env(tmp_path / "d2")),
                            "in use")
    _assert_clean_error(run_odnos("collector", env=odnos_env(tmp_path / "d3")), "server mode")


def test_demo_then_serve_shows_the_data_behind_a_login(tmp_path: Path) -> None:
    env = odnos_env(tmp_path / "data")
    demo = run_odnos("demo", "--visitors", "300", env=env)
    assert demo.returncode == 0, demo.stderr
    login_line = next(line for line in demo.stdout.splitlines() if line.startswith("dashboard login:"))
    email, password = login_line.split(":", 1)[1].split("(")[0].strip().split(" / ")
    assert run_odnos("demo", env=env).stdout.startswith("demo data is already loaded")
    pageviews = int(run_odnos("sql", "SELECT count() FROM events WHERE name = 'pageview'", env=env).stdout)
    assert pageviews > 300

    with OdnosServer(env) as server:
        assert f"is running at {server.url}" in server.ready_line
        busy = run_odnos("sql", "SELECT 1", env=env)
        _assert_clean_error(busy, "in use by pid")
        assert server.url in busy.stderr  # says which server holds the folder

        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(server.url + "/")
        assert page.url.startswith(server.url + "/login")
        with pytest.raises(urllib.error.HTTPError) as wrong:
            opener.open(server.url + "/login", urllib.parse.urlencode(
                {"email": email, "password": "wrong"}).encode())
        assert wrong.value.code == 401
        home = opener.open(server.url + "/login?next=/", urllib.parse.urlencode(
            {"email": email, "password": password}).encode()).read().decode()
        assert f'<b id="pageviews">{pageviews:,}</b>' in home
        assert "Demo Shop" in home


def test_link_and_pixel_carry_the_send_time_given_and_unknown_without(tmp_path: Path) -> None:
    import datetime as dt

    from tracker.tokens import TokenCodec

    key = "cli-key-" + "k" * 24
    env = odnos_env(tmp_path, ODNOS_SECRET_KEYS=key, ODNOS_PUBLIC_URL="https://t.example.com")
    codec = TokenCodec([key])

    def token(*args: str) -> str:
        made = run_odnos(*args, env=env)
        assert made.returncode == 0, made.stderr
        url = made.stdout.strip().splitlines()[-1]
        assert url.startswith("https://t.example.com/")
        return url.rsplit("/", 1)[1]

    link = ["link", "--email", "ann@example.com", "--campaign", "spring", "https://shop.example.com/"]
    pixel = ["pixel", "--email", "ann@example.com", "--campaign", "spring"]
    assert codec.read_click(token(*link)).sent_at is None  # unknown, not the moment the link was made
    assert codec.read_open(token(*pixel)).sent_at is None
    send = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    unix = int(send.timestamp())
    in_paris = send.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()  # e.g. ...T11:00:00+02:00
    assert codec.read_click(token(*link, "--sent-at", send.strftime("%Y-%m-%dT%H:%M:%SZ"))).sent_at == unix
    assert codec.read_open(token(*pixel, "--sent-at", in_paris)).sent_at == unix
    assert codec.read_click(token(*link, "--sent-at", str(unix))).sent_at == unix
    for bad, fragment in (("tomorrow", "--sent-at"), (send.strftime("%Y-%m-%dT%H:%M:%S"), "UTC offset"),
                          ("2099-01-01T00:00:00Z", "days")):
        _assert_clean_error(run_odnos(*link, "--sent-at", bad, env=env), fragment)
        _assert_clean_error(run_odnos(*pixel, "--sent-at", bad, env=env), fragment)
