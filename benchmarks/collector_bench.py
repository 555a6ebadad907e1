"""Collector benchmark, server mode: events/s accepted and landed in ClickHouse, latency, memory.

Everything runs here, on loopback, against a ClickHouse server this script starts in a temporary
folder (Debian's clickhouse-server, as the tests start it):

- baseline: a no-op WSGI app (``benchmarks/noop_app.py``) under granian with the collector's server
  settings and the same worker count, driven by the same load generators;
- ``odnos collector --workers W`` for each W of ``--workers``:
  (a) sustained throughput, closed-loop with wrk: single-event beacons (what the snippet sends:
      text/plain, Origin header) and batches of ``--batch`` events (what a site's server sends);
      "accepted" counts 2xx answers; "landed" is the rows ClickHouse gained, divided by the time
      from the first request until /healthz showed nothing pending and the count stopped moving;
  (b) latency at a fixed ``--rate`` events/s (single beacons), open-loop (``openloop.py``: requests
      leave on a fixed schedule and latency counts from the scheduled time);
  (c) memory: the collector's processes (granian parent + workers), sampled every 0.25 s under load:
      the sum of VmRSS (counts pages shared by the forked workers once per process) and of Pss;
  (d) CPU: what the collector's processes used, in cores and in microseconds per event; on a
      shared machine the per-event cost is the figure that other load disturbs least;
  (e) with ``--profile``: py-spy on one worker during the single-event run, as shares of GIL time.

The events are a realistic mix: 22 real user agents (20 browsers, 2 crawlers), 20,000 visitor
addresses (IPv4 and IPv6, in X-Forwarded-For from a trusted proxy on this host, as behind the TLS
proxy of a deployment), pages of the registered domain with and without UTM parameters, referrers
from search, social, email and direct, custom events with properties, engagement events; 60% carry
the snippet's first-party visitor and session ids, 40% are cookieless.

Needs ``wrk`` (``apt-get install wrk``) and ``clickhouse-server`` (``apt-get install
clickhouse-server``); ``--profile`` needs ``py-spy`` in the venv (``.venv/bin/pip install py-spy``).

    .venv/bin/python benchmarks/collector_bench.py [--seconds 8] [--workers 1,2] [--batch 20]
        [--rate 5000] [--connections 64] [--profile]

Budgets (issue 11, 2 cores), printed after the table for each worker count: single-event beacons
accepted and landed >= 1/3 of the no-op app's requests/s in the same run; p99 <= 25 ms at 5,000
events/s; <= 100 MB PSS per process under that load (RSS reported beside it).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import pickle
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clickhouse_driver import Client  # noqa: E402

from tests.fixtures.clickhouse import ClickHouseServer, free_port  # noqa: E402
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos  # noqa: E402
from tracker.cli.serve import REQUEST_THREADS  # noqa: E402

HOST = "127.0.0.1"
DOMAIN = "shop.example.com"
TICKS = os.sysconf("SC_CLK_TCK")

# -- realistic events ------------------------------------------------------------------------------

USER_AGENTS = [
    # desktop Chrome / Edge / Firefox / Safari / Opera on Windows, macOS, Linux, ChromeOS
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 "
    "Safari/537.36 Edg/125.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36 OPR/110.0.0.0",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 "
    "Safari/537.36",
    # phones and tablets
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0",
    "Mozilla/5.0 (Linux; Android 12; Pixel 6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Instagram 334.0.4.32.98",
    "Mozilla/5.0 (Linux; Android 11; M2101K6G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Mobile Safari/537.36 OPR/82.0.4227.78901",
    # crawlers that run JavaScript (flagged as bots, still collected)
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
]
UA_WEIGHTS = [12, 4, 4, 5, 4, 2, 2, 1, 1, 1, 14, 3, 3, 6, 5, 3, 2, 3, 2, 1, 1, 1]

PATHS = ["/", "/", "/", "/products", "/products/shoes", "/products/shoes/trail-runner-42",
         "/products/bags/weekender", "/products/jackets/rain-shell-m", "/sale", "/blog",
         "/blog/how-to-choose-running-shoes", "/blog/packing-list-for-a-weekend", "/about", "/contact",
         "/cart", "/checkout", "/checkout/thank-you", "/account/orders", "/search?q=waterproof+jacket",
         "/faq#returns"]
QUERIES = ["", "", "", "", "", "", "?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale",
           "?utm_source=facebook&utm_medium=paid_social&utm_campaign=retarget&utm_content=carousel_3",
           "?utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_term=trail+shoes", "?gclid=Cj0KCQjw",
           "?ref=producthunt"]
REFERRERS = ["", "", "", "https://www.google.com/", "https://www.google.de/", "https://www.bing.com/",
             "https://duckduckgo.com/", "https://t.co/", "https://www.facebook.com/", "https://l.instagram.com/",
             "https://news.ycombinator.com/", "https://www.reddit.com/r/running/", "https://mail.google.com/",
             "android-app://com.google.android.gm/", f"https://{DOMAIN}/products"]
CUSTOM = [("add_to_cart", ("sku", "price")), ("signup", ("plan",)), ("search", ("query",)),
          ("download", ("file",)), ("outbound", ("url",))]

_ID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _rid(rng: random.Random, n: int = 16) -> str:
    return "".join(rng.choice(_ID_CHARS) for _ in range(n))


class EventMaker:
    """Events as the snippet sends them; a pool of returning first-party visitors and cookieless ones."""

    def __init__(self, site: str, seed: int = 7) -> None:
        self.site = site
        self.rng = random.Random(seed)  # noqa: S311 - test data, reproducible
        self.visitors = [(_rid(self.rng), _rid(self.rng, 12)) for _ in range(3000)]
        self.addresses = [self._address() for _ in range(20000)]

    def _address(self) -> str:
        """A public address (the visitor's, as the TLS proxy in front passes it in X-Forwarded-For)."""
        rng = self.rng
        if rng.random() < 0.15:
            return f"2a0{rng.randint(0, 9)}:{rng.randint(0, 0xffff):x}:{rng.randint(1, 0xffff):x}::1"
        first = rng.choice([2, 5, 23, 31, 37, 46, 62, 77, 81, 84, 89, 91, 93, 95, 109, 151, 176, 185,
                            188, 193, 194, 195, 212, 213, 217, 24, 50, 64, 66, 67, 68, 71, 73, 98, 99, 108])
        return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def address(self) -> str:
        return self.rng.choice(self.addresses)

    def user_agent(self) -> str:
        return self.rng.choices(USER_AGENTS, UA_WEIGHTS)[0]

    def event(self) -> dict:
        rng = self.rng
        url = f"https://{DOMAIN}{rng.choice(PATHS)}"
        if "?" not in url and "#" not in url:
            url += rng.choice(QUERIES)
        roll = rng.random()
        event: dict = {"site": self.site, "url": url, "ts": int(time.time() * 1000) - rng.randint(0, 3000)}
        if roll < 0.70:
            event["name"] = "pageview"
            referrer = rng.choice(REFERRERS)
            if referrer:
                event["referrer"] = referrer
        elif roll < 0.85:
            event.update(name="engagement", engaged_ms=rng.randint(300, 240_000), scroll=rng.randint(0, 100))
        else:
            name, keys = rng.choice(CUSTOM)
            event["name"] = name
            event["props"] = {k: f"{k}-{rng.randint(1, 500)}" for k in keys}
        if rng.random() < 0.6:
            event["visitor"], event["session"] = rng.choice(self.visitors)
        return event


def raw_request(port: int, body: bytes, user_agent: str, address: str, *, beacon: bool) -> bytes:
    """One HTTP/1.1 keep-alive request, as a TLS proxy on this host forwards it: a browser's
    sendBeacon, or a site's server posting JSON; the visitor's address in X-Forwarded-For."""
    headers = ["POST /e HTTP/1.1", f"Host: {HOST}:{port}", f"User-Agent: {user_agent}",
               f"X-Forwarded-For: {address}", "X-Forwarded-Proto: https"]
    if beacon:
        headers += ["Content-Type: text/plain;charset=UTF-8", f"Origin: https://{DOMAIN}",
                    f"Referer: https://{DOMAIN}/", "Accept: */*", "Accept-Language: en-US,en;q=0.9"]
    else:
        headers += ["Content-Type: application/json", "Accept: application/json"]
    headers.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def make_requests(maker: EventMaker, port: int, batch: int, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        events = [maker.event() for _ in range(batch)]
        body = json.dumps(events[0] if batch == 1 else events, separators=(",", ":")).encode()
        out.append(raw_request(port, body, maker.user_agent(), maker.address(), beacon=batch == 1))
    return out


# -- load generators -------------------------------------------------------------------------------

def _lua_string(data: bytes) -> str:
    text = data.decode("ascii")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
    return f'"{escaped}"'


WRK_LUA = """
local reqs = {%s}
local i = 0
request = function()
  i = i %% #reqs + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  io.write(string.format(
    'BENCHJSON {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,' ..
    '"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(workdir: Path, port: int, requests: list[bytes], seconds: float, connections: int) -> dict:
    script = workdir / f"wrk-{port}-{len(requests[0])}.lua"
    script.write_text(WRK_LUA % ",\n".join(_lua_string(r) for r in requests))
    cpu0 = _children_cpu()
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                           "--timeout", "10s",
                           "-s", str(script), f"http://{HOST}:{port}/e"],
                          capture_output=True, text=True, timeout=seconds + 60, check=False)
    cpu = _children_cpu() - cpu0
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(line[len("BENCHJSON "):])
    result["cpu_s"] = cpu
    result["seconds"] = result["duration_us"] / 1e6
    return result


def run_openloop(workdir: Path, port: int, requests: list[bytes], rate: float, seconds: float) -> dict:
    path = workdir / f"openloop-{port}.pickle"
    path.write_bytes(pickle.dumps(requests))
    cpu0 = _children_cpu()
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "openloop.py"), "--port", str(port),
                           "--requests", str(path), "--rate", str(rate), "--seconds", str(seconds)],
                          capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openloop failed:\n{done.stdout}\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["cpu_s"] = _children_cpu() - cpu0  # the whole process, start-up included
    return result


# -- processes: tree, CPU, memory ------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def process_tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                parents[int(fields[1])].append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, ()))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def memory_kb(pids: list[int], each: dict[int, int] | None = None) -> tuple[int, int]:
    """(sum of VmRSS, sum of Pss) in kB; ``each`` gets every process's VmRSS."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                    if each is not None:
                        each[pid] = int(line.split()[1])
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


class Sampler:
    """Peak memory of a process tree, sampled in a thread while a load runs."""

    def __init__(self, root: int, interval: float = 0.25) -> None:
        self.pids = process_tree(root)
        self.processes = len(self.pids)
        self.interval = interval
        self.peak_rss = self.peak_pss = 0
        self.peak_each: dict[int, int] = {}  # VmRSS of every process at the peak of the sum
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            each: dict[int, int] = {}
            rss, pss = memory_kb(self.pids, each)
            if rss > self.peak_rss:
                self.peak_each = each
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def detail(self, parent: int) -> str:
        """``parent 93 MB + workers 180, 210 MB`` at the peak."""
        workers = ", ".join(f"{kb / 1024:.0f}" for pid, kb in sorted(self.peak_each.items()) if pid != parent)
        parent_mb = self.peak_each.get(parent, 0) / 1024
        return f"VmRSS at the peak: parent {parent_mb:.0f} MB + workers {workers} MB"

    def __enter__(self) -> Sampler:
        self.cpu0 = cpu_seconds(self.pids)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu = cpu_seconds(self.pids) - self.cpu0


# -- the targets -----------------------------------------------------------------------------------

def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class NoopServer:
    def __init__(self, workers: int) -> None:
        self.port = free_port()
        self.workers = workers
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> NoopServer:
        self.process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "noop_app.py"),
                                         "--port", str(self.port), "--workers", str(self.workers),
                                         "--threads", str(REQUEST_THREADS)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        wait_http(f"http://{HOST}:{self.port}/")
        time.sleep(0.5)  # every worker up
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def healthz(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:  # noqa: S310 - loopback
            return json.loads(response.read())["ingestion"]
    except (OSError, ValueError, KeyError):
        return None


def wait_landed(url: str, workers: int, ch: Client, database: str, timeout: float = 120,
                quiet: float = 1.5) -> tuple[int, float, bool]:
    """Wait until the workers' spools are empty and the row count in ClickHouse has stopped moving.

    /healthz answers for whichever worker takes the connection and does not say which, so it is
    asked several times per round; done when a round of ``4 * workers`` answers all show nothing
    pending and the count has not changed for ``quiet`` seconds (longer than the 0.5 s batch
    interval). Returns (rows in events, monotonic time that count was first seen, met or timed out).
    """
    deadline = time.monotonic() + timeout
    count, first_seen = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_count = ch.execute(f"SELECT count() FROM {database}.events")[0][0]  # noqa: S608 - the benchmark's own database name, not input
        if now_count != count:
            count, first_seen = now_count, time.monotonic()
        answers = [healthz(url) for _ in range(4 * workers)]
        idle = all(a is not None and a.get("pending_bytes") == 0 for a in answers)
        if idle and time.monotonic() - first_seen >= quiet:
            return count, first_seen, True
        time.sleep(0.05)
    return count, time.monotonic(), False


# -- scenarios -------------------------------------------------------------------------------------

@dataclass
class Row:
    scenario: str
    load: str
    requests_s: float
    accepted_s: float | None = None
    landed_s: float | None = None
    p50: float | None = None
    p99: float | None = None
    rss_mb: float | None = None
    pss_mb: float | None = None
    server_cpu: float | None = None
    gen_cpu: float | None = None
    errors: str = ""
    notes: list[str] = field(default_factory=list)
    workers: int = 0
    run: str = ""  # "noop max", "noop rate", "single max", "batch max", "single rate": for the budget lines
    processes: int = 0  # how many processes the memory sums are over


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def print_table(rows: list[Row]) -> None:
    print("| scenario | load | requests/s | events/s accepted | events/s landed | p50 ms | p99 ms "
          "| RSS MB (sum VmRSS / sum Pss) | server CPU (cores) "
          "| server CPU us per event (baseline: per request) "
          "| generator CPU (cores) | non-2xx / errors |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        mem = "-" if r.rss_mb is None else f"{r.rss_mb:.0f} / {r.pss_mb:.0f}"
        per = r.accepted_s or r.requests_s
        cost = "-" if not (r.server_cpu and per) else f"{r.server_cpu * 1e6 / per:.0f}"
        print(f"| {r.scenario} | {r.load} | {_fmt(r.requests_s)} | {_fmt(r.accepted_s)} | {_fmt(r.landed_s)} "
              f"| {_fmt(r.p50, 2)} | {_fmt(r.p99, 2)} | {mem} | {_fmt(r.server_cpu, 2)} | {cost} "
              f"| {_fmt(r.gen_cpu, 2)} "
              f"| {r.errors or '0'} |")
    for r in rows:
        for note in r.notes:
            print(f"- {r.scenario}, {r.load}: {note}")


def budget_lines(rows: list[Row], rate: float) -> list[str]:
    """The budgets of issue 11, per worker count, from this run's rows: the ratio of single-event beacons
    to the no-op app (accepted and landed), p99 at the fixed rate, memory per process under that load."""
    out = []
    for workers in sorted({r.workers for r in rows}):
        got = {r.run: r for r in rows if r.workers == workers}
        noop, single, fixed = got.get("noop max"), got.get("single max"), got.get("single rate")
        if noop and single and single.accepted_s and single.landed_s:
            base = noop.requests_s
            out.append(f"- {workers} worker(s): single-event beacons / no-op app, same run: accepted "
                       f"{single.accepted_s:,.0f} / {base:,.0f} = {single.accepted_s / base:.3f}, landed "
                       f"{single.landed_s:,.0f} / {base:,.0f} = {single.landed_s / base:.3f} (budget >= 1/3)")
        if fixed and fixed.p99 is not None and fixed.rss_mb is not None and fixed.processes:
            noop_fixed = got.get("noop rate")
            beside = f"; no-op app {noop_fixed.p99:.1f} ms" if noop_fixed and noop_fixed.p99 else ""
            out.append(f"- {workers} worker(s): p99 at {rate:,.0f} events/s {fixed.p99:.1f} ms (budget <= 25 "
                       f"ms{beside}); memory under that load per process ({fixed.processes} processes: the "
                       f"server's parent and its workers): RSS {fixed.rss_mb / fixed.processes:.0f} MB, "
                       f"PSS {fixed.pss_mb / fixed.processes:.0f} MB (budget <= 100 MB PSS)")
    return out


def _wrk_errors(result: dict) -> str:
    parts = [f"{k} {result[k]}" for k in ("status", "connect", "read", "write", "timeout") if result[k]]
    return ", ".join(parts)


def bench_noop(args: argparse.Namespace, workdir: Path, workers: int, maker: EventMaker) -> list[Row]:
    rows = []
    with NoopServer(workers) as noop:
        pid = noop.process.pid  # type: ignore[union-attr]
        single = make_requests(maker, noop.port, 1, 2000)
        with Sampler(pid) as s:
            w = run_wrk(workdir, noop.port, single, args.seconds, args.connections)
        rps = w["requests"] / w["seconds"]
        rows.append(Row(f"baseline no-op, {workers} worker(s)", f"wrk -c{args.connections}, max", rps,
                        p50=w["p50_us"] / 1000, p99=w["p99_us"] / 1000, rss_mb=s.peak_rss / 1024,
                        pss_mb=s.peak_pss / 1024, server_cpu=s.cpu / w["seconds"],
                        gen_cpu=w["cpu_s"] / w["seconds"], errors=_wrk_errors(w), workers=workers,
                        run="noop max", processes=s.processes))
        with Sampler(pid) as s:
            o = run_openloop(workdir, noop.port, single, args.rate, args.seconds)
        rows.append(Row(f"baseline no-op, {workers} worker(s)", f"open loop {args.rate:,.0f} req/s",
                        o["rate"],
                        p50=o["p50_ms"], p99=o["p99_ms"], rss_mb=s.peak_rss / 1024, pss_mb=s.peak_pss / 1024,
                        server_cpu=s.cpu / o["seconds"], gen_cpu=o["cpu_s"] / o["seconds"],
                        errors=_openloop_errors(o),
                        notes=[f"p99.9 {o['p999_ms']} ms, max {o['max_ms']} ms"], workers=workers,
                        run="noop rate", processes=s.processes))
    return rows


def _openloop_errors(o: dict) -> str:
    bad = {k: v for k, v in o["statuses"].items() if not k.startswith("2")}
    parts = [f"{k}: {v}" for k, v in bad.items()]
    if o["errors"]:
        parts.append(f"conn {o['errors']}")
    if o["unanswered"]:
        parts.append(f"unanswered {o['unanswered']}")
    return ", ".join(parts)


def profile_worker(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    """py-spy on one worker, sampling only the thread that holds the GIL: where its Python time goes."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        print("(--profile: py-spy not found; `.venv/bin/pip install py-spy`)", file=sys.stderr)
        return None
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds) - 1)),
                             "--rate", "200", "--gil", "--format", "raw", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


PROFILES: list[str] = []  # printed after the table

# Frames whose inclusive share tells where a worker's GIL time goes, in request order.
KEY_FRAMES = [
    ("granian -> WSGI app (everything a request costs in Python)", "_callback_wrapper.<locals>._runner"),
    ("  Frontend.__call__ (odnos' hot path)", "Frontend.__call__"),
    ("    parse_body (orjson + JSON Schema)", "parse_body"),
    ("    Pipeline._beacon_row (site and host checks, enrichment, the row)", "Pipeline._beacon_row"),
    ("      classify_referrer", "classify_referrer"),
    ("      country_of (geoip2fast)", "country_of"),
    ("      VisitorIds.candidates (blake2b)", "VisitorIds.candidates"),
    ("      SessionTracker.assign", "SessionTracker.assign"),
    ("      utm_params", "utm_params"),
    ("      split_url", "split_url"),
    ("      typed_row", "typed_row"),
    ("      new_event_id", "new_event_id"),
    ("    EventQueue.submit (orjson.dumps + Spool.append)", "EventQueue.submit"),
    ("      Spool.append", "Spool.append"),
    ("    Frontend._cors", "Frontend._cors"),
    ("Writer._run (writer thread: spool -> ClickHouse)", "Writer._run"),
    ("  ClickHouseStore.insert_json_lines", "ClickHouseStore.insert_json_lines"),
    ("    clickhouse-driver Client.execute (rows -> native columns)", "Client.execute"),
    ("  Spool.begin/commit (checkpoint fsync)", "Spool._write_checkpoint"),
    ("Spool._sync (fsync thread)", "Spool._sync"),
    ("garbage collector", "<gc>"),
]


def _function(frame: str) -> str:
    """``f (path/file.py:123)`` -> ``f (path/file.py)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def summarize_profile(path: Path, top: int = 15) -> str:
    """Self and inclusive shares per function from py-spy's collapsed stacks (GIL holder only)."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    by_name: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = [_function(f) for f in stack.split(";")
                  if f and not f.startswith(("process ", "thread "))]
        if not frames:
            frames = ["(no Python frame)"]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            incl[frame] += count
        for name in {f.partition(" (")[0] for f in frames}:
            by_name[name] += count
    if not total:
        return f"(profile {path}: no samples)"
    out: list[str] = []
    out.append(f"Profile of one collector worker under the single-event max load: {total} samples of the "
               f"thread holding the GIL (py-spy --gil, 200 Hz).\n")
    out.append("| where the GIL time goes | % |\n| --- | ---: |")
    for label, name in KEY_FRAMES:
        if by_name[name]:
            out.append(f"| {label} | {100 * by_name[name] / total:.1f} |")
    out.append("\n| top self time (function) | % |\n| --- | ---: |")
    for frame, n in own.most_common(top):
        out.append(f"| `{frame}` | {100 * n / total:.1f} |")
    return "\n".join(out)


def bench_collector(args: argparse.Namespace, workdir: Path, workers: int, ch_server: ClickHouseServer,
                    ch: Client) -> list[Row]:
    database = f"bench_w{workers}_{int(time.time())}"
    data_dir = workdir / f"data-w{workers}"
    # Behind a proxy on this host, as in production: the visitor's address comes from X-Forwarded-For.
    env = odnos_env(data_dir, ODNOS_CLICKHOUSE_URL=ch_server.url_for(database), ODNOS_LOG_LEVEL="WARNING",
                    ODNOS_TRUSTED_PROXIES="127.0.0.1")
    added = run_odnos("site", "add", "Bench shop", "--domain", DOMAIN, env=env)
    if added.returncode != 0:
        raise RuntimeError(f"odnos site add failed:\n{added.stdout}\n{added.stderr}")
    site = added.stdout.strip().splitlines()[-1]
    maker = EventMaker(site, seed=workers)
    rows: list[Row] = []
    server = OdnosServer(env, command="collector", extra_args=("--workers", str(workers)))
    server.start()
    try:
        pid = server.process.pid  # type: ignore[union-attr]
        name = f"odnos collector, {workers} worker(s)"
        single = make_requests(maker, server.port, 1, 2000)
        batched = make_requests(maker, server.port, args.batch, 300)
        # warm-up: every worker loads its parsers and opens its ClickHouse connection
        run_wrk(workdir, server.port, single, 2, args.connections)  # enough connections for every worker
        wait_landed(server.url, workers, ch, database)
        running = len(process_tree(pid)) - 1
        if running != workers:
            raise RuntimeError(f"{running} of {workers} collector workers are running; see its output:\n"
                               + "".join(server.output))

        for label, requests, per_request in (("single-event beacons", single, 1),
                                             (f"batches of {args.batch}", batched, args.batch)):
            before = ch.execute(f"SELECT count() FROM {database}.events")[0][0]  # noqa: S608 - the benchmark's own database name, not input
            spy = None
            if args.profile and per_request == 1:
                workers_pids = [p for p in process_tree(pid) if p != pid]
                spy = profile_worker(workers_pids[0], args.seconds, workdir / f"profile-w{workers}.txt")
            started = time.monotonic()
            with Sampler(pid) as s, Sampler(ch_server.process.pid) as chs:  # type: ignore[union-attr]
                w = run_wrk(workdir, server.port, requests, args.seconds, args.connections)
            count, landed_at, complete = wait_landed(server.url, workers, ch, database)
            if spy is not None:
                spy.wait(30)
            ok = w["requests"] - w["status"]
            row = Row(name, f"{label}, wrk -c{args.connections}, max", w["requests"] / w["seconds"],
                      accepted_s=ok * per_request / w["seconds"],
                      landed_s=(count - before) / (landed_at - started),
                      p50=w["p50_us"] / 1000, p99=w["p99_us"] / 1000, rss_mb=s.peak_rss / 1024,
                      pss_mb=s.peak_pss / 1024, server_cpu=s.cpu / w["seconds"],
                      gen_cpu=w["cpu_s"] / w["seconds"], errors=_wrk_errors(w), workers=workers,
                      run="single max" if per_request == 1 else "batch max", processes=s.processes)
            row.notes.append(f"{ok * per_request:,} events acknowledged, {count - before:,} landed, "
                             "all landed "
                             f"{landed_at - started - w['seconds']:.1f} s after the load stopped; ClickHouse "
                             f"used {chs.cpu / w['seconds']:.2f} cores; {s.detail(pid)}"
                             + ("" if complete else " (TIMED OUT waiting for the spools to drain)"))
            rows.append(row)

        before = ch.execute(f"SELECT count() FROM {database}.events")[0][0]  # noqa: S608 - the benchmark's own database name, not input
        started = time.monotonic()
        with Sampler(pid) as s:
            o = run_openloop(workdir, server.port, single, args.rate, args.seconds)
        count, landed_at, complete = wait_landed(server.url, workers, ch, database)
        ok = sum(v for k, v in o["statuses"].items() if k.startswith("2"))
        rows.append(Row(name, f"single-event beacons, open loop {args.rate:,.0f}/s", o["rate"],
                        accepted_s=ok / o["seconds"], landed_s=(count - before) / (landed_at - started),
                        p50=o["p50_ms"], p99=o["p99_ms"], rss_mb=s.peak_rss / 1024, pss_mb=s.peak_pss / 1024,
                        server_cpu=s.cpu / o["seconds"], gen_cpu=o["cpu_s"] / o["seconds"],
                        errors=_openloop_errors(o),
                        notes=[f"p90 {o['p90_ms']} ms, p99.9 {o['p999_ms']} ms, max {o['max_ms']} ms; "
                               f"{ok:,} acknowledged, {count - before:,} landed"
                               + ("" if complete else " (TIMED OUT waiting for the spools to drain)")],
                        workers=workers, run="single rate", processes=s.processes))
    finally:
        server.stop()
    if args.profile:
        path = workdir / f"profile-w{workers}.txt"
        PROFILES.append(f"### {workers} worker(s)\n\n"
                        + (summarize_profile(path) if path.exists() else "(no profile was written)"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each load phase (default 8)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    parser.add_argument("--batch", type=int, default=20, help="events per request in the batch scenario")
    parser.add_argument("--rate", type=float, default=5000.0, help="events/s of the fixed-rate latency run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (closed loop)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy one worker during the single-event max run and print the hotspots")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, profiles)")
    args = parser.parse_args(argv)
    workers_list = [int(w) for w in args.workers.split(",") if w]
    if shutil.which("wrk") is None:
        print("wrk is not installed: `apt-get install wrk`", file=sys.stderr)
        return 2
    command = " ".join([".venv/bin/python", "benchmarks/collector_bench.py", *(argv if argv is not None
                                                                              else sys.argv[1:])])
    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)  # the start-up polls' noise
    workdir = Path(tempfile.mkdtemp(prefix="odnos-bench-"))
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    ch_server = ClickHouseServer(workdir / "clickhouse")
    ch_server.start()
    rows: list[Row] = []
    try:
        ch = Client(host=HOST, port=ch_server.tcp_port)
        version = ch.execute("SELECT version()")[0][0]
        maker = EventMaker("noop")
        for workers in workers_list:
            rows += bench_noop(args, workdir, workers, maker)
            rows += bench_collector(args, workdir, workers, ch_server, ch)
    finally:
        ch_server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"Collector benchmark ({os.cpu_count()} CPUs, ClickHouse server {version}, "
          f"{args.seconds:g} s per phase, total {time.monotonic() - began:.0f} s; 1-minute load average "
          f"{load_before:.1f} before the run: other work on the machine skews the numbers)\n")
    print_table(rows)
    for text in PROFILES:
        print("\n" + text)
    print("\nBudgets:\n")
    print("\n".join(budget_lines(rows, args.rate)))
    print(f"Reproduce: {command}")
    if args.keep:
        print(f"Kept: {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
