"""Slow clients against `odnos collector`: a client stalled mid-body holds one Python thread.

granian hands a request to the app once its headers are in, and the app's read of the body waits
for the rest, with no timeout (granian #728). So each worker runs requests on several threads
(``REQUEST_THREADS``): clients that send their headers and half a body, then stall, must leave
every other beacon answered while they are fewer than the threads, and their own beacons must
land when they finish. As many stalled clients as threads do hold a worker up; the README says to
put a proxy that buffers request bodies (nginx) in front of collectors that face the internet.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fixtures.collector import CHROME, DOMAIN, running_collector
from tracker.cli.serve import REQUEST_THREADS

pytestmark = pytest.mark.server

STALLED = 3  # slow clients at once that must hold up nobody else


def _half_sent(port: int, body: bytes) -> socket.socket:
    """A beacon whose headers and first half of the body are sent; the rest waits."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (f"POST /e HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {CHROME}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body[: len(body) // 2])
    return sock


def _status(sock: socket.socket) -> int:
    answer = b""
    while b"\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_clients_stalled_mid_body_hold_up_no_other_beacon(clickhouse_server, tmp_path: Path) -> None:
    assert STALLED < REQUEST_THREADS  # as many as the threads would hold the worker up
    marker = uuid.uuid4().hex[:12]
    with running_collector(clickhouse_server, tmp_path / "data", workers=1) as collector:
        def body(n: int) -> bytes:
            return json.dumps(collector.event(marker, url=f"https://{DOMAIN}/p{n}")).encode()

        stalled = [_half_sent(collector.server.port, body(n)) for n in range(STALLED)]
        try:
            time.sleep(0.5)  # the stalled requests are in the server before the others come
            # Each post gives up after 10 s (Collector.request): a worker held by the stalled
            # clients fails here, with no timing of our own to flake.
            with ThreadPoolExecutor(4) as pool:
                statuses = list(pool.map(lambda n: collector.post(body(n))[0], range(100, 140)))
            assert statuses == [202] * 40
            for n, sock in enumerate(stalled):
                sock.sendall(body(n)[len(body(n)) // 2:])
                assert _status(sock) == 202
        finally:
            for sock in stalled:
                sock.close()
        rows = collector.marked(marker, STALLED + 40)
    assert sorted(row["pathname"] for row in rows) == sorted(
        f"/p{n}" for n in [*range(STALLED), *range(100, 140)])
