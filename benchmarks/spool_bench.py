"""Spool benchmark: append rate of 200-byte lines from several threads, and writer throughput.

The collector's hot path is ``Spool.append``; the budget is 20,000 events/s per machine, so appends
must cost a few microseconds. The writer must drain faster than that into a null sink, so the store,
not the spool, is what limits ingestion.

Run:  .venv/bin/python benchmarks/spool_bench.py [--threads 4] [--seconds 3] [--rows 1000000] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from tracker.ingest.spool import Spool
from tracker.ingest.writer import Writer


def make_line(n: int) -> bytes:
    head = b'{"event_id":"%032x","site_id":"s1","name":"pageview","url":"' % n
    tail = b'"}\n'
    return head + b"p" * (200 - len(head) - len(tail)) + tail


def bench_appends(directory: Path, threads: int, seconds: float, with_writer: bool) -> None:
    spool = Spool(directory, max_bytes=1 << 40)
    writer = Writer(spool, lambda table, data, rows: None) if with_writer else None
    counts = [0] * threads
    samples: list[list[float]] = [[] for _ in range(threads)]
    stop = time.perf_counter() + seconds

    def work(t: int) -> None:
        n, mine, line = 0, samples[t], make_line(t)
        append, clock = spool.append, time.perf_counter
        while True:
            if n % 64 == 0:  # time one append in 64, so timing does not dominate what it measures
                start = clock()
                append(line)
                end = clock()
                mine.append(end - start)
                if end > stop:
                    break
            else:
                append(line)
            n += 1
        counts[t] = n

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    began = time.perf_counter()
    for p in pool:
        p.start()
    for p in pool:
        p.join()
    elapsed = time.perf_counter() - began
    latencies = sorted(x for s in samples for x in s)
    total = sum(counts)
    label = "appends while the writer drains to a null sink" if with_writer else "appends alone"
    print(
        f"{label}: {threads} threads, {total:,} lines of 200 B in {elapsed:.2f} s "
        f"= {total / elapsed:,.0f}/s; "
        f"latency p50 {statistics.median(latencies) * 1e6:.1f} us, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1e6:.1f} us, max {latencies[-1] * 1e3:.2f} ms"
    )
    if writer is not None:
        started = time.perf_counter()
        writer.stop(600)
        print(f"  backlog drained {time.perf_counter() - started:.2f} s after the appends stopped")
    spool.close()


def bench_writer(directory: Path, rows: int) -> None:
    spool = Spool(directory, max_bytes=1 << 40)
    chunk = b"".join(make_line(n) for n in range(1000))
    for _ in range(rows // 1000):
        spool.append(chunk)
    spool.close()
    spool = Spool(directory, max_bytes=1 << 40)  # a restart: everything is replayed from the files
    batches = []
    started = time.perf_counter()
    writer = Writer(spool, lambda table, data, n: batches.append(n))
    writer.stop(600)
    elapsed = time.perf_counter() - started
    total = sum(batches)
    print(
        f"writer to a null sink: {total:,} rows ({total * 200 / 1e6:.0f} MB) in {elapsed:.2f} s "
        f"= {total / elapsed:,.0f} rows/s in {len(batches)} batches"
    )
    spool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None, help="where to put the spools (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        bench_appends(Path(tmp) / "a", args.threads, args.seconds, with_writer=False)
        bench_appends(Path(tmp) / "b", args.threads, args.seconds, with_writer=True)
        bench_writer(Path(tmp) / "c", args.rows)


if __name__ == "__main__":
    main()
