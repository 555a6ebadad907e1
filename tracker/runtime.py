"""The parts one odnos process holds: settings, the event store, the control plane, signing keys.

Built once per process (per WSGI worker) by ``Runtime.open`` and kept on the Flask app as
``app.extensions["odnos"]``; views and jobs reach every part through it, so nothing opens its own
connections. ``close`` releases them at shutdown.

``forward_stop_signals`` makes a stop signal wake the server's main thread, wherever it lands.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tracker.collect.clients import TrustedProxies
from tracker.control.db import ControlPlane
from tracker.settings import Settings, ensure_data_dir, signing_keys
from tracker.store import EventStore, open_store
from tracker.store.migrate import migrate

log = logging.getLogger(__name__)

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
# Sent by this process to its own main thread only; a real-time signal, meant for applications,
# away from SIGRTMIN and SIGUSR1/2 (which ClickHouse's stack traces and profilers use).
POKE = signal.SIGRTMAX - 1
POKE_INTERVAL = 0.5
POKES = 4
_stopping = threading.Event()
_wakeup: dict[str, int] = {}


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

    @cached_property
    def proxies(self) -> TrustedProxies:
        """``ODNOS_TRUSTED_PROXIES``, with its verdicts cached by address, for every ``client_of``."""
        return TrustedProxies(self.settings.trusted_proxies)

    def close(self) -> None:
        """Stop background parts (flushing the ingestion queue) and release connections; idempotent."""
        if self.extras.get("closed"):
            return
        self.extras["closed"] = True
        _stopping.set()
        for closer in self.extras.pop("closers", []):
            closer()
        self.store.close()
        self.reader.close()
        self.control.dispose()


def forward_stop_signals() -> None:
    """Wake the main thread when Ctrl+C or SIGTERM arrives, whichever thread the kernel gave it to.

    Python runs signal handlers only in the main thread, when it next runs Python code. The server's
    main thread sleeps in a lock wait until its stop handler runs, and the kernel may hand a
    process-wide signal to any thread that does not block it (a worker has dozens: chDB's pools,
    the server's own, ours). Such a signal was only marked as caught; the main thread slept on,
    and the server killed the worker after its timeout. Python's C-level handler writes every
    caught signal to the wakeup fd, from any thread: a thread reading it pokes the main thread
    (a few times, until ``Runtime.close`` starts), which wakes the wait and runs the handlers.
    Call it from the main thread of each process (after a fork too: the pipe is per process).
    """
    if threading.current_thread() is not threading.main_thread() or _wakeup.get("pid") == os.getpid():
        return  # handlers can be set from the main thread only; or this process forwards already
    inherited = [_wakeup[end] for end in ("read", "write") if end in _wakeup]  # a fork's copy
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.signal(POKE, lambda signum, frame: None)  # only to break the main thread's wait
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    _wakeup.update(pid=os.getpid(), read=read_fd, write=write_fd)
    for fd in inherited:
        os.close(fd)
    main = threading.main_thread().ident
    threading.Thread(target=_poke_on_stop, args=(read_fd, main), name="odnos-stop-signals",
                     daemon=True).start()


def _poke_on_stop(read_fd: int, main: int) -> None:
    while True:
        if STOP_SIGNALS.intersection(os.read(read_fd, 64)):
            for _ in range(POKES):
                signal.pthread_kill(main, POKE)
                if _stopping.wait(POKE_INTERVAL):
                    break
