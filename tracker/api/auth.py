"""Who may call the API: a Bearer API key, its scopes, and a per-key rate limit.

``require(scope)`` wraps a route: it reads ``Authorization: Bearer odn_...``, verifies the key in
the control database, refuses a key without the scope, and counts the key's requests in a token
bucket (``api_rate_per_second`` refilling up to ``api_burst``). The buckets live in this worker's
memory: a limit per worker needs no shared state and no write per request, at the price of a
client spread over N workers getting up to N times the rate.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, request

from tracker.control.api_keys import SCOPES, key_scopes, verify_api_key
from tracker.errors import OdnosError


class ApiRefusal(OdnosError):
    """An authentication, permission or rate refusal, with the HTTP headers that go with it."""

    def __init__(self, message: str, *, code: str, status: int,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, code=code, status=status)
        self.headers = headers or {}


@dataclass(frozen=True)
class CallingKey:
    """The API key a request acts with, copied out of its control-database session."""

    id: int
    prefix: str
    name: str
    user_id: int
    scopes: frozenset[str]


def actor() -> str:
    """The audit log's name for who acts in this request (``tracker.audit``): the key, by its prefix."""
    return f"api-key:{g.api_key.prefix}"


class RateLimiter:
    """Token buckets per key: ``rate`` requests a second, up to ``burst`` at once; thread-safe."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time)
        self._lock = threading.Lock()

    def wait_for(self, key: str) -> float:
        """Take one request from ``key``'s bucket: 0 when allowed, else the seconds until one would be."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def _limiter() -> RateLimiter:
    limiter = current_app.extensions.get("odnos.api_limiter")
    if limiter is None:
        settings = current_app.extensions["odnos"].settings
        limiter = current_app.extensions.setdefault(
            "odnos.api_limiter", RateLimiter(settings.api_rate_per_second, settings.api_burst))
    return limiter


def _calling_key() -> CallingKey:
    header = request.headers.get("Authorization", "")
    scheme, _, plaintext = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="odnos"'}
    if not header:
        raise ApiRefusal("This route needs an API key: send `Authorization: Bearer odn_...` "
                         "(make one with `odnos apikey create`).", code="missing_key", status=401,
                         headers=challenge)
    if scheme.lower() != "bearer" or not plaintext.strip():
        raise ApiRefusal("The Authorization header must be `Bearer odn_...`.", code="bad_key", status=401,
                         headers=challenge)
    with current_app.extensions["odnos"].control.session() as db:
        key = verify_api_key(db, plaintext.strip())
        found = None if key is None else CallingKey(key.id, key.prefix, key.name, key.user_id,
                                                    key_scopes(key))
    if found is None:
        raise ApiRefusal("This API key is unknown, revoked, or its user is disabled.", code="bad_key",
                         status=401, headers=challenge)
    return found


def require(scope: str) -> Callable[[Callable], Callable]:
    """Guard a route: a valid key holding ``scope``, within its rate; the key goes on ``flask.g.api_key``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            key = _calling_key()
            wait = _limiter().wait_for(key.prefix)
            if wait > 0:
                raise ApiRefusal(f"This API key sends too fast; retry in {math.ceil(wait)} s.",
                                 code="rate_limited", status=429,
                                 headers={"Retry-After": str(math.ceil(wait))})
            if scope not in key.scopes:
                held = ", ".join(sorted(key.scopes)) or "none"
                raise ApiRefusal(f"This API key lacks the scope {scope!r} (it holds: {held}).",
                                 code="missing_scope", status=403)
            g.api_key = key
            return view(*args, **kwargs)

        # The scope the route needs, for whoever lists the routes (the document must name the same).
        guarded.required_scope = scope  # type: ignore[attr-defined]
        return guarded

    return decorate
