"""What the HTTP API benchmarks share: an API key on a fresh data folder, and clients that post.

``api_key`` makes an admin and a key with one scope through the CLI, as a user would.
``post_all`` posts request bodies from several threads, each on one kept-alive connection, hands
every parsed answer to ``take`` (under a lock) and returns the seconds it all took; a refused
request ends the benchmark with the server's answer.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.fixtures.processes import run_odnos


def api_key(env: dict[str, str], scope: str) -> str:
    made = run_odnos("user", "add", "--email", "bench@example.com", "--password", "correct horse battery",
                     "--role", "admin", env=env)
    assert made.returncode == 0, made.stderr
    key = run_odnos("apikey", "create", "--name", "bench", "--scope", scope, env=env)
    assert key.returncode == 0, key.stderr
    return key.stdout.strip().splitlines()[-1]


def post_all(port: int, key: str, path: str, bodies: list[bytes], clients: int,
             take: Callable[[Any], None]) -> float:
    """Post ``bodies`` to ``path`` from ``clients`` threads; ``take`` gets each parsed answer."""
    lock = threading.Lock()
    failures: list[str] = []

    def client(mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for body in mine:
            conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {key}",
                                                          "Content-Type": "application/json"})
            response = conn.getresponse()
            answer = response.read()
            if response.status != 200:
                failures.append(f"{response.status} {answer[:200]!r}")
                return
            with lock:
                take(json.loads(answer))
        conn.close()

    threads = [threading.Thread(target=client, args=(bodies[n::clients],)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"the API refused a request: {failures[0]}")
    return elapsed
