"""`odnos contacts import|show|list|erase` as a user runs them: real processes, real stores, both engines.

The CLI runs as a child process on a data folder of its own. What it left is read back through
`odnos sql` and, where rows must be written or every table scanned, through a small child Python
that opens the same folder (chDB lets one process hold it at a time).
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.fixtures.processes import odnos_env, run_odnos
from tracker.contacts import contact_id_for

KEY = "import-test-key-" + "k" * 20

# Runs in a child on the CLI's data folder: insert rows (stdin: {"table": [rows]}) or scan every
# table's text columns for needles (stdin: {"scan": [needles]}) and print what was found.
CHILD = r"""
import json, sys
from tracker.settings import load_settings
from tracker.store import open_store
job = json.load(sys.stdin)
store = open_store(load_settings())
if "scan" in job:
    found = {}
    tables = store.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                         "AND engine NOT LIKE '%%View'").rows
    for (table,) in tables:
        columns = store.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                              "AND table = %(t)s", {"t": table}).rows
        for column, kind in columns:
            if kind == "String":
                test = f"position(`{column}`, %(n)s) > 0"
            elif kind == "Array(String)":
                test = f"arrayExists(v -> position(v, %(n)s) > 0, `{column}`)"
            else:
                continue
            for needle in job["scan"]:
                n = store.query(f"SELECT count() FROM `{table}` WHERE {test}", {"n": needle}).scalar()
                if n:
                    found[f"{table}.{column}:{needle}"] = n
    print(json.dumps(found))
else:
    for table, rows in job.items():
        store.insert(table, rows)
store.close()
"""


@pytest.fixture(params=["chdb", "server"])
def env(request, tmp_path: Path) -> dict[str, str]:
    extra = {"ODNOS_SECRET_KEYS": KEY}
    if request.param == "server":
        server = request.getfixturevalue("clickhouse_server")
        database = "crm_" + tmp_path.name[-8:].replace("-", "_").lower()
        extra["ODNOS_CLICKHOUSE_URL"] = server.url_for(database)
    made = odnos_env(tmp_path / "data", **extra)
    assert run_odnos("migrate", env=made).returncode == 0
    return made


@pytest.fixture
def chdb_env(tmp_path: Path) -> dict[str, str]:
    return odnos_env(tmp_path / "data", ODNOS_SECRET_KEYS=KEY)


def child(env: dict[str, str], job: dict) -> str:
    result = subprocess.run([sys.executable, "-c", CHILD], env=env, input=json.dumps(job), text=True,
                            capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def sql(env: dict[str, str], query: str) -> list[list[str]]:
    result = run_odnos("sql", query, env=env)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def clean_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("odnos: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_import_100k_rows_well_under_a_minute(env: dict[str, str], tmp_path: Path) -> None:
    rows = [["email", "first_name", "last_name", "status", "plan", "city"]]
    expected = {}
    for n in range(100_000):
        status = "unsubscribed" if n % 50 == 0 else ""
        email = f"person{n}@example.com"
        rows.append([email.upper() if n % 7 == 0 else email, f"First{n}", f"Last{n % 977}", status,
                     ("free", "pro")[n % 3 == 0], f"City{n % 13}"])
        expected[email] = status or "subscribed"
    # A later row of the same address updates the earlier one (rows of one address in one batch of
    # 10,000 merge before anything is written, so a second import finds them unchanged).
    rows.insert(9, ["person5@example.com", "Again", "", "", "gold", ""])
    rows.append(["broken-address", "X", "Y", "", "", ""])
    path = write_csv(tmp_path / "big.csv", rows)
    started = time.perf_counter()
    result = run_odnos("contacts", "import", str(path), "--tag", "bulk", env=env)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == ("line 100003: rejected: 'broken-address' is not a valid email address "
                        "(expected something like ann@example.com).")
    assert lines[-1] == (f"{path}: 100,002 rows: taken 100,001 (100,000 new, 1 updated, 0 unchanged), "
                         "rejected 1")
    print(f"\nimport of 100,002 rows took {elapsed:.1f} s (the whole command)")
    assert elapsed < 60
    counts = sql(env, "SELECT status, count(), countIf(has(tags, 'bulk')) FROM contacts FINAL "
                      "GROUP BY status ORDER BY status")
    unsubscribed = sum(1 for s in expected.values() if s == "unsubscribed")
    assert counts == [["subscribed", str(100_000 - unsubscribed), str(100_000 - unsubscribed)],
                      ["unsubscribed", str(unsubscribed), str(unsubscribed)]]
    [[first, last, plan, city]] = sql(env, "SELECT first_name, last_name, attrs.value[indexOf(attrs.key, "
                                           "'plan')], attrs.value[indexOf(attrs.key, 'city')] FROM "
                                           "contacts FINAL WHERE email = 'person5@example.com'")
    assert (first, last, plan, city) == ("Again", "Last5", "gold", "City5")
    # The same file again: idempotent, nothing new, nothing written.
    versions = sql(env, "SELECT count() FROM contacts")
    started = time.perf_counter()
    again = run_odnos("contacts", "import", str(path), "--tag", "bulk", env=env)
    print(f"the same file again took {time.perf_counter() - started:.1f} s")
    assert again.stdout.strip().splitlines()[-1] == (
        f"{path}: 100,002 rows: taken 100,001 (0 new, 0 updated, 100,001 unchanged), rejected 1")
    assert sql(env, "SELECT count() FROM contacts") == versions


def test_rejected_rows_name_their_line(chdb_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "\ufeffEmail,First_Name,status,note\n"          # 1: BOM, header names in any case
        "ann@example.com,Ann,,\"two\nlines\"\n"        # 2-3: a quoted newline is one row
        "\n"                                            # 4: blank, skipped
        "bob@example.com,Bob\n"                         # 5: too few fields
        "cy@example.com,Cy,maybe,\n"                    # 6: unknown status
        "dee@example.com,\"Dee\"x,,\n"                  # 7: malformed quoting
        "not-an-address,Eve,,\n"                        # 8: bad address
        "fay@example.com,Fay,Bounced,vip\n",            # 9: status in any case
        encoding="utf-8")
    result = run_odnos("contacts", "import", str(path), env=chdb_env)
    assert result.returncode == 0, result.stderr
    out = result.stdout.strip().splitlines()
    assert out[0] == "line 5: rejected: has 2 fields, the header has 4"
    assert out[1].startswith("line 6: rejected: status 'maybe' is not one of subscribed, unsubscribed")
    assert out[2].startswith("line 7: rejected: malformed CSV")
    assert out[3].startswith("line 8: rejected: 'not-an-address' is not a valid email address")
    assert out[4] == f"{path}: 6 rows: taken 2 (2 new, 0 updated, 0 unchanged), rejected 4"
    listed = run_odnos("contacts", "list", env=chdb_env).stdout.splitlines()
    assert sorted(line.split("\t")[1:5] for line in listed) == [
        ["ann@example.com", "Ann", "", "subscribed"], ["fay@example.com", "Fay", "", "bounced"]]
    shown = run_odnos("contacts", "show", "ANN@example.com", env=chdb_env)
    assert shown.returncode == 0 and "  note: two\nlines" in shown.stdout


def test_unreadable_files_exit_2_and_import_nothing(chdb_env: dict[str, str], tmp_path: Path) -> None:
    clean_error(run_odnos("contacts", "import", str(tmp_path / "nope.csv"), env=chdb_env), "no such file")
    broken = tmp_path / "latin1.csv"
    broken.write_bytes(b"email,city\nann@example.com,Paris\nbob@example.com,M\xfcnchen\n")
    line = clean_error(run_odnos("contacts", "import", str(broken), env=chdb_env), "line 3, byte 18",
                       "0xfc", "UTF-8")
    assert "byte 51 of the file" in line
    no_email = write_csv(tmp_path / "no_email.csv", [["mail", "name"], ["ann@example.com", "Ann"]])
    clean_error(run_odnos("contacts", "import", str(no_email), env=chdb_env), "no email column", "mail, name")
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n")
    clean_error(run_odnos("contacts", "import", str(empty), env=chdb_env), "is empty")
    twice = write_csv(tmp_path / "twice.csv", [["email", "Email"], ["a@example.com", "b@example.com"]])
    clean_error(run_odnos("contacts", "import", str(twice), env=chdb_env), "'email' twice")
    clean_error(run_odnos("contacts", "import", str(tmp_path), env=chdb_env), "is a folder")
    clean_error(run_odnos("contacts", "show", "ann@example.com", env=chdb_env), "no contact ann@example.com")
    assert sql(chdb_env, "SELECT count() FROM contacts") == [["0"]]


def test_a_1gb_line_is_rejected_without_being_loaded(chdb_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.write(b"email,first_name\nann@example.com,Ann\nbob@example.com,")
        handle.seek(1 << 30, 1)  # a hole: a 1 GiB field of NULs on line 3, no disk used
        handle.write(b"\ncy@example.com,Cy\n")
    measure = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, "
               "text=True); print(r.returncode); print(r.stdout, end=''); print(r.stderr, end='', "
               "file=sys.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "tracker", "contacts",
                             "import", str(path)], env=chdb_env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "0", result.stderr
    assert lines[1] == "line 3: rejected: line 3 is longer than 1,048,576 bytes"
    assert lines[2] == f"{path}: 3 rows: taken 2 (2 new, 0 updated, 0 unchanged), rejected 1"
    peak_mb = int(lines[3]) / 1024
    print(f"\n1 GiB line: {elapsed:.1f} s, peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 900  # chDB alone takes ~400 MB; the line would add 1,024
    listed = run_odnos("contacts", "list", env=chdb_env).stdout
    assert "ann@example.com" in listed and "cy@example.com" in listed and "bob@" not in listed


def test_erase_leaves_no_trace_and_a_reimport_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    ann, other = "ann.erase@example.com", "keep@example.com"
    ann_id, other_id = contact_id_for(ann), contact_id_for(other)
    people = write_csv(tmp_path / "people.csv", [["email", "first_name", "city"], [ann, "Ann", "Paris"],
                                                 [other, "Kay", "Rome"]])
    assert run_odnos("contacts", "import", str(people), env=env).returncode == 0
    now = int(time.time())

    def event(name: str, ts: int, **fields) -> dict:
        base = {"event_id": f"00000000-0000-4000-8000-{len(events):012d}", "name": name, "ts": ts,
                "received_at": ts}
        return {**base, **fields}

    events: list[dict] = []
    for name in ("email_sent", "email_open", "email_click"):
        events.append(event(name, now - 900, contact_id=ann_id, campaign_id="1", message_id="1.a"))
    events.append(event("pageview", now - 800, site_id="s_x", visitor_id="v-ann", contact_id=ann_id,
                        pathname="/landing", source="beacon"))
    events.append(event("pageview", now - 700, site_id="s_x", visitor_id="v-ann", pathname="/later"))
    events.append(event("identify", now - 600, site_id="s_x", visitor_id="v-ann-2", contact_id=ann_id,
                        source="beacon", **{"props.key": ["email"], "props.value": [ann]}))
    events.append(event("pageview", now - 500, site_id="s_x", visitor_id="v-ann-2", pathname="/again"))
    events.append(event("pageview", now - 400, site_id="s_x", visitor_id="v-kay", contact_id=other_id,
                        pathname="/kay", source="beacon"))
    child(env, {"events": events})
    engine = create_engine(f"sqlite:///{Path(env['ODNOS_DATA_DIR']) / 'odnos.sqlite3'}")
    with engine.begin() as db:
        db.execute(text("INSERT INTO campaigns (name, subject, status, created_at) "
                        "VALUES ('c', 's', 'sent', '2025-01-01 00:00:00')"))
        for cid, error in ((ann_id, f"550 5.1.1 <{ann.upper()}>: no such user"), (other_id, None)):
            db.execute(text("INSERT INTO send_ledger (campaign_id, contact_id, trigger_key, status, "
                            "created_at, error) VALUES (1, :c, 'once', 'failed', '2025-01-01 00:00:00', "
                            ":e)"), {"c": cid, "e": error})
        db.execute(text("INSERT INTO suppressions (contact_id, list_id, how, created_at) VALUES "
                        "(:c, 'news', 'page', '2025-01-01 00:00:00')"), {"c": ann_id})
    needles = [ann, ann_id, "v-ann"]
    before = json.loads(child(env, {"scan": needles}))
    assert {"events.contact_id:" + ann_id, "contacts.email:" + ann, "identities.visitor_id:v-ann",
            "events.props.value:" + ann} <= before.keys()

    result = run_odnos("contacts", "erase", ann, env=env)
    clean_error(result, "--yes")
    result = run_odnos("contacts", "erase", ann.upper(), "--yes", env=env)
    assert result.returncode == 0, result.stderr
    assert "events: 7 rows deleted" in result.stdout
    assert "send ledger: 1 rows kept without the address" in result.stdout

    assert json.loads(child(env, {"scan": needles})) == {}
    with engine.connect() as db:
        for table in inspect(engine).get_table_names():
            for column in inspect(engine).get_columns(table):
                cell = f'lower(CAST("{column["name"]}" AS TEXT))'
                for needle in needles:
                    query = f'SELECT count(*) FROM "{table}" WHERE {cell} LIKE :n'
                    hits = db.execute(text(query), {"n": f"%{needle.lower()}%"}).scalar()
                    assert hits == 0, (table, column["name"], needle)
        ledger = db.execute(text("SELECT contact_id, error FROM send_ledger ORDER BY id")).all()
        hashes = db.execute(text("SELECT contact_id FROM suppressions WHERE how = 'erased'")).scalars().all()
    assert len(hashes) == 1 and re.fullmatch(r"[0-9a-f]{64}", hashes[0])
    assert ledger == [(hashes[0], "550 5.1.1 <[erased]>: no such user"), (other_id, None)]
    # The other contact and its visit are untouched.
    assert sql(env, f"SELECT count() FROM events WHERE contact_id = '{other_id}'") == [["1"]]
    assert run_odnos("contacts", "show", other, env=env).returncode == 0

    again = run_odnos("contacts", "import", str(people), env=env)
    assert again.returncode == 0
    assert again.stdout.splitlines()[0] == (
        "line 2: rejected: the address was erased at the person's request; it is not stored or mailed again")
    assert sql(env, f"SELECT count() FROM contacts WHERE contact_id = '{ann_id}'") == [["0"]]
    clean_error(run_odnos("contacts", "show", ann, env=env), "no contact")
