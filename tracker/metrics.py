"""``/metrics``: the ingestion's health in Prometheus text format, for alerts that fire before data is lost.

Self-hosters of other trackers lost weeks of events without noticing (PostHog #13668). What a
scraper needs to page someone: events accepted, requests refused by reason, rows landed, rows
dead-lettered, bytes waiting in the spool and the age of the oldest of them, consecutive insert
failures. Counts only, as on ``/healthz``: no paths, addresses or error texts. Each worker keeps its
own counters and answers for itself (``worker`` label), as Prometheus expects of a process.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Refusals:
    """Requests the collector refused, by the error code it answered with; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, code: str) -> None:
        with self._lock:
            self._counts[code] += 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


# name, type, help, the stats key it reads
_GAUGES = (
    ("odnos_events_accepted_total", "counter", "Events accepted (answered 2xx) and spooled.",
     "accepted_rows"),
    ("odnos_events_landed_total", "counter", "Rows inserted into the event store.", "inserted_rows"),
    ("odnos_dead_letter_rows", "gauge", "Rows the store refused for good, waiting in the dead-letter file.",
     "dead_letter_rows"),
    ("odnos_spool_pending_bytes", "gauge", "Bytes accepted and not yet in the event store.", "pending_bytes"),
    ("odnos_spool_oldest_pending_seconds", "gauge",
     "Age of the oldest accepted line not yet in the event store (0 when none waits).",
     "oldest_pending_seconds"),
    ("odnos_spool_full", "gauge", "1 while the spool is full and the collector answers 503.", "full"),
    ("odnos_insert_failures", "gauge", "Consecutive failed inserts (0 when inserts work).", "failures"),
)


def render(stats: Mapping[str, Any], refused: Mapping[str, int], worker: int) -> str:
    """The exposition text for one worker's ``stats`` (the queue's) and its refusals by code."""
    label = f'worker="{worker}"'
    lines = []
    for name, kind, text, key in _GAUGES:
        value = stats.get(key) or 0
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name}{{{label}}} {float(value):g}"]
    lines += ["# HELP odnos_requests_refused_total Collector requests refused, by the error code answered.",
              "# TYPE odnos_requests_refused_total counter"]
    lines += [f'odnos_requests_refused_total{{{label},reason="{code}"}} {count}'
              for code, count in sorted(refused.items())]
    return "\n".join(lines) + "\n"
