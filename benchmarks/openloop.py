"""Open-loop HTTP/1.1 load at a fixed rate, for latency measurements (what wrk, closed-loop, cannot do).

Requests are sent on a fixed schedule (request i at ``t0 + i / rate``), whether or not earlier ones
were answered, over keep-alive connections taken from a pool (a new connection is opened when none
is idle, up to ``--connections``; past that, requests wait for one). Latency is measured from the
scheduled send time, not from the moment a connection was free, so a stalled server shows up in
the percentiles instead of slowing the generator down (no coordinated omission).

Reads the raw requests (bytes, cycled) from a pickle file; prints one JSON line with the result.
Used by ``collector_bench.py``; runs in its own process so it does not share a GIL with anything.

    python benchmarks/openloop.py --port 8000 --requests reqs.pickle --rate 5000 --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import pickle
import resource
import sys
import time


def _content_length(head: bytes) -> int:
    at = head.find(b"content-length:")
    if at < 0:
        return 0
    stop = head.find(b"\r\n", at)
    return int(head[at + 15:stop if stop > 0 else None])


class _Conn(asyncio.Protocol):
    def __init__(self, gen: _Gen) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.scheduled: float | None = None  # the request in flight on this connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.gen.ready(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            length = _content_length(head)
            total = end + 4 + length
            if len(self.buf) < total:
                return
            status = int(head[9:12])
            del self.buf[:total]
            scheduled, self.scheduled = self.scheduled, None
            self.gen.answered(self, scheduled, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class _Gen:
    def __init__(self, host: str, port: int, requests: list[bytes], max_conns: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.host, self.port = host, port
        self.requests = requests
        self.next_request = 0
        self.max_conns = max_conns
        self.conns: set[_Conn] = set()
        self.opening = 0
        self.idle: collections.deque[_Conn] = collections.deque()
        self.waiting: collections.deque[float] = collections.deque()  # scheduled times, no connection yet
        self.latencies: list[float] = []
        self.statuses: collections.Counter[int] = collections.Counter()
        self.errors = 0
        self.sent = 0

    def _open(self) -> None:
        self.opening += 1

        async def connect() -> None:
            try:
                await self.loop.create_connection(lambda: _Conn(self), self.host, self.port)
            except OSError:
                self.errors += 1
            finally:
                self.opening -= 1

        self.loop.create_task(connect())

    def ready(self, conn: _Conn) -> None:
        self.conns.add(conn)
        self._next_for(conn)

    def _send(self, conn: _Conn, scheduled: float) -> None:
        conn.scheduled = scheduled
        request = self.requests[self.next_request]
        self.next_request = (self.next_request + 1) % len(self.requests)
        conn.transport.write(request)  # type: ignore[union-attr]

    def _next_for(self, conn: _Conn) -> None:
        if self.waiting:
            self._send(conn, self.waiting.popleft())
        else:
            self.idle.append(conn)

    def submit(self, scheduled: float) -> None:
        self.sent += 1
        while self.idle:
            conn = self.idle.popleft()
            if conn in self.conns:
                self._send(conn, scheduled)
                return
        self.waiting.append(scheduled)
        if len(self.conns) + self.opening < self.max_conns:
            self._open()

    def answered(self, conn: _Conn, scheduled: float | None, status: int) -> None:
        if scheduled is not None:
            self.latencies.append(self.loop.time() - scheduled)
            self.statuses[status] += 1
        self._next_for(conn)

    def lost(self, conn: _Conn) -> None:
        self.conns.discard(conn)
        if conn.scheduled is not None:
            self.errors += 1
            conn.scheduled = None

    @property
    def outstanding(self) -> int:
        return self.sent - len(self.latencies) - self.errors


async def run(host: str, port: int, requests: list[bytes], rate: float, seconds: float, connections: int,
              prewarm: int) -> dict:
    gen = _Gen(host, port, requests, connections)
    for _ in range(min(prewarm, connections)):
        gen._open()
    deadline = time.monotonic() + 5
    while gen.opening and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    total = int(rate * seconds)
    t0 = gen.loop.time() + 0.01
    i = 0
    while i < total:
        now = gen.loop.time()
        due = min(total, int((now - t0) * rate) + 1)
        while i < due:
            gen.submit(t0 + i / rate)
            i += 1
        await asyncio.sleep(max(0.0, t0 + i / rate - gen.loop.time()))
    send_end = gen.loop.time()
    deadline = time.monotonic() + 10
    while gen.outstanding > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for conn in list(gen.conns):
        conn.transport.close()  # type: ignore[union-attr]
    lat = sorted(gen.latencies)

    def pct(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000, 3) if lat else None

    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {"scheduled": total, "answered": len(lat), "errors": gen.errors, "unanswered": gen.outstanding,
            "statuses": {str(k): v for k, v in sorted(gen.statuses.items())},
            "seconds": round(send_end - t0, 3), "rate": round(len(lat) / max(send_end - t0, 1e-9), 1),
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "p999_ms": pct(99.9),
            "max_ms": round(lat[-1] * 1000, 3) if lat else None, "connections": len(gen.conns),
            "cpu_s": round(cpu, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", required=True, help="pickle file: a list of raw HTTP requests (bytes)")
    parser.add_argument("--rate", type=float, default=5000.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=256, help="most connections to open")
    parser.add_argument("--prewarm", type=int, default=32, help="connections opened before the clock starts")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("loopback only")
    with open(args.requests, "rb") as f:
        requests = pickle.load(f)  # noqa: S301 - our own file, written by collector_bench.py
    result = asyncio.run(run(args.host, args.port, requests, args.rate, args.seconds, args.connections,
                             args.prewarm))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
