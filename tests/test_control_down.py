"""The control database (PostgreSQL) down under load: the collector goes on from what it cached.

Through real processes: `odnos collector` (granian, two workers) on the real ClickHouse server,
with a PostgreSQL server of this test's own as the control database. While beacons for a known
site stream in (with a visitor id, cookieless, and cookieless with a client time of yesterday,
whose day-before salt no worker has cached yet), PostgreSQL is first frozen (SIGSTOP: connections
hang, the worst case, as on a network partition) and then stopped (connections refused), for
longer than the site cache's lifetime. Every beacon must still be answered 202 within a couple of
seconds, CORS preflights and tracked-link hand-offs must still find the site, and every event
must land once. After PostgreSQL comes back, a site added then is accepted within seconds.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from clickhouse_driver import Client

from tests.fixtures.postgres import (
    _SERVER_SETTINGS,
    PostgresServer,
    _binaries,
    _run_as,
    _wait_until_ready,
    start_postgres,
    stop_postgres,
)
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tracker.tokens import TokenCodec

pytestmark = [pytest.mark.server, pytest.mark.timeout(240)]

DOMAIN = "shop.example.com"
KEY = "control-down-key-" + "k" * 20
SITE_CACHE_TTL = 30  # tracker.collect.sites.SiteCache's default: the outage must outlast it
MAX_SECONDS = 2.0  # no request may wait on the control database (its connect timeout is 10 s)
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
]
KINDS = ("visitor", "cookieless", "yesterday", "preflight", "click")


# -- PostgreSQL that can be frozen, stopped and started again ----------------------------------------


def _pg_processes(server: PostgresServer) -> list[int]:
    """The postmaster and every process it forked (backends, checkpointer, ...)."""
    found = [server.process.pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == server.process.pid:
                found.append(int(entry))
    return found


def freeze(server: PostgresServer, frozen: bool) -> None:
    for pid in _pg_processes(server):
        os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)


def stop(server: PostgresServer) -> None:
    """Immediate shutdown (as a crash would): sessions are cut, new connections refused.

    A fast shutdown can wait a minute for a backend that was forked, after the thaw, for a
    connection attempt its client gave up on during the freeze.
    """
    freeze(server, False)  # again: a process forked while the others were stopped may have missed it
    server.process.send_signal(signal.SIGQUIT)
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        ps = subprocess.run(["ps", "-o", "pid,ppid,stat,wchan:30,args", "-u", "postgres"],
                            capture_output=True, text=True).stdout
        raise AssertionError(ps + (server.root / "postgres.log").read_text()[-3000:]) from None


def restart(server: PostgresServer) -> None:
    """The same data folder on the same port, as after an operator restarts the service."""
    settings = [arg for name, value in _SERVER_SETTINGS.items() for arg in ("-c", f"{name}={value}")]
    log = server.root / "postgres.log"
    with open(log, "ab") as log_file:
        server.process = subprocess.Popen(
            [_binaries() / "postgres", "-D", server.root / "data", "-p", str(server.port), "-k", server.root,
             *settings], stdout=log_file, stderr=subprocess.STDOUT, cwd=server.root, **_run_as())
    _wait_until_ready(server, log)


@pytest.fixture
def control_pg() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    if server.process.poll() is None:
        freeze(server, False)
    stop_postgres(server)


# -- load --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    n: int
    status: int | None
    seconds: float
    at: float
    location: str = ""
    cors: str = ""


class Sender(threading.Thread):
    """Sends a mix of requests for ``site`` over one keep-alive connection, each timed."""

    def __init__(self, port: int, site: str, first: int, clicks: list[str], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.site, self.n, self.clicks, self.stop = port, site, first, clicks, stop
        self.outcomes: list[Outcome] = []

    def request(self) -> tuple[str, str, bytes | None, dict[str, str]]:
        kind = KINDS[self.n % len(KINDS)]
        headers = {"User-Agent": AGENTS[self.n % len(AGENTS)], "Origin": f"https://{DOMAIN}"}
        if kind == "preflight":
            return kind, "OPTIONS", None, {**headers, "Access-Control-Request-Method": "POST"}
        if kind == "click":
            return kind, "GET", None, {**headers, "User-Agent": AGENTS[0]}
        event = {"site": self.site, "name": "pageview", "url": f"https://{DOMAIN}/p/{self.n % 7}",
                 "props": {"n": str(self.n)}}
        if kind == "visitor":
            event["visitor"] = f"v{self.n % 11}"
        elif kind == "yesterday":  # its second candidate needs the salt of the day before yesterday
            event["ts"] = int((time.time() - 86_400 + 120) * 1000)
        return kind, "POST", json.dumps(event).encode(), {**headers, "Content-Type": "text/plain"}

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            kind, method, body, headers = self.request()
            path = f"/c/{self.clicks[self.n % len(self.clicks)]}" if kind == "click" else "/e"
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            started = time.monotonic()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                self.outcomes.append(Outcome(kind, self.n, response.status, time.monotonic() - started,
                                             started, response.getheader("Location") or "",
                                             response.getheader("Access-Control-Allow-Origin") or ""))
            except (OSError, http.client.HTTPException):
                self.outcomes.append(Outcome(kind, self.n, None, time.monotonic() - started, started))
                conn.close()
                conn = None
            self.n += 1
            time.sleep(0.03)
        if conn is not None:
            conn.close()


def post_event(port: int, site: str, domain: str = DOMAIN,
               conn: http.client.HTTPConnection | None = None) -> tuple[int, float]:
    """POST one cookieless pageview (on ``conn``, else a new connection); (status, seconds taken)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    started = time.monotonic()
    body = json.dumps({"site": site, "name": "pageview", "url": f"https://{domain}/"})
    conn.request("POST", "/e", body=body, headers={"Content-Type": "text/plain", "User-Agent": AGENTS[1]})
    response = conn.getresponse()
    response.read()
    if own:
        conn.close()
    return response.status, time.monotonic() - started


def warm_every_worker(port: int, site: str, workers: int) -> None:
    """Have every worker load the sites and today's salts, as a worker that served traffic has.

    Connections are spread over the workers; /healthz on a connection says which one holds it.
    """
    warmed: set[int] = set()
    deadline = time.monotonic() + 30
    while len(warmed) < workers and time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        conn.request("GET", "/healthz")
        worker = json.loads(conn.getresponse().read())["worker"]
        if worker not in warmed:
            assert post_event(port, site, conn=conn)[0] == 202
            warmed.add(worker)
        conn.close()
    assert len(warmed) == workers, f"only workers {warmed} answered"


def landed_markers(clickhouse_server, database: str) -> collections.Counter:
    client = Client(host="127.0.0.1", port=clickhouse_server.tcp_port, connect_timeout=2)
    try:
        rows = client.execute("SELECT props.value[indexOf(props.key, 'n')], visitor_id "
                              f"FROM {database}.events WHERE name = 'pageview'")
    finally:
        client.disconnect()
    return collections.Counter(n for n, visitor in rows if n and visitor)


# -- the test ------------------------------------------------------------------------------------


def test_control_database_down_keeps_accepting_beacons(tmp_path: Path, clickhouse_server, control_pg) -> None:
    database = "ctl_down_" + uuid.uuid4().hex[:8]
    env = odnos_env(tmp_path / "data", ODNOS_DATABASE_URL=control_pg.url(), ODNOS_SECRET_KEYS=KEY,
                    ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for(database), ODNOS_BATCH_INTERVAL="0.2",
                    ODNOS_LOG_LEVEL="WARNING")
    added = run_odnos("site", "add", "Shop", "--domain", DOMAIN, env=env)
    assert added.returncode == 0, added.stdout + added.stderr
    site = added.stdout.strip().splitlines()[-1]
    codec = TokenCodec([KEY], clock=lambda: time.time() - 3600)  # signed an hour ago: not a scanner
    clicks = [codec.click(f"c{k}", "camp.1", "1", f"https://{DOMAIN}/offer?k={k}") for k in range(5)]

    with OdnosServer(env, command="collector", extra_args=("--workers", "2")) as server:
        warm_every_worker(server.port, site, 2)
        stop_sending = threading.Event()
        senders = [Sender(server.port, site, 1_000_000 * (k + 1), clicks, stop_sending) for k in range(3)]
        started = time.monotonic()
        for sender in senders:
            sender.start()
        time.sleep(4)

        freeze(control_pg, True)  # connections hang: pooled ones forever, new ones until connect_timeout
        down_at = time.monotonic()
        time.sleep(2)
        junk = [post_event(server.port, "s_nosuchsite") for _ in range(2)]
        time.sleep(6)
        stop(control_pg)  # thawed and stopped: now refused at once
        time.sleep(max(4.0, started + SITE_CACHE_TTL + 8 - time.monotonic()))  # past the cache's lifetime
        junk += [post_event(server.port, "s_nosuchsite") for _ in range(2)]
        time.sleep(2)
        up_at = time.monotonic()
        restart(control_pg)

        added = run_odnos("site", "add", "Later", "--domain", "later.example.com", env=env)
        assert added.returncode == 0, added.stdout + added.stderr
        later = added.stdout.strip().splitlines()[-1]
        deadline, answers = time.monotonic() + 20, []
        while time.monotonic() < deadline:
            answers.append(post_event(server.port, later, "later.example.com"))
            if answers[-1][0] == 202:
                break
            time.sleep(0.5)
        stop_sending.set()
        for sender in senders:
            sender.join(30)
        log = "".join(server.output)

    outcomes = [o for s in senders for o in s.outcomes]
    during = [o for o in outcomes if down_at < o.at < up_at]
    by_kind = collections.Counter(o.kind for o in during)
    assert all(by_kind[kind] > 20 for kind in KINDS), f"too few requests during the outage: {by_kind}"

    slow = [o for o in outcomes if o.seconds > MAX_SECONDS or o.status is None]
    assert not slow, f"{len(slow)} requests waited on the control database, e.g. {slow[:5]}"
    expected = {"visitor": 202, "cookieless": 202, "yesterday": 202, "preflight": 204, "click": 302}
    wrong = [o for o in outcomes if o.status != expected[o.kind]]
    kinds = collections.Counter((o.kind, o.status) for o in wrong)
    assert not wrong, f"{len(wrong)} wrong answers: {kinds}, e.g. {wrong[:3]}"
    assert all(o.cors == f"https://{DOMAIN}" for o in outcomes if o.kind in ("preflight", "visitor")), (
        "CORS stopped allowing the site's origin while the control database was down")
    lost = [o for o in outcomes if o.kind == "click" and "_odn" not in parse_qs(urlsplit(o.location).query)]
    assert not lost, f"{len(lost)} tracked links lost their hand-off, e.g. {lost[0]}"
    assert all(status == 400 and seconds < MAX_SECONDS for status, seconds in junk), (
        f"unknown sites during the outage must be refused quickly: {junk}")

    assert answers and answers[-1][0] == 202, f"a site added after the outage was not accepted: {answers}"
    assert all(seconds < MAX_SECONDS for _, seconds in answers), answers

    acked = {str(o.n) for o in outcomes if o.status == 202}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        counts = landed_markers(clickhouse_server, database)
        if acked <= set(counts):
            break
        time.sleep(0.5)
    time.sleep(1)
    counts = landed_markers(clickhouse_server, database)
    missing = acked - set(counts)
    assert not missing, f"{len(missing)} of {len(acked)} accepted events never landed (with a visitor id)"
    assert all(counts[n] == 1 for n in acked), "events landed twice"

    outage_lines = [line for line in log.splitlines() if "control database" in line and "WARNING" in line]
    assert outage_lines, "the outage was not logged"
    assert len(outage_lines) <= 12, f"the outage was logged per request:\n{outage_lines[:20]}"
