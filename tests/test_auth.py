"""The login's `next` parameter can only lead back into odnos, never to another site."""

from __future__ import annotations

import pytest

from tracker.auth import _safe_next


@pytest.mark.parametrize(("target", "expected"), [
    ("/", "/"), ("/sites?x=1", "/sites?x=1"), (None, "/"), ("", "/"),
    ("//evil.example.org/", "/"), ("https://evil.example.org/", "/"), ("/\\evil.example.org", "/"),
    ("javascript:alert(1)", "/"), ("evil", "/"),
])
def test_next_stays_on_this_site(target: str | None, expected: str) -> None:
    assert _safe_next(target) == expected
