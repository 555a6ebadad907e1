"""The browser-side locks on every page odnos serves to a person: CSP, framing, sniffing, referrers, HSTS.

A page of odnos (sign-in, the dashboard and Dash's own routes, the unsubscribe and survey pages, the
API docs) may run only scripts from odnos's own origin, plus the few inline scripts Dash writes into
its index page, allowed one by one by their hash (``Dash.csp_hashes``) rather than by
``'unsafe-inline'``. Styles may be inline: Mantine and Plotly write ``<style>`` elements at run
time, and an injected style cannot run code. No page may be framed (``frame-ancestors 'none'``, and
``X-Frame-Options`` for older browsers), so the sign-in form cannot be overlaid by another site.

What other sites embed is left alone: the snippet (``/s.js``) keeps its CORS and cache headers and
gets no page policy, and the hot collector routes (beacon, GIF, pixel, click) are answered by
``tracker.collect.frontend`` before Flask, with their own headers (the click redirect sends
``Referrer-Policy: no-referrer``, so the landing page never learns the token).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

EMBEDDED_ENDPOINTS = frozenset({"collect.snippet"})
"""Flask endpoints that other sites load (a ``<script src>``): they get no page policy."""

HSTS = "max-age=31536000"
_DASH_HASHES = "odnos.csp_script_hashes"


def page_policy(script_hashes: list[str]) -> str:
    """The Content-Security-Policy of a page: own origin only, inline scripts by hash."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def page_headers(script_hashes: list[str], https: bool) -> dict[str, str]:
    """Every header a page for a person carries (HSTS only when odnos is reached over https)."""
    headers = {
        "Content-Security-Policy": page_policy(script_hashes),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    if https:
        headers["Strict-Transport-Security"] = HSTS
    return headers


def install(app: Flask) -> None:
    """Add the page headers to every Flask response but the embedded ones; call after the routes exist."""
    https = app.extensions["odnos"].settings.effective_public_url().startswith("https://")

    @app.after_request
    def secure(response: Response) -> Response:
        if request.endpoint in EMBEDDED_ENDPOINTS:
            return response
        for name, value in page_headers(_dash_hashes(app), https).items():
            response.headers.setdefault(name, value)
        return response


def _dash_hashes(app: Flask) -> list[str]:
    """The hashes of Dash's inline scripts, computed once, after every callback is registered."""
    hashes = app.extensions.get(_DASH_HASHES)
    if hashes is None:
        dash_app: Any = app.extensions.get("odnos.dash")
        hashes = app.extensions[_DASH_HASHES] = list(dash_app.csp_hashes()) if dash_app is not None else []
    return hashes
