"""What several commands share: opening the control database, migrated, from the settings."""

from __future__ import annotations

from tracker.control.db import ControlPlane
from tracker.settings import Settings, ensure_data_dir, load_settings


def open_control(settings: Settings | None = None) -> ControlPlane:
    """The control database (SQLite beside a running server is fine: it takes several processes)."""
    settings = load_settings() if settings is None else settings
    if not settings.database_url:
        ensure_data_dir(settings)
    control = ControlPlane(settings.sqlalchemy_url)
    control.migrate()
    return control
