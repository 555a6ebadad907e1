"""The baseline for ``collector_bench.py``: a WSGI app that does nothing, served by granian exactly as
`odnos collector` serves the collector (same interface, workers, blocking threads, backlog).

It reads the request body (as the collector must) and answers 202 with a tiny JSON body, so the
difference between this and the collector is what odnos itself costs per request.

    python benchmarks/noop_app.py --port 8001 --workers 2 --threads 4
"""

from __future__ import annotations

import argparse
import os
import sys

BODY = b'{"ok":true,"accepted":1}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: dict, start_response) -> list[bytes]:
    length = environ.get("CONTENT_LENGTH")
    if length:
        environ["wsgi.input"].read(int(length))
    start_response("202 Accepted", HEADERS)
    return [BODY]


def main(argv: list[str] | None = None) -> int:
    from granian.constants import Interfaces
    from granian.server import Server

    parser = argparse.ArgumentParser(description="serve the no-op WSGI app with granian")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4,
                        help="Python threads per worker (collector_bench.py passes the collector's own)")
    args = parser.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = here + os.pathsep + os.environ.get("PYTHONPATH", "")
    sys.path.insert(0, here)
    # The same server settings as tracker/cli/serve.py uses for `odnos collector`.
    server = Server("noop_app:app", address="127.0.0.1", port=args.port, interface=Interfaces.WSGI,
                    workers=args.workers, blocking_threads=args.threads, backlog=2048,
                    log_level="warning", log_access=False)
    server.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
