"""A forwarded command that can stop gently asks for an event instead of a ``KeyboardInterrupt``.

When the client of a forwarded command goes away (Ctrl+C), the server interrupts the command
(``server.Job.interrupt``). A command that has a clean place to stop (``odnos send`` finishes the
message on the wire and records the claims it did not send) calls ``stop_event()`` in its thread:
from then on the interruption sets that event and raises nothing, as the first Ctrl+C does in a
local run. Kept apart from ``server`` so the CLI can import it without Flask.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Stoppable(Protocol):
    stop: threading.Event
    graceful: bool


_local = threading.local()


def stop_event() -> threading.Event | None:
    """The event that stops this thread's forwarded command gently, or None outside one."""
    job: Stoppable | None = getattr(_local, "job", None)
    if job is None:
        return None
    job.graceful = True
    return job.stop


@contextmanager
def running(job: Stoppable) -> Iterator[None]:
    """Mark the current thread as running ``job`` (the server's command thread)."""
    _local.job = job
    try:
        yield
    finally:
        _local.job = None
