"""Where a beacon's time goes, stage by stage, in one process (no HTTP, no threads competing).

Companion of ``collector_bench.py``: the same realistic events, through the real objects the
collector worker builds (``create_app`` on a ClickHouse server this script starts), timed stage by
stage in microseconds per event, then the whole WSGI call of ``POST /e`` as granian would make it
(minus granian itself), and the writer's side: JSON lines to ClickHouse rows per event.

    .venv/bin/python benchmarks/collector_stages.py [--events 20000]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import orjson  # noqa: E402
from collector_bench import DOMAIN, EventMaker  # noqa: E402

from tests.fixtures.clickhouse import ClickHouseServer  # noqa: E402
from tests.fixtures.processes import odnos_env, run_odnos  # noqa: E402


def timed(label: str, n: int, fn, results: list) -> None:
    started = time.perf_counter()
    fn()
    took = time.perf_counter() - started
    results.append((label, took / n * 1e6))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args(argv)
    n = args.events
    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)
    workdir = Path(tempfile.mkdtemp(prefix="odnos-stages-"))
    ch_server = ClickHouseServer(workdir / "clickhouse")
    ch_server.start()
    try:
        env = odnos_env(workdir / "data", ODNOS_CLICKHOUSE_URL=ch_server.url_for("stages"),
                        ODNOS_LOG_LEVEL="WARNING", ODNOS_BATCH_INTERVAL="60",
                        ODNOS_TRUSTED_PROXIES="127.0.0.1")
        site = run_odnos("site", "add", "Stages", "--domain", DOMAIN, env=env).stdout.strip().splitlines()[-1]
        run_odnos("migrate", env=env)
        os.environ.update(env)
        from tracker.app import create_app
        from tracker.collect.beacon import parse_body
        from tracker.collect.clients import client_of
        from tracker.enrich.device import parse_device
        from tracker.enrich.geo import country_of
        from tracker.enrich.referrer import classify_referrer, split_url, utm_params
        from tracker.events import new_event_id, typed_row
        from tracker.runtime import Runtime
        from tracker.settings import load_settings

        runtime = Runtime.open(load_settings(), migrate_schema=False)
        app = create_app(runtime, ("collector",))
        pipeline = app.extensions["odnos.pipeline"]
        queue = app.extensions["odnos.queue"]
        maker = EventMaker(site)
        events = [maker.event() for _ in range(n)]
        agents = [maker.user_agent() for _ in range(n)]
        bodies = [json.dumps(e, separators=(",", ":")).encode() for e in events]
        addresses = [maker.address() for _ in range(n)]
        environs = [{"REQUEST_METHOD": "POST", "PATH_INFO": "/e", "CONTENT_TYPE": "text/plain;charset=UTF-8",
                     "CONTENT_LENGTH": str(len(b)), "HTTP_USER_AGENT": ua, "REMOTE_ADDR": "127.0.0.1",
                     "HTTP_X_FORWARDED_FOR": ip,
                     "HTTP_ORIGIN": f"https://{DOMAIN}", "wsgi.input": io.BytesIO(b),
                     "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
                    for b, ua, ip in zip(bodies, agents, addresses, strict=True)]
        for ua in set(agents):  # the caches warm, as in a running worker
            parse_device(ua)
        country_of(addresses[0])
        pipeline.sites.get(site)
        now = time.time()
        results: list[tuple[str, float]] = []
        from tracker.collect.pipeline import Client
        clients = [Client(ip, ua, "POST") for ua, ip in zip(agents, addresses, strict=True)]
        site_view = pipeline.site(site)

        timed("parse_body (orjson + JSON Schema)", n, lambda: [parse_body(b, 100) for b in bodies], results)
        trusted = app.wsgi_app.trusted
        timed("client_of(environ) (X-Forwarded-For from a trusted proxy)", n,
              lambda: [client_of(e, trusted) for e in environs], results)
        timed("site lookup + host check", n, lambda: [pipeline.sites.allows(pipeline.site(site), DOMAIN)
                                                      for _ in range(n)], results)
        timed("split_url", n, lambda: [split_url(e["url"]) for e in events], results)
        timed("parse_device (cached)", n, lambda: [parse_device(ua) for ua in agents], results)
        timed("utm_params", n, lambda: [utm_params(e["url"]) for e in events], results)
        timed("classify_referrer", n,
              lambda: [classify_referrer(e.get("referrer", ""), DOMAIN, site_view.domains) for e in events],
              results)
        timed("country_of (geoip2fast)", n, lambda: [country_of(ip) for ip in addresses], results)
        timed("visitor candidates (2 x blake2b)", n,
              lambda: [pipeline.visitors.candidates(site, ip, ua, now)
                       for ua, ip in zip(agents, addresses, strict=True)], results)
        timed("new_event_id()", n, lambda: [new_event_id() for _ in range(n)], results)
        timed("typed_row (incl. new_event_id)", n,
              lambda: [typed_row("pageview", now, e.get("props"), new_event_id(),
                                 {"site_id": site, "url": e["url"]}) for e in events], results)
        rows = []
        timed("Pipeline._beacon_row (all enrichment)", n,
              lambda: rows.extend(pipeline._beacon_row(e, c, now)
                                  for e, c in zip(events, clients, strict=True)),
              results)
        lines = []
        timed("orjson.dumps(row) (queue.submit's serialisation)", n,
              lambda: lines.extend(orjson.dumps(r) + b"\n" for r in rows), results)
        timed("Spool.append (one os.write per event)", n,
              lambda: [queue.spool.append(line) for line in lines],
              results)
        for e in environs:
            e["wsgi.input"].seek(0)
        gc_before = [g["collections"] for g in gc.get_stats()]
        timed("whole WSGI call: Flask app + Frontend, POST /e (incl. spool)", n,
              lambda: [app(e, lambda status, headers, exc_info=None: None) for e in environs], results)
        gc_runs = [g["collections"] - b for g, b in zip(gc.get_stats(), gc_before, strict=True)]
        for e in environs:
            e["wsgi.input"].seek(0)
        gc.disable()
        timed("  the same with the garbage collector off", n,
              lambda: [app(e, lambda status, headers, exc_info=None: None) for e in environs], results)
        gc.enable()
        started = time.perf_counter()
        gc.collect()
        full_gc_ms = (time.perf_counter() - started) * 1000
        data = b"".join(lines[:10000])
        count = data.count(b"\n")
        timed("writer: orjson.loads of the spool lines", count,
              lambda: [orjson.loads(line) for line in data.splitlines()], results)
        timed("writer: ClickHouseStore.insert_json_lines (parse + clickhouse-driver + server)", count,
              lambda: runtime.store.insert_json_lines("events", data, count), results)
        queue.close()
        runtime.close()
        print(f"\nPer-event cost of the collector's stages ({n:,} realistic events, one process; "
              f"ClickHouse server {ch_server.url}):\n")
        print("| stage | us per event |\n| --- | ---: |")
        for label, us in results:
            print(f"| {label} | {us:.1f} |")
        print(f"\nGarbage collector: {len(gc.get_objects()):,} tracked objects in this process; during the "
              f"{n:,} WSGI calls it ran {gc_runs[0]} young, {gc_runs[1]} middle and {gc_runs[2]} full "
              f"collections; one full collection takes {full_gc_ms:.0f} ms (a pause for every request in "
              f"flight in that worker).")
        print("\nReproduce: .venv/bin/python benchmarks/collector_stages.py" + "".join(f" {a}" for a in
                                                                                   (argv or sys.argv[1:])))
    finally:
        ch_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
