"""Per-thread standard streams: a forwarded command's prints go to its caller, the server's stay put.

A command writes with ``print`` (to whatever ``sys.stdout`` is at that moment), so routing its
output means replacing ``sys.stdout``, ``sys.stderr`` and ``sys.stdin`` for the whole process. The
``Router`` installed once in their place sends each call to the current thread's target when one is
set (``routed``) and to the real stream otherwise: the server's own threads never notice.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_targets = threading.local()
_install_guard = threading.Lock()
STREAMS = ("stdin", "stdout", "stderr")


class Router:
    """Stands in for one of ``sys``'s streams; each thread sees its own target or the real stream."""

    def __init__(self, name: str, real: TextIO | None) -> None:
        self._name = name
        self._real = real

    def _target(self) -> Any:
        return getattr(_targets, self._name, None) or self._real

    def write(self, text: str) -> int:
        target = self._target()
        return len(text) if target is None else target.write(text)

    def flush(self) -> None:
        target = self._target()
        if target is not None:
            target.flush()

    def isatty(self) -> bool:
        target = self._target()
        return target is not None and target.isatty()

    def __getattr__(self, name: str) -> Any:  # readline, fileno, encoding, ...: the target's own
        return getattr(self._target(), name)


def install() -> None:
    """Put a ``Router`` in place of ``sys.stdin``, ``sys.stdout`` and ``sys.stderr`` (once per process)."""
    with _install_guard:
        for name in STREAMS:
            current = getattr(sys, name)
            if not isinstance(current, Router):
                setattr(sys, name, Router(name, current))


@contextmanager
def routed(stdout: TextIO, stderr: TextIO, stdin: TextIO | None = None) -> Iterator[None]:
    """In this thread, until the block ends, the standard streams are these (stdin: an empty one)."""
    _targets.stdout, _targets.stderr = stdout, stderr
    _targets.stdin = io.StringIO() if stdin is None else stdin
    try:
        yield
    finally:
        for name in STREAMS:
            setattr(_targets, name, None)
