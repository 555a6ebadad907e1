"""What several commands share: opening the runtime, or the control database alone, from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tracker.control.db import ControlPlane
from tracker.runtime import Runtime
from tracker.settings import Settings, ensure_data_dir, load_settings


def open_control(settings: Settings | None = None) -> ControlPlane:
    """The control database (SQLite beside a running server is fine: it takes several processes)."""
    settings = load_settings() if settings is None else settings
    if not settings.database_url:
        ensure_data_dir(settings)
    control = ControlPlane(settings.sqlalchemy_url)
    control.migrate()
    return control


@contextmanager
def open_runtime() -> Iterator[Runtime]:
    """The stores, control plane and keys a command works with, closed when it is done."""
    runtime = Runtime.open(load_settings())
    try:
        yield runtime
    finally:
        runtime.close()
