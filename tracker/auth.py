"""Who may see what: a session login for people, API keys for programs, on every private route.

``login_required`` guards dashboard pages (a browser is sent to the login form); ``api_auth`` guards
API routes and accepts either a logged-in session or ``Authorization: Bearer odn_...``, answering a
JSON 401 otherwise. Passwords and keys are checked by ``tracker.control``; the session cookie is
signed with the newest key (older keys still verify, so rotation logs nobody out).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, session, url_for

from tracker.control.api_keys import verify_api_key
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


def api_auth(view: Callable) -> Callable:
    """Allow a logged-in session or a valid API key; otherwise a JSON 401."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if "user_id" in session:
            return view(*args, **kwargs)
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            with _runtime().control.session() as db:
                key = verify_api_key(db, header[7:].strip())
            if key is not None:
                return view(*args, **kwargs)
        return jsonify({"error": {"code": "unauthorized", "message": "log in, or send an API key as "
                                  "'Authorization: Bearer odn_...'"}}), 401

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
