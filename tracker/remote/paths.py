"""A forwarded command's file arguments open beside the client, yet read as the user typed them.

The server must not ``chdir`` (one working directory per process, shared by every thread), and a
command prints its file argument back (``data.csv: 10 rows ...``): making the argument absolute
would change that output. A ``BesidePath`` keeps the text the user typed as its ``str`` and gives
the client's absolute path to the operating system (``os.fspath``, which ``open`` and ``stat`` use).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _beside(cwd: str) -> type[Path]:
    """A Path class whose relative paths open in ``cwd`` (paths derived from one keep the class)."""

    class BesidePath(type(Path())):  # type: ignore[misc]  # PosixPath here: Path itself is abstract
        def __fspath__(self) -> str:
            return os.path.join(cwd, str(self))

    return BesidePath


def resolve_paths(args: argparse.Namespace, cwd: str) -> None:
    """Make each relative ``Path`` argument open in the client's working directory ``cwd``."""
    beside = _beside(cwd)
    for name, value in vars(args).items():
        if isinstance(value, Path) and not value.is_absolute():
            setattr(args, name, beside(value))
