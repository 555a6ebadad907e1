"""Who may reach what in the dashboard: every Dash route needs a login, every callback a role.

The guard does not trust a hand-written list of routes. ``protect`` records every URL rule Dash
adds to the Flask server (pages, layout, dependencies, callbacks, component suites, assets, the
catch-all) and refuses them to anonymous requests: a browser asking for a page is sent to the
login form, anything else gets a JSON 401. Callbacks are checked one by one: each is registered
through ``callback`` with the least role that may run it, and ``_dash-update-component`` refuses a
callback whose role the user lacks, or one that was registered some other way (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from dash import ClientsideFunction, Dash
from flask import Flask, current_app, jsonify, redirect, request, url_for

from tracker.auth import current_user

ROLE_RANK = {"viewer": 0, "marketer": 1, "admin": 2}
"""A role may do what every role ranked below it may do."""

_CALLBACK_ROLES = "odnos.callback_roles"


def has_role(user_role: str, needed: str) -> bool:
    """May a user with ``user_role`` do what needs ``needed``?"""
    return ROLE_RANK.get(user_role, -1) >= ROLE_RANK[needed]


def callback(app: Dash, *args: Any, role: str = "viewer", **kwargs: Any) -> Callable:
    """``app.callback`` that records the least role allowed to run it (``viewer`` reads only)."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")
    before = set(app.callback_map)
    register = app.callback(*args, **kwargs)  # Dash files the callback here, before decorating
    roles = app.server.extensions.setdefault(_CALLBACK_ROLES, {})
    for key in set(app.callback_map) - before:
        roles[key] = role
    return register


def clientside_callback(app: Dash, function: ClientsideFunction, *args: Any, role: str = "viewer",
                        **kwargs: Any) -> None:
    """``app.clientside_callback`` with its role recorded: it runs in the browser and reaches no data,
    but every callback in the app has a role, so none is forgotten."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")
    before = set(app.callback_map)
    app.clientside_callback(function, *args, **kwargs)
    roles = app.server.extensions.setdefault(_CALLBACK_ROLES, {})
    for key in set(app.callback_map) - before:
        roles[key] = role


def protect(server: Flask, make_dash: Callable[[], Dash]) -> Dash:
    """Build the Dash app with ``make_dash`` and put every route it adds behind the login."""
    existing = {rule.endpoint for rule in server.url_map.iter_rules()}
    dash_endpoints: set[str] = set()

    @server.before_request
    def guard() -> Any:
        if request.endpoint not in dash_endpoints:
            return None
        user = current_user()
        if user is None:
            if request.method == "GET" and not request.path.startswith(_internal_prefix(app)):
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            return _refuse(401, "login_required", "sign in first")
        if request.method == "POST" and not _same_origin():
            return _refuse(403, "cross_origin", "requests from other sites are refused")
        if request.endpoint == app.config.routes_pathname_prefix + "_dash-update-component":
            return _check_callback(server, user.role)
        return None

    app = make_dash()
    dash_endpoints.update(rule.endpoint for rule in server.url_map.iter_rules()
                          if rule.endpoint not in existing)
    server.extensions["odnos.dash_endpoints"] = frozenset(dash_endpoints)
    server.extensions["odnos.dash"] = app
    return app


def _same_origin() -> bool:
    """A browser names the page that sent a POST; one from another site never reaches a callback.

    With SameSite=Lax cookies and JSON bodies a cross-site POST already arrives without the session,
    so this is the second lock on the door, not the only one.
    """
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return True  # not a browser's request: it has no one else's cookie to ride on
    sender = urlsplit(origin).netloc
    public = urlsplit(current_app.extensions["odnos"].settings.effective_public_url()).netloc
    return sender in (request.host, public)  # behind a proxy the Host header may be the inner one


def _internal_prefix(app: Dash) -> str:
    return app.config.routes_pathname_prefix + "_"


def _check_callback(server: Flask, role: str) -> Any:
    body = request.get_json(silent=True) or {}
    output = body.get("output")
    needed = server.extensions.get(_CALLBACK_ROLES, {}).get(output) if isinstance(output, str) else None
    if needed is None:
        return _refuse(400, "unknown_callback", "no such callback")
    if not has_role(role, needed):
        inputs = _values(body.get("inputs"))
        if inputs and not any(inputs):
            # Dash calls a callback whose button a page just drew, unclicked, when its output (the URL)
            # lies outside the page; nothing to refuse yet, and nothing runs: "no update".
            return "", 204
        return _refuse(403, "forbidden", f"your role ({role}) may not do this; it needs {needed}")
    return None


def _values(inputs: Any) -> list[Any]:
    """The values of a callback request's inputs (pattern-matching ones come as lists)."""
    if isinstance(inputs, dict):
        return [inputs.get("value")]
    if isinstance(inputs, list):
        return [value for item in inputs for value in _values(item)]
    return []


def _refuse(status: int, code: str, message: str) -> Any:
    return jsonify({"error": {"code": code, "message": message}}), status
