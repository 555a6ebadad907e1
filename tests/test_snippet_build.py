"""The snippet the collector serves: within the size budget, and the build of the committed source."""

from __future__ import annotations

import gzip
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVED = ROOT / "tracker" / "static" / "s.js"
BUDGET = 1536  # bytes gzipped (shared/design.md)


def test_served_snippet_is_within_the_budget() -> None:
    size = len(gzip.compress(SERVED.read_bytes(), compresslevel=9, mtime=0))
    assert size <= BUDGET, f"s.js is {size} bytes gzipped, over the {BUDGET}-byte budget"


def test_served_snippet_is_the_committed_build() -> None:
    assert SERVED.read_bytes() == (ROOT / "js-snippet" / "dist" / "s.js").read_bytes()
