"""The parts one odnos process holds: settings, the event store, the control plane, signing keys.

Built once per process (per WSGI worker) by ``Runtime.open`` and kept on the Flask app as
``app.extensions["odnos"]``; views and jobs reach every part through it, so nothing opens its own
connections. ``close`` releases them at shutdown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from tracker.control.db import ControlPlane
from tracker.settings import Settings, ensure_data_dir, signing_keys
from tracker.store import EventStore, open_store
from tracker.store.migrate import migrate

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    store: EventStore
    reader: EventStore
    control: ControlPlane
    keys: tuple[str, ...]
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings, *, migrate_schema: bool = True) -> Runtime:
        """Open the stores (migrating both databases when asked) and load the signing keys."""
        ensure_data_dir(settings)
        store = open_store(settings)
        control = ControlPlane(settings.sqlalchemy_url)
        if migrate_schema:
            migrate(store)
            control.migrate()
        reader = open_store(settings, readonly=True)
        return cls(settings=settings, store=store, reader=reader, control=control,
                   keys=signing_keys(settings))

    def close(self) -> None:
        """Stop background parts (flushing the ingestion queue) and release connections; idempotent."""
        if self.extras.get("closed"):
            return
        self.extras["closed"] = True
        for closer in self.extras.pop("closers", []):
            closer()
        self.store.close()
        self.reader.close()
        self.control.dispose()
