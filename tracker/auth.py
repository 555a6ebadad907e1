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
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for

from tracker.collect.clients import client_of
from tracker.control.users import active_user, check_password
from tracker.signin_throttle import SigninThrottle

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


def csrf_token() -> str:
    """This session's token for forms that change something (sign-in and sign-out included)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def _csrf_ok() -> bool:
    sent = request.form.get("csrf", "")
    return bool(sent) and hmac.compare_digest(sent, session.get("csrf", ""))


def _throttle() -> SigninThrottle:
    return current_app.extensions.setdefault("odnos.signin_throttle", SigninThrottle())


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", error=None, csrf=csrf_token())
    if not _csrf_ok():
        return render_template("login.html", error="The form expired; please sign in again.",
                               csrf=csrf_token()), 400
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    account = "account:" + email.strip().lower()
    keys = (account, "address:" + client_of(request.environ, _runtime().settings.trusted_proxies).ip)
    wait = _throttle().wait_for(keys)
    if wait > 0:
        message = f"Too many failed sign-ins; try again in {int(wait) + 1} s."
        return render_template("login.html", error=message, csrf=csrf_token()), 429
    with _runtime().control.session() as db:
        user = check_password(db, email, password)
        if user is not None:
            _throttle().succeeded(account)
            session.clear()  # a new session at sign-in: nothing from before it carries over
            session["user_id"] = user.id  # all the cookie holds: the rest is read per request
            return redirect(_safe_next(request.args.get("next")))
    _throttle().failed(keys)
    return render_template("login.html", error="Wrong email or password.", csrf=csrf_token()), 401


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    if not _csrf_ok():
        return redirect(url_for("auth.login"))  # a forged sign-out changes nothing
    session.clear()
    return redirect(url_for("auth.login"))
