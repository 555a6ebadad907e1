"""Who may see what: a session login for the people who use the dashboard.

``login_required`` guards every dashboard page (a browser is sent to the login form and back).
Passwords are checked by ``tracker.control.users``; the session cookie is signed with the newest
key (older keys still verify, so rotation logs nobody out). API keys (``tracker.control.api_keys``)
will guard the API routes when they land.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for

from tracker.control.users import check_password

bp = Blueprint("auth", __name__)


def _runtime() -> Any:
    return current_app.extensions["odnos"]


def login_required(view: Callable) -> Callable:
    """Send an anonymous browser to the login form, then back to where it was going."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if "user_id" not in session:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        g.user_email = session.get("email")
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
                session["user_id"] = user.id
                session["email"] = user.email
                session["role"] = str(user.role)
                return redirect(_safe_next(request.args.get("next")))
        error = "Wrong email or password."
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    session.clear()
    return redirect(url_for("auth.login"))
