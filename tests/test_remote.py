"""Commands beside a running `odnos serve`: forwarded to it, they do what they do with the server stopped.

Every test runs the real `odnos` CLI as child processes next to a real `odnos serve` (granian, chDB).
The comparison tests copy one demo data folder twice: one copy is held by a running server, the
other is free, and each command runs on both; the output and exit code must be the same (the
server's copy could not be opened by a second process at all, so a command that were not forwarded
would say "in use by pid N" instead).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.processes import ODNOS, OdnosServer, odnos_env
from tests.test_mailer_smtp import SmtpCapture
from tests.test_rules_world import FROM

DEMO = ("demo", "--visitors", "150", "--days", "3")
SEGMENT = "Opened the last campaign, did not click"
RULE = "Win back lapsed buyers"
HOLD_LOCK = """import sys, time
from pathlib import Path
from tracker.store.lock import FolderLock
FolderLock(Path(sys.argv[1])).acquire("odnos contacts import")
print("held", flush=True)
time.sleep(60)
"""


def odnos(env: dict[str, str], *args: str, cwd: Path | None = None,
          timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*ODNOS, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False)


def _clean_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("odnos: error: ") and fragment in lines[0], result.stderr


def _post(url: str, body: object, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/_odnos/cli", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - a test server
            return response.status, {"lines": [line for line in response.read().decode().splitlines()
                                               if line]}  # without the heartbeats
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _key(data: Path) -> dict:
    return json.loads((data / "cli.key").read_text())


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpCapture]:
    with SmtpCapture() as server:
        yield server


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the demo loaded (by a CLI with no server), to copy for each test."""
    data = tmp_path_factory.mktemp("remote-demo") / "data"
    loaded = odnos(odnos_env(data), *DEMO)
    assert loaded.returncode == 0, loaded.stderr
    return data


def _environment(data: Path, smtp: SmtpCapture) -> dict[str, str]:
    return odnos_env(data, ODNOS_SMTP_URL=smtp.url, ODNOS_MAIL_FROM=FROM,
                     ODNOS_PUBLIC_URL="http://t.example.test")


@pytest.fixture
def twins(tmp_path: Path, demo_folder: Path, smtp: SmtpCapture) -> Iterator[tuple[dict, dict, OdnosServer]]:
    """Two copies of the demo folder: the first held by a running `odnos serve`, the second free."""
    served, stopped = (_environment(shutil.copytree(demo_folder, tmp_path / name, symlinks=True), smtp)
                       for name in ("served", "stopped"))
    with OdnosServer(served) as server:
        yield served, stopped, server


def _untimed(text: str) -> str:
    """A command's output with its clock times blanked: the twins run it a moment apart, which can
    fall on either side of a minute ("campaign already sent on 2026-12-01 18:48 UTC")."""
    return re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})? UTC", "<time> UTC", text)


def test_commands_through_a_running_server_give_what_they_give_without_it(twins, smtp, tmp_path) -> None:
    served, stopped, server = twins
    work = tmp_path / "work"  # relative file arguments are the client's, not the server's
    (work / "lists").mkdir(parents=True)
    (work / "lists" / "new.csv").write_text("email,first_name,plan\nann@example.com,Ann,pro\n"
                                            "not-an-address,Bo,x\ncy@example.com,Cy,free\n")
    mailed = {"ann@example.com", "cy@example.com"}
    commands = [
        ("sql", "SELECT name, count() FROM events GROUP BY name ORDER BY name", "--header"),
        ("sql", "SELECT nope"),
        ("contacts", "import", "lists/new.csv", "--tag", "imported"),
        ("contacts", "import", "lists/missing.csv"),
        ("contacts", "list", "--tag", "imported"),
        ("segments", "preview", SEGMENT, "--limit", "5"),
        ("send", "--template", "Welcome", "--tag", "imported", "--name", "remote"),
        ("send", "--template", "Welcome", "--tag", "imported", "--name", "remote"),  # mails nobody twice
        ("rules", "enable", RULE),
        ("rules", "run"),
        ("rules", "history", RULE),
        ("contacts", "erase", "ann@example.com"),  # no terminal to confirm on: asks for --yes
        ("contacts", "erase", "ann@example.com", "--yes"),
        ("contacts", "list", "--tag", "imported"),
        ("ingest", "replay-dead-letters"),
        ("migrate",),
        DEMO,  # already loaded
    ]
    results = []
    for command in commands:
        before = len(smtp.messages)
        there = odnos(served, *command, cwd=work)
        sent_there = sorted(rcpt for m in smtp.messages[before:] for rcpt in m.rcpt_tos)
        before = len(smtp.messages)
        here = odnos(stopped, *command, cwd=work)
        sent_here = sorted(rcpt for m in smtp.messages[before:] for rcpt in m.rcpt_tos)
        assert (there.returncode, _untimed(there.stdout), _untimed(there.stderr)) == \
            (here.returncode, _untimed(here.stdout), _untimed(here.stderr)), command
        assert sent_there == sent_here, command
        results.append((here, sent_here))

    # ... and what they gave is each command's real work, not one refusal twice
    (counts, _), (unknown, _), (imported, _), (missing, _), (listed, _) = results[:5]
    assert counts.returncode == 0 and counts.stdout.startswith("name\tcount()\n")
    assert "pageview\t" in counts.stdout
    _clean_error(unknown, "Unknown expression identifier")
    assert imported.returncode == 0 and imported.stdout.endswith(
        "lists/new.csv: 3 rows: taken 2 (2 new, 0 updated, 0 unchanged), rejected 1\n")
    _clean_error(missing, "lists/missing.csv: no such file")
    assert sorted(line.split("\t")[1] for line in listed.stdout.splitlines()) == sorted(mailed)
    (first_send, first_mailed), (second_send, second_mailed) = results[6:8]
    assert first_send.returncode == second_send.returncode == 0
    assert first_mailed == sorted(mailed) and second_mailed == []
    (confirm, _), (erased, _), (after, _) = results[11:14]
    _clean_error(confirm, "add --yes to confirm")
    assert erased.returncode == 0 and "erased ann@example.com" in erased.stdout
    assert [line.split("\t")[1] for line in after.stdout.splitlines()] == ["cy@example.com"]
    assert results[-1][0].stdout.startswith("demo data is already loaded")
    assert not any("in use by" in result.stderr for result, _ in results)


def test_a_relative_import_reads_the_clients_file_and_prints_its_path_as_typed(twins, tmp_path) -> None:
    served, stopped, _server = twins
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "people.csv").write_text("email\nzed@example.com\nyan@example.com\n")
    there = odnos(served, "contacts", "import", "people.csv", "--tag", "rel", cwd=work)
    assert there.returncode == 0, there.stderr
    assert there.stdout == "people.csv: 2 rows: taken 2 (2 new, 0 updated, 0 unchanged), rejected 0\n"
    listed = odnos(served, "contacts", "list", "--tag", "rel")
    assert sorted(line.split("\t")[1] for line in listed.stdout.splitlines()) == ["yan@example.com",
                                                                                 "zed@example.com"]


def test_demo_on_a_fresh_folder_through_the_server_loads_what_it_loads_alone(tmp_path, smtp) -> None:
    served, alone = (_environment(tmp_path / name, smtp) for name in ("served", "alone"))
    with OdnosServer(served):
        there = odnos(served, *DEMO)
        here = odnos(alone, *DEMO)
        query = "SELECT name, count() FROM events GROUP BY name ORDER BY name"
        assert odnos(served, "sql", query).stdout == odnos(alone, "sql", query).stdout != ""
    assert there.returncode == here.returncode == 0, there.stderr

    def shape(out: str) -> list[str]:  # the password and the site id are new in each folder
        lines = out.splitlines()
        return [line.split(" / ")[0] for line in lines[:-1]] + [lines[-1][:2]]

    assert shape(there.stdout) == shape(here.stdout)
    assert there.stdout.startswith("loaded ") and there.stdout.splitlines()[-1].startswith("s_")


def test_the_route_takes_only_this_starts_key_from_loopback(tmp_path, smtp) -> None:
    one, other = (_environment(tmp_path / name, smtp) for name in ("one", "other"))
    with OdnosServer(one) as server, OdnosServer(other) as other_server:
        key = _key(tmp_path / "one")
        assert stat.S_IMODE((tmp_path / "one" / "cli.key").stat().st_mode) == 0o600
        assert key["url"] == server.url and key["pid"] == server.process.pid
        body = {"argv": ["sql", "SELECT 41 + 1"], "cwd": str(tmp_path)}
        status, answer = _post(server.url, body, {"Authorization": f"Bearer {key['key']}"})
        assert status == 200 and answer["lines"][0] == json.dumps({"stdout": "42\n"}).replace(" ", "") \
            and answer["lines"][-1] == '{"exit":0}'
        for headers in ({}, {"Authorization": "Bearer " + "x" * 43},
                        {"Authorization": f"Bearer {_key(tmp_path / 'other')['key']}"},  # another folder's
                        {"Authorization": key["key"]}):
            status, answer = _post(server.url, body, headers)
            assert status == 401 and answer["error"]["code"] == "bad_local_key", headers
        behind_proxy = {"Authorization": f"Bearer {key['key']}", "X-Forwarded-For": "203.0.113.9"}
        status, answer = _post(server.url, body, behind_proxy)
        assert status == 403 and answer["error"]["code"] == "not_local"
        for bad in ({"argv": "sql"}, {"argv": [], "cwd": "/"}, {"argv": ["sql", "SELECT 1"], "cwd": "rel"},
                    {**body, "extra": 1}, {"argv": ["serve"], "cwd": "/"}):
            status, answer = _post(server.url, bad, {"Authorization": f"Bearer {key['key']}"})
            if bad.get("argv") == ["serve"]:  # never run inside the server: refused as the command's error
                assert status == 200 and "does not run through a server" in "".join(answer["lines"])
                assert answer["lines"][-1] == '{"exit":2}'
            else:
                assert status == 400 and answer["error"]["code"] == "bad_request", bad

        # A key file that names this server but holds the other folder's key gets a clear refusal
        forged = {**_key(tmp_path / "other"), "url": server.url}
        (tmp_path / "other" / "cli.key").write_text(json.dumps(forged))
        _clean_error(odnos(other, "sql", "SELECT 1"), "refused the command: send the key from this server")
        assert other_server.process.poll() is None
    assert not (tmp_path / "one" / "cli.key").exists()  # removed at a clean stop
    with OdnosServer(one):
        assert _key(tmp_path / "one")["key"] != key["key"]  # a new key at each start


def test_a_command_whose_shell_has_other_mail_settings_than_the_server_is_refused(twins, smtp) -> None:
    """A forwarded command runs with the server's settings: a shell that sets ODNOS_SMTP_URL (or
    ODNOS_MAIL_FROM) otherwise is told so, and nothing runs; the same settings run as usual."""
    served, _, server = twins
    elsewhere = {**served, "ODNOS_SMTP_URL": "smtp://mail.example.net:2525",
                 "ODNOS_MAIL_FROM": "x@example.net"}
    _clean_error(odnos(elsewhere, "sql", "SELECT 1"),
                 "ODNOS_SMTP_URL, ODNOS_MAIL_FROM here differ from the server's")
    same = odnos(served, "sql", "SELECT 1")
    assert (same.returncode, same.stdout) == (0, "1\n"), same.stderr
    assert server.process.poll() is None


def test_status_says_what_runs_and_says_not_running_after(tmp_path, smtp) -> None:
    env = _environment(tmp_path / "data", smtp)
    stopped = odnos(env, "status")
    data = tmp_path / "data"
    assert stopped.returncode == 1 and stopped.stdout.startswith(f"odnos is not running on {data}")
    with OdnosServer(env) as server:
        shown = odnos(env, "status")
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[0] == f"odnos serve is running on {tmp_path / 'data'}"
        worker = _key(tmp_path / "data")["worker"]
        assert lines[1].startswith(f"main process: pid {server.process.pid} ")
        assert lines[1].endswith(f"worker pid {worker}")
        assert f"url: {server.url}" in lines and f"store: chdb, embedded in {data / 'clickhouse'}" in lines
        assert any(line.startswith("queue: 0 rows waiting (0 bytes), ok;") for line in lines)
        assert "last rule error: none" in lines and "dead-letter rows: 0" in lines
        assert "commands running in it now: none" in lines
    after = odnos(env, "status")
    assert after.returncode == 1 and "not running" in after.stdout


def test_ctrl_c_on_the_client_stops_the_command_in_the_server(twins, tmp_path) -> None:
    served, _stopped, server = twins
    rows = 300_000
    big = tmp_path / "big.csv"
    big.write_text("email\n" + "".join(f"p{i}@big.example.com\n" for i in range(rows)))
    count = "SELECT count() FROM contacts FINAL WHERE has(tags, 'big')"

    def imported() -> int:
        done = odnos(served, "sql", count)
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    client = subprocess.Popen([*ODNOS, "contacts", "import", str(big), "--tag", "big"], env=served,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while imported() == 0:  # the first batch landed: the command is under way in the server
        assert client.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    seen = odnos(served, "status").stdout.splitlines()  # a second terminal sees the job the first started
    running = seen[seen.index("commands running in it now:") + 1]
    assert running.startswith(f"  odnos contacts import {big} --tag big  (since "), seen
    client.send_signal(signal.SIGINT)
    out, err = client.communicate(timeout=30)
    assert client.returncode == 130, (out, err)
    time.sleep(2)  # the server notices at its next heartbeat
    stopped_at = imported()
    time.sleep(3)
    assert imported() == stopped_at < rows  # nothing more landed: it stopped there
    assert any("went away: interrupting the command" in line for line in server.output)
    assert odnos(served, "sql", "SELECT 1").stdout == "1\n"  # and the server still takes commands
    assert os.kill(server.process.pid, 0) is None


def test_a_key_left_by_a_killed_server_is_stale_and_commands_run_on_their_own(tmp_path, smtp) -> None:
    env = _environment(tmp_path / "data", smtp)
    server = OdnosServer(env).start()
    assert odnos(env, "sql", "SELECT 'through the server'").stdout == "through the server\n"
    server.kill9()
    assert (tmp_path / "data" / "cli.key").exists()  # no clean stop: the file stays behind
    alone = odnos(env, "sql", "SELECT 'on its own'")
    assert (alone.returncode, alone.stdout, alone.stderr) == (0, "on its own\n", "")
    assert odnos(env, "status").returncode == 1
    # The folder held by another process than the one the key names: refused as busy, naming it
    holder = subprocess.Popen([*ODNOS[:1], "-c", HOLD_LOCK, str(tmp_path / "data" / "clickhouse.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        busy = odnos(env, "sql", "SELECT 1")
        _clean_error(busy, f"is in use by pid {holder.pid} (odnos contacts import)")
    finally:
        holder.kill()
        holder.wait()


def test_killing_a_forwarded_send_midway_then_sending_again_mails_nobody_twice(tmp_path, smtp) -> None:
    env = _environment(tmp_path / "data", smtp)
    people = [f"p{i}@bulk.example.com" for i in range(1500)]
    (tmp_path / "bulk.csv").write_text("email\n" + "".join(f"{email}\n" for email in people))
    html = tmp_path / "hello.html"
    html.write_text("<p>Hello</p>")
    send = ("send", "--template", "hello", "--tag", "bulk", "--name", "bulk")

    def received() -> list[str]:
        return [rcpt for m in smtp.messages for rcpt in m.rcpt_tos if rcpt.endswith("@bulk.example.com")]

    with OdnosServer(env) as server:
        assert odnos(env, "contacts", "import", str(tmp_path / "bulk.csv"), "--tag", "bulk").returncode == 0
        assert odnos(env, "templates", "add", "hello", "--subject", "Hi", "--html", str(html)).returncode == 0
        client = subprocess.Popen([*ODNOS, *send], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        deadline = time.monotonic() + 120
        while len(received()) < 50:
            assert client.poll() is None and time.monotonic() < deadline, client.communicate()
            time.sleep(0.05)
        client.send_signal(signal.SIGINT)
        client.communicate(timeout=30)
        assert client.returncode == 130
        time.sleep(2)
        interrupted_at = len(received())
        assert 50 <= interrupted_at < len(people)  # it stopped midway, in the server
        again = odnos(env, *send)
        assert again.returncode == 0, (again.stdout, again.stderr)
        assert any("went away: interrupting the command" in line for line in server.output)
    got = received()
    assert len(got) == len(set(got)), "mailed twice"
    # A gentle stop, as the first Ctrl+C is locally: the message on the wire finished and was recorded,
    # the claimed rest deferred, so nothing is left "maybe mailed" and everyone got the message once
    with sqlite3.connect(tmp_path / "data" / "odnos.sqlite3") as db:
        pending = db.execute("SELECT count(*) FROM send_ledger WHERE status = 'pending'").fetchone()[0]
    assert (pending, sorted(got)) == (0, sorted(people)), again.stdout
