"""Who may see what: a session login for the people who use the dashboard.

``login_required`` guards every dashboard page (a browser is sent to the login form and back).
Passwords are checked by ``tracker.control.users``; the session cookie is signed with the newest
key (older keys still verify, so rotation logs nobody out). The cookie only names the user: every
request re-reads that user by primary key (``current_user``), so disabling or deleting someone ends
their sessions at their next request, and a changed role applies at once. API keys
(``tracker.control.api_keys``) will guard the API routes when they land.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for

from tracker.control.users import active_user, check_password

bp = Blueprint("auth", __name__)


def _runtime() -> Any:
    return current_app.extensions["odnos"]


@dataclass(frozen=True)
class SignedIn:
    """The user a request acts for, as the control database has them now."""

    id: int
    email: str
    role: str


def current_user() -> SignedIn | None:
    """The signed-in user of this request, or None (and the session cleared) if there is none.

    The user is read by primary key once per request and kept in ``g``: a user disabled or deleted
    since signing in is logged out by their next request, not when their cookie expires.
    """
    if "odnos_user" in g:
        return g.odnos_user
    user = None
    user_id = session.get("user_id")
    if user_id is not None:
        with _runtime().control.session() as db:
            found = active_user(db, user_id)
            if found is not None:
                user = SignedIn(found.id, found.email, str(found.role))
        if user is None:
            session.clear()
    g.odnos_user = user
    return user


def login_required(view: Callable) -> Callable:
    """Send a browser that is not signed in (or whose user was disabled) to the login form, then back."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        g.user_email = user.email
        return view(*args, **kwargs)

    return wrapped


def _safe_next(target: str | None) -> str:
    """Only same-site paths: ``next`` must never become an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        email = request.form.get("email", "")
        password = request.form.get("password", "")
        with _runtime().control.session() as db:
            user = check_password(db, email, password)
            if user is not None:
                session.clear()
                session["user_id"] = user.id  # all the cookie holds: the rest is read per request
                return redirect(_safe_next(request.args.get("next")))
        error = "Wrong email or password."
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    session.clear()
    return redirect(url_for("auth.login"))
