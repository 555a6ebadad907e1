"""What several commands share: opening the runtime, or the control database alone, from the settings.

``open_runtime`` and ``open_reader`` are the one place a command opens the event store. In a command
that a running `odnos serve` runs for a client (``tracker.remote``), they yield that server's own
open parts instead (set by ``serving``) and leave them open: the folder is the server's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tracker.control.db import ControlPlane
from tracker.runtime import Runtime
from tracker.settings import Settings, ensure_data_dir, load_settings
from tracker.store import EventStore, open_store

_served: ContextVar[Runtime | None] = ContextVar("odnos_served_runtime", default=None)


def open_control(settings: Settings | None = None) -> ControlPlane:
    """The control database (SQLite beside a running server is fine: it takes several processes)."""
    settings = load_settings() if settings is None else settings
    if not settings.database_url:
        ensure_data_dir(settings)
    control = ControlPlane(settings.sqlalchemy_url)
    control.migrate()
    return control


@contextmanager
def serving(runtime: Runtime) -> Iterator[None]:
    """Within the block, in this thread, commands work with ``runtime`` (a server's) and never close it."""
    token = _served.set(runtime)
    try:
        yield
    finally:
        _served.reset(token)


@contextmanager
def open_runtime(*, migrate_schema: bool = True) -> Iterator[Runtime]:
    """The stores, control plane and keys a command works with, closed when it is done."""
    served = _served.get()
    if served is not None:
        yield served
        return
    runtime = Runtime.open(load_settings(), migrate_schema=migrate_schema)
    try:
        yield runtime
    finally:
        runtime.close()


@contextmanager
def open_reader() -> Iterator[EventStore]:
    """A read-only connection to the event store (writes and DDL refused), closed when done."""
    served = _served.get()
    if served is not None:
        yield served.reader
        return
    reader = open_store(load_settings(), readonly=True)
    try:
        yield reader
    finally:
        reader.close()
