"""What the collector promises under faults, through real processes and real HTTP.

- ClickHouse stopped under load: every beacon is still answered 2xx, and once ClickHouse is back
  every acknowledged event is in ``events`` exactly once.
- `kill -9` of the collector (granian parent and workers) under load: after a restart on the same
  data folder every acknowledged event lands exactly once.
- The spool's disk budget used up while ClickHouse is down: 503 ``spool_full`` (JSON), never another
  5xx; when ClickHouse returns the accepted events land and new ones are accepted again.

Each test starts its own ClickHouse server (it is stopped and restarted, so not the session's) and
its own collector. Events carry a unique marker ``props.n``, since event ids are made server-side;
an event "acknowledged" is one whose request got a 2xx.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clickhouse_driver import Client

from tests.fixtures.clickhouse import ClickHouseServer
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos

pytestmark = [pytest.mark.server, pytest.mark.timeout(150)]

DATABASE = "faults"
DOMAIN = "shop.example.com"
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
]
MARKER_COUNTS_SQL = (f"SELECT props.value[indexOf(props.key, 'n')] AS n, count() FROM {DATABASE}.events "
                     "GROUP BY n")


# -- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[ClickHouseServer]:
    """A ClickHouse server of this test's own, which the test may stop and start again."""
    server = ClickHouseServer(tmp_path / "clickhouse")
    server.start()
    yield server
    server.stop()


@dataclass
class Setup:
    env: dict[str, str]
    site: str
    data_dir: Path
    servers: list[OdnosServer] = field(default_factory=list)

    def start(self, workers: int) -> OdnosServer:
        server = OdnosServer(self.env, command="collector", extra_args=("--workers", str(workers)))
        self.servers.append(server)
        server.start()
        assert_workers(server, workers)
        return server


@pytest.fixture
def setup(tmp_path: Path, clickhouse: ClickHouseServer) -> Iterator[Setup]:
    def make(**extra: str) -> Setup:
        env = odnos_env(tmp_path / "data", ODNOS_CLICKHOUSE_URL=clickhouse.url_for(DATABASE),
                        ODNOS_LOG_LEVEL="WARNING", **extra)
        added = run_odnos("site", "add", "Shop", "--domain", DOMAIN, env=env)
        assert added.returncode == 0, added.stdout + added.stderr
        made.append(Setup(env, added.stdout.strip().splitlines()[-1], tmp_path / "data"))
        return made[-1]

    made: list[Setup] = []
    yield make  # type: ignore[misc]
    for s in made:
        for server in s.servers:
            server.stop()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry))
    return found


def assert_workers(server: OdnosServer, workers: int, timeout: float = 20) -> None:
    """The collector runs ``workers`` worker processes that each answer (a dead one is a failure)."""
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while len(_children(server.process.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # a worker that fails while building the app exits within this
    alive = _children(server.process.pid)
    assert len(alive) == workers, (f"{len(alive)} of {workers} collector workers run:\n"
                                   + "".join(server.output))


def event(site: str, n: int) -> bytes:
    return json.dumps({"site": site, "name": "pageview", "url": f"https://{DOMAIN}/p/{n % 50}",
                       "referrer": "https://www.google.com/", "props": {"n": str(n)}}).encode()


@dataclass
class Outcome:
    n: int
    status: int | None  # None: no answer (connection refused, reset, timed out)
    at: float
    body: bytes = b""


class Sender(threading.Thread):
    """Posts beacons (one event each, as sendBeacon does) over keep-alive connections at ``rate``/s,
    recording every answer; numbers its events ``first, first + 1, ...``."""

    def __init__(self, port: int, site: str, first: int, rate: float, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.site, self.first, self.rate, self.stop = port, site, first, rate, stop
        self.outcomes: list[Outcome] = []

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        n, started = self.first, time.monotonic()
        while not self.stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("POST", "/e", body=event(self.site, n), headers={
                    "Content-Type": "text/plain;charset=UTF-8", "Origin": f"https://{DOMAIN}",
                    "User-Agent": AGENTS[n % len(AGENTS)]})
                response = conn.getresponse()
                self.outcomes.append(Outcome(n, response.status, time.monotonic(), response.read()))
            except (OSError, http.client.HTTPException):
                self.outcomes.append(Outcome(n, None, time.monotonic()))
                conn.close()
                conn = None
                time.sleep(0.05)
            n += 1
            sent = n - self.first
            delay = started + sent / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if conn is not None:
            conn.close()


def stream(port: int, site: str, threads: int, rate: float, stop: threading.Event) -> list[Sender]:
    senders = [Sender(port, site, 1_000_000 * (k + 1), rate / threads, stop) for k in range(threads)]
    for s in senders:
        s.start()
    return senders


def finish(senders: list[Sender], stop: threading.Event) -> list[Outcome]:
    stop.set()
    for s in senders:
        s.join(30)
        assert not s.is_alive(), "a sender thread hangs"
    return [o for s in senders for o in s.outcomes]


def marker_counts(clickhouse: ClickHouseServer) -> dict[str, int]:
    client = Client(host="127.0.0.1", port=clickhouse.tcp_port, connect_timeout=2, send_receive_timeout=10)
    try:
        return {n: c for n, c in client.execute(MARKER_COUNTS_SQL)}
    finally:
        client.disconnect()


def wait_landed(clickhouse: ClickHouseServer, acked: set[int], timeout: float = 60) -> dict[str, int]:
    """Wait until every acknowledged marker is in ClickHouse (and a short while more, so that a
    duplicate still on its way shows); return the counts by marker."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            counts = marker_counts(clickhouse)
        except Exception:  # noqa: BLE001 - the server may still be starting
            time.sleep(0.5)
            continue
        if all(str(n) in counts for n in acked):
            time.sleep(1.5)  # > the writer's batch interval: late duplicates would land by now
            return marker_counts(clickhouse)
        time.sleep(0.3)
    return counts


def assert_exactly_once(counts: dict[str, int], acked: set[int]) -> None:
    missing = sorted(n for n in acked if str(n) not in counts)
    doubled = sorted((n, c) for n, c in counts.items() if c > 1)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events never landed: {missing[:20]}"
    assert not doubled, f"{len(doubled)} events landed more than once: {doubled[:20]}"


def healthz(server: OdnosServer) -> dict:
    """The ingestion counters of whichever worker answers."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        assert response.status == 200, response.status
        return json.loads(response.read())["ingestion"]
    finally:
        conn.close()


def describe(outcomes: list[Outcome]) -> str:
    return str(collections.Counter(o.status for o in outcomes))


# -- the tests -------------------------------------------------------------------------------------


def test_clickhouse_down_under_load_loses_nothing(setup, clickhouse: ClickHouseServer) -> None:
    s = setup(ODNOS_BATCH_INTERVAL="0.2")
    server = s.start(workers=2)
    stop = threading.Event()
    senders = stream(server.port, s.site, threads=3, rate=300, stop=stop)
    time.sleep(4)
    down_at = time.monotonic()
    clickhouse.stop()
    time.sleep(3)
    health = [healthz(server) for _ in range(6)]  # the workers answer for themselves while it is down
    time.sleep(max(0.0, down_at + 5 - time.monotonic()))
    up_at = time.monotonic()
    clickhouse.start()
    time.sleep(4)
    outcomes = finish(senders, stop)
    assert any(h["pending_bytes"] > 0 and h["failures"] > 0 for h in health), (
        f"no worker held events or saw failed inserts while ClickHouse was down: {health}")

    answered = [o for o in outcomes if o.status is not None]
    assert len(answered) == len(outcomes), f"requests went unanswered: {describe(outcomes)}"
    bad = [o for o in outcomes if not 200 <= o.status < 300]  # type: ignore[operator]
    assert not bad, f"non-2xx answers ({describe(outcomes)}), e.g. {bad[0].status} {bad[0].body[:200]!r}"
    during = [o for o in outcomes if down_at + 0.5 < o.at < up_at]
    assert len(during) > 300, f"only {len(during)} beacons were answered while ClickHouse was down"

    acked = {o.n for o in outcomes}
    counts = wait_landed(clickhouse, acked)
    assert_exactly_once(counts, acked)
    assert set(counts) <= {str(n) for n in acked}, "events landed that were never sent"


def test_kill9_under_load_every_acknowledged_event_lands_once(setup, clickhouse: ClickHouseServer) -> None:
    # Inserts every 2 s: at the kill, the spools hold events that are acknowledged but not inserted.
    s = setup(ODNOS_BATCH_INTERVAL="2")
    server = s.start(workers=2)
    stop = threading.Event()
    senders = stream(server.port, s.site, threads=3, rate=300, stop=stop)
    time.sleep(3.5)
    server.kill9()
    landed_before_restart = sum(marker_counts(clickhouse).values())
    time.sleep(0.5)
    outcomes = finish(senders, stop)

    acked = {o.n for o in outcomes if o.status is not None and 200 <= o.status < 300}
    refused = [o for o in outcomes if o.status is not None and not 200 <= o.status < 300]
    assert not refused, f"non-2xx answers before the kill: {describe(outcomes)}"
    assert len(acked) > 300, f"only {len(acked)} events were acknowledged before the kill"
    assert landed_before_restart < len(acked), "the spools were empty at the kill: the test proves nothing"

    s.start(workers=2)  # same data folder: each worker takes over a spool slot and replays it
    counts = wait_landed(clickhouse, acked)
    assert_exactly_once(counts, acked)
    # Requests cut by the kill (no answer) may or may not have landed, but at most once.
    sent = {o.n for o in outcomes}
    assert set(counts) <= {str(n) for n in sent}, "events landed that were never sent"


def test_full_spool_answers_503_then_recovers(setup, clickhouse: ClickHouseServer) -> None:
    # One worker, so every request meets the same spool; 64 KiB hold a few dozen events.
    s = setup(ODNOS_SPOOL_MAX_BYTES="64K", ODNOS_BATCH_INTERVAL="0.2")
    server = s.start(workers=1)
    clickhouse.stop()

    stop = threading.Event()
    sender = Sender(server.port, s.site, 1, rate=200, stop=stop)
    sender.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        recent = sender.outcomes[-20:]
        if len(recent) == 20 and all(o.status == 503 for o in recent):
            break
        time.sleep(0.1)
    outcomes = finish([sender], stop)

    statuses = collections.Counter(o.status for o in outcomes)
    assert set(statuses) <= {202, 503}, f"answers other than 202 and 503 with ClickHouse down: {statuses}"
    assert statuses[503] >= 20, f"the spool never filled: {statuses}"
    for o in outcomes:
        if o.status == 503:
            assert json.loads(o.body)["error"]["code"] == "spool_full", o.body
    acked = {o.n for o in outcomes if o.status == 202}
    assert 10 < len(acked) < 1000, f"{len(acked)} events accepted into a 64 KiB spool"
    first_full = next(i for i, o in enumerate(outcomes) if o.status == 503)
    assert all(o.status == 503 for o in outcomes[first_full:]), "a full spool took events before any insert"

    clickhouse.start()
    counts = wait_landed(clickhouse, acked)
    assert_exactly_once(counts, acked)

    # Once the spool has drained, beacons are accepted again (and land).
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    deadline, n, status = time.monotonic() + 30, 5_000_000, None
    while time.monotonic() < deadline:
        conn.request("POST", "/e", body=event(s.site, n), headers={"Content-Type": "text/plain"})
        response = conn.getresponse()
        response.read()
        status = response.status
        assert status in (202, 503), status
        if status == 202:
            break
        n += 1
        time.sleep(0.2)
    conn.close()
    assert status == 202, "the collector still refuses events after ClickHouse came back"
    counts = wait_landed(clickhouse, acked | {n})
    assert_exactly_once(counts, acked | {n})


def test_unsubscribe_with_a_full_spool_shows_the_page_and_its_event_lands_later(
        setup, clickhouse: ClickHouseServer) -> None:
    """The suppression is the authority, and its event is not lost when the spool cannot take it."""
    import uuid

    from tracker.tokens import TokenCodec

    key = "unsubscribe-faults-" + "k" * 20
    s = setup(ODNOS_SPOOL_MAX_BYTES="64K", ODNOS_BATCH_INTERVAL="0.2", ODNOS_SECRET_KEYS=key)
    server = s.start(workers=1)
    clickhouse.stop()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    status, n = 202, 0
    while status == 202 and n < 5000:  # fill the spool until beacons get 503
        conn.request("POST", "/e", body=event(s.site, n), headers={"Content-Type": "text/plain"})
        response = conn.getresponse()
        response.read()
        status, n = response.status, n + 1
    assert status == 503, f"the spool never filled ({n} beacons accepted)"

    codec = TokenCodec([key])
    page, one_click = f"c-page-{uuid.uuid4().hex[:8]}", f"c-click-{uuid.uuid4().hex[:8]}"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    conn.request("POST", f"/u/{codec.unsubscribe(page, 'news')}", body="confirm=yes", headers=form)
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200 and b'id="done"' in body, (response.status, body[:300])
    assert response.getheader("Content-Type").startswith("text/html")
    conn.request("POST", f"/u/{codec.unsubscribe(one_click)}", body="List-Unsubscribe=One-Click",
                 headers=form)
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200 and json.loads(body) == {"ok": True, "unsubscribed": True}, body[:300]
    # Asked again while the first event still waits: effective already, and no second event.
    conn.request("POST", f"/u/{codec.unsubscribe(page, 'news')}", body="confirm=yes", headers=form)
    response = conn.getresponse()
    assert response.status == 200 and b'id="done"' in response.read()
    conn.close()

    clickhouse.start()
    client = Client(host="127.0.0.1", port=clickhouse.tcp_port, connect_timeout=2, send_receive_timeout=10)
    sql = (f"SELECT contact_id, props.value[indexOf(props.key, 'list')], count() FROM {DATABASE}.events "
           "WHERE name = 'unsubscribe' GROUP BY contact_id, props.value[indexOf(props.key, 'list')]")
    deadline, rows = time.monotonic() + 60, []
    try:
        while time.monotonic() < deadline:
            try:
                rows = client.execute(sql)
            except Exception:  # noqa: BLE001 - the server may still be starting
                rows = []
            if len(rows) == 2:
                break
            time.sleep(0.5)
        time.sleep(3)  # a late duplicate would land by now
        rows = client.execute(sql)
    finally:
        client.disconnect()
    assert sorted(rows) == sorted([(page, "news", 1), (one_click, "", 1)]), rows


def test_an_unsubscribe_event_a_dead_worker_left_pending_lands_after_a_restart(
        setup, clickhouse: ClickHouseServer) -> None:
    """A worker killed between committing the suppression and queueing its event leaves the event in
    the suppression row; the next worker to start queues it (once)."""
    from tracker.control.consent import suppress
    from tracker.control.db import ControlPlane
    from tracker.events import event_row

    s = setup(ODNOS_BATCH_INTERVAL="0.2")
    control = ControlPlane(f"sqlite:///{s.data_dir / 'odnos.sqlite3'}")
    try:
        row = event_row("unsubscribe", time.time(), {"list": "news", "how": "page"}, source="unsubscribe",
                        contact_id="c-left-pending", campaign_id="news")
        assert suppress(control.sessions, "c-left-pending", "news", "page", row)
    finally:
        control.dispose()
    s.start(workers=2)  # both workers look; only one may queue it
    client = Client(host="127.0.0.1", port=clickhouse.tcp_port, connect_timeout=2, send_receive_timeout=10)
    sql = f"SELECT toString(event_id) FROM {DATABASE}.events WHERE name = 'unsubscribe'"
    deadline, ids = time.monotonic() + 40, []
    try:
        while time.monotonic() < deadline and not ids:
            ids = client.execute(sql)
            time.sleep(0.5)
        time.sleep(3)
        ids = client.execute(sql)
    finally:
        client.disconnect()
    assert ids == [(row["event_id"],)]
