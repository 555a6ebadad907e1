"""Links benchmark: tracked links made per second through ``POST /api/v1/tracking/links``.

Starts `odnos serve` in a temporary folder (embedded chDB, as out of the box; making links reads
no store), makes an API key with the real CLI, and asks for ``--links`` links as requests of
``--contacts-per-request`` contacts with ``--urls`` URLs each (and each contact's open pixel),
from ``--clients`` threads, each on one kept-alive connection. Every answer is parsed and its link
count checked.

Baseline in the same run: the same links signed in this process by ``TokenCodec.click`` (what the
endpoint calls per link; no HTTP, no JSON, no authentication), so the API's own cost shows.
Each figure is the best of ``--repeat`` runs.

Budget (issue 10): >= 20,000 links/s on 2 cores.

    .venv/bin/python benchmarks/links_bench.py [--links 200000] [--urls 10] [--clients 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.api_clients import api_key, post_all  # noqa: E402
from tests.fixtures.processes import OdnosServer, odnos_env  # noqa: E402
from tracker.contacts import contact_id_for  # noqa: E402
from tracker.crm.mailer.links import link_id_for  # noqa: E402
from tracker.tokens import TokenCodec  # noqa: E402

KEY = "links-bench-signing-key-0123456789"


def targets(urls: int) -> list[str]:
    """The URLs each contact gets, as a newsletter's product links look."""
    return [f"https://shop.example.com/product/{n}?utm_source=newsletter&utm_campaign=spring"
            for n in range(urls)]


def requests(links: int, per_request: int, urls: int) -> list[bytes]:
    """The request bodies: contacts ``c<n>@bench.example.com``, each with ``urls`` distinct URLs."""
    contacts, wanted, sent_at = links // urls, targets(urls), int(time.time())
    bodies = []
    for start in range(0, contacts, per_request):
        batch = [{"email": f"c{n}@bench.example.com", "urls": wanted}
                 for n in range(start, min(start + per_request, contacts))]
        bodies.append(json.dumps({"campaign": "spring", "sent_at": sent_at, "contacts": batch}).encode())
    return bodies


def send_all(port: int, key: str, bodies: list[bytes], clients: int) -> tuple[float, int]:
    """Post every body from ``clients`` threads; seconds taken and links received."""
    made = [0]

    def take(answer: dict) -> None:
        made[0] += sum(len(c["links"]) for c in answer["contacts"])

    return post_all(port, key, "/api/v1/tracking/links", bodies, clients, take), made[0]


def direct(links: int, urls: int) -> float:
    """The baseline: the same links signed by the codec in this process; seconds taken."""
    codec = TokenCodec([KEY])
    wanted = targets(urls)
    ids = [link_id_for(t) for t in wanted]
    sent_at = int(time.time())
    started = time.perf_counter()
    for n in range(links // urls):
        contact = contact_id_for(f"c{n}@bench.example.com")
        for link_id, target in zip(ids, wanted, strict=True):
            codec.click(contact, "spring", link_id, target, sent_at=sent_at)
        codec.open(contact, "spring", sent_at=sent_at)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=200_000)
    parser.add_argument("--urls", type=int, default=10, help="URLs per contact")
    parser.add_argument("--contacts-per-request", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2, help="concurrent connections")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="odnos-linksbench-"))
    env = odnos_env(root / "data", ODNOS_SECRET_KEYS=KEY, ODNOS_LOG_LEVEL="WARNING",
                    ODNOS_API_RATE_PER_SECOND="100000", ODNOS_API_BURST="100000",
                    ODNOS_PUBLIC_URL="https://t.example.com")
    try:
        plaintext = api_key(env, "send")
        bodies = requests(args.links, args.contacts_per_request, args.urls)
        links = (args.links // args.urls) * args.urls
        api_rates, direct_rates = [], []
        with OdnosServer(env) as server:
            send_all(server.port, plaintext, bodies[:1], 1)  # warm: first request, key check, imports
            for _ in range(args.repeat):
                elapsed, received = send_all(server.port, plaintext, bodies, args.clients)
                assert received == links, (received, links)
                api_rates.append(links / elapsed)
                direct_rates.append(links / direct(args.links, args.urls))
        print(f"\n{links:,} links ({args.urls} per contact, plus a pixel each), requests of "
              f"{args.contacts_per_request:,} contacts, {args.clients} client(s), {os.cpu_count()} CPUs, "
              f"best of {args.repeat}\n")
        print(f"{'API links/s':>12} {'direct links/s':>15}")
        print(f"{max(api_rates):>12,.0f} {max(direct_rates):>15,.0f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
