"""The `odnos` command as a user runs it: real processes, real stores, one-line errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tests.fixtures.web import WebClient, component

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


def test_a_usage_mistake_says_what_and_where_the_help_is_without_the_usage_dump(tmp_path: Path) -> None:
    result = run_odnos("segments", "previeww", env=odnos_env(tmp_path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "odnos segments: error: argument ACTION: invalid choice: 'previeww' (choose from 'add', 'preview', "
        "'list')", "(see `odnos segments --help`)"]
    result = run_odnos("contacts", "import", env=odnos_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "odnos contacts import: error: the following arguments are " \
        "required: file"


def test_demo_then_serve_shows_the_data_behind_a_login(tmp_path: Path) -> None:
    env = odnos_env(tmp_path / "data")
    demo = run_odnos("demo", "--visitors", "300", env=env)
    assert demo.returncode == 0, demo.stderr
    login_line = next(line for line in demo.stdout.splitlines() if line.startswith("dashboard login:"))
    email, password = login_line.split(":", 1)[1].split("(")[0].strip().split(" / ")
    assert run_odnos("demo", env=env).stdout.startswith("demo data is already loaded")
    # the dashboard's default view: people's pageviews of today and the 29 days before, in UTC
    pageviews = int(run_odnos("sql", "SELECT count() FROM events WHERE name = 'pageview' AND is_bot = 0 "
                              "AND toDate(ts) >= today() - 29", env=env).stdout)
    assert pageviews > 300

    with OdnosServer(env) as server:
        assert f"is running at {server.url}" in server.ready_line
        beside = run_odnos("sql", "SELECT count() FROM events WHERE name = 'pageview' AND is_bot = 0 "
                           "AND toDate(ts) >= today() - 29", env=env)  # goes through the server
        assert (beside.returncode, int(beside.stdout)) == (0, pageviews), beside.stderr

        web = WebClient(server.port)
        page = web.request("GET", "/")
        assert page.status == 302 and page.getheader("Location").startswith("/login")
        assert web.sign_in(email, "wrong").status == 401
        assert web.sign_in(email, password, next_path="/").status == 302
        overview = web.callback("page.children", [{"id": "url", "property": "pathname", "value": "/"},
                                                  {"id": "url", "property": "search", "value": ""}])
        assert overview.status == 200, overview.body
        shown = json.loads(overview.body)
        assert component(shown, "kpi-pageviews")["children"] == f"{pageviews:,}"
        assert "Demo Shop" in overview.body.decode()


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


def test_a_busy_folder_names_the_server_to_stop_and_its_command_line(tmp_path: Path) -> None:
    import sys

    env = odnos_env(tmp_path / "data")
    with OdnosServer(env) as server:
        (tmp_path / "data" / "cli.key").unlink()  # no way through the server: the folder is simply busy
        busy = run_odnos("sql", "SELECT 1", env=env)
        _assert_clean_error(busy, f"in use by pid {server.process.pid} (")  # the server, not its worker
        assert f"started as `{sys.executable} -m tracker serve --port {server.port}`" in busy.stderr


def test_campaign_must_be_what_the_help_promises(tmp_path: Path) -> None:
    env = odnos_env(tmp_path)
    for bad in ("spring sale!", "été", "a/b", "", "x" * 65):
        for command in (["link", "https://shop.example.com/"], ["pixel"]):
            result = run_odnos(*command, "--email", "ann@example.com", "--campaign", bad, env=env)
            _assert_clean_error(result, f"--campaign {bad!r} may hold only ASCII letters, digits, - and _")
    assert "ASCII letters, digits, - and _" in " ".join(run_odnos("link", "--help", env=env).stdout.split())
    assert "for example spring-sale" in run_odnos("pixel", "--email", "ann@example.com", "--campaign",
                                                  "Spring Sale!", env=env).stderr
    fine = run_odnos("pixel", "--email", "ann@example.com", "--campaign", "Spring_sale-2026", env=env)
    assert fine.returncode == 0, fine.stderr


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("ODNOS_PORT", "abc", "must be a whole number from 1 to 65535, for example 8000"),
    ("ODNOS_PORT", "99999", "must be between 1 and 65535, for example 8000"),
    ("ODNOS_WORKERS", "2.5", "must be a whole number from 1 to 64, for example 2"),
    ("ODNOS_BATCH_INTERVAL", "fast", "must be a number from 0.01 to 60.0"),
    ("ODNOS_CHDB_MAX_MEMORY", "lots", "such as 512M or 2G"),
    ("ODNOS_SPOOL_MAX_BYTES", "", "such as 512M or 2G"),
    ("ODNOS_TRUSTED_PROXIES", "office", "such as 10.0.0.0/8"),
    ("ODNOS_SMTP_URL", "smtp://[mail", "must start with smtp:// or smtps://, then a valid host"),
    ("ODNOS_CLICKHOUSE_URL", "clickhouse://db:abc/odnos", "the port 'abc' must be a number from 1 to 65535"),
])
def test_a_bad_setting_says_what_is_expected_not_what_python_said(tmp_path: Path, variable: str,
                                                                   value: str, expected: str) -> None:
    result = run_odnos("sql", "SELECT 1", env=odnos_env(tmp_path, **{variable: value}))
    _assert_clean_error(result, expected)
    for python_words in ("invalid literal", "could not convert", "does not appear to be", "Invalid IPv6",
                         "could not be cast"):
        assert python_words not in result.stderr


def test_port_and_workers_flags_get_the_settings_one_line_errors(tmp_path: Path) -> None:
    _assert_clean_error(run_odnos("serve", "--port", "abc", env=odnos_env(tmp_path)),
                        "'abc' is not valid: must be a whole number from 1 to 65535")
    _assert_clean_error(run_odnos("serve", "--port", "70000", env=odnos_env(tmp_path)), "between 1 and 65535")
    _assert_clean_error(run_odnos("collector", "--workers", "0", env=odnos_env(tmp_path)), "between 1 and 64")


def test_a_failed_query_shows_the_query_the_user_typed(engine_env: dict[str, str]) -> None:
    assert run_odnos("migrate", env=engine_env).returncode == 0
    typo = run_odnos("sql", "SELEC 1", env=engine_env)
    _assert_clean_error(typo, "query 'SELEC 1' failed")
    assert "FORMAT" not in typo.stderr and "Syntax error" in typo.stderr
    assert "Stack trace" not in typo.stderr  # ClickHouse 18.16 adds its own to the message
    spread = run_odnos("sql", "SELECT nosuch\n  FROM events", env=engine_env)
    _assert_clean_error(spread, "query 'SELECT nosuch FROM events' failed")
    assert "nosuch" in spread.stderr.split("failed", 1)[1] and "JSONCompact" not in spread.stderr
    _assert_clean_error(run_odnos("sql", "SELECT 1 FORMAT CSV", env=engine_env), "leave out the FORMAT")
