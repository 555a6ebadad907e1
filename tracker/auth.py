"""Who may see what: a session login for the people who use the dashboard.

``login_required`` guards every dashboard page (a browser is sent to the login form and back).
Passwords are checked by ``tracker.control.users``; the session cookie is signed with the newest
key (older keys still verify, so rotation logs nobody out). The cookie names the user, the user's
session version at sign-in, a fresh random session id, and when it was signed in and last used.
Every request re-reads that user by primary key (``current_user``), so:

- disabling or deleting someone ends their sessions at their next request, and a changed role
  applies at once;
- signing out, or a new password, raises the user's ``session_version`` (``end_sessions``), which
  ends every session of that user, in every browser, at its next request;
- a session unused for ``session_idle_timeout`` seconds, or older than ``session_max_age``, ends;
- once ``admin_two_factor`` is on, an admin without a second factor is out until they set one up.

Sign-in clears whatever the browser's session held before (a session planted before sign-in is
never the one that is signed in).
"""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from sqlalchemy import update
from sqlalchemy.orm import Session

from tracker import audit, two_factor
from tracker.collect.clients import client_of
from tracker.control.models import User
from tracker.control.users import active_user, check_password
from tracker.signin_throttle import SigninThrottle

bp = Blueprint("auth", __name__)

PENDING_SECONDS = 300
"""How long after the password the second step may come."""


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

    The user is read by primary key once per request and kept in ``g``: a user disabled, deleted,
    signed out elsewhere or given a new password since this session began is out at their next
    request, not when their cookie expires; so is a session past its idle or absolute limit.
    """
    if "odnos_user" in g:
        return g.odnos_user
    user = None
    user_id = session.get("user_id")
    if user_id is not None:
        now = int(time.time())
        if _session_alive(now):
            with _runtime().control.session() as db:
                found = active_user(db, user_id)
                if (found is not None and found.session_version == session.get("version")
                        and not _must_enrol(found)):
                    user = SignedIn(found.id, found.email, str(found.role))
        if user is None:
            session.clear()
        elif now != session.get("seen"):
            session["seen"] = now
    g.odnos_user = user
    return user


def _session_alive(now: int) -> bool:
    settings = _runtime().settings
    signed_in, seen = session.get("signed_in"), session.get("seen")
    if not isinstance(signed_in, int) or not isinstance(seen, int):
        return False  # a cookie from before session limits: sign in again
    return now - signed_in <= settings.session_max_age and now - seen <= settings.session_idle_timeout


def start_session(user: User) -> None:
    """Sign ``user`` in: a new session (nothing from before it carries over) bound to their version."""
    now = int(time.time())
    session.clear()
    session.update(user_id=user.id, version=user.session_version, sid=secrets.token_urlsafe(16),
                   signed_in=now, seen=now)


def end_sessions(db: Session, user_id: int) -> None:
    """End every session of this user, in every browser, at its next request (sign-out, new password)."""
    db.execute(update(User).where(User.id == user_id).values(session_version=User.session_version + 1))


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
    keys = (account, _address_key())
    wait = _throttle().wait_for(keys)
    if wait > 0:
        return render_template("login.html", error=_too_many(wait), csrf=csrf_token()), 429
    with _runtime().control.session() as db:
        user = check_password(db, email, password)
        if user is not None:
            _throttle().succeeded(account)
            return _after_password(db, user)
        audit.record(db, email.strip().lower(), "signin_failed", email.strip().lower(),
                     {"address": _address()})
    _throttle().failed(keys)
    return render_template("login.html", error="Wrong email or password.", csrf=csrf_token()), 401


def _after_password(db: Session, user: User) -> Any:
    """The password was right: sign in, or first ask for the second factor (or for setting one up)."""
    next_path = _safe_next(request.args.get("next"))
    if user.totp_secret is None and not _must_enrol(user):
        _signed_in(db, user, "password")
        return redirect(next_path)
    session.clear()  # nothing signed in yet: the pending step names the user, nothing more
    session["pending"] = {"user": user.id, "version": user.session_version, "at": int(time.time()),
                          "next": next_path, "nonce": two_factor.new_nonce()}
    return redirect(url_for("auth.code" if user.totp_secret is not None else "auth.setup"))


def _must_enrol(user: User) -> bool:
    """An admin without a second factor where admins must have one: not signed in until they set it up."""
    return user.totp_secret is None and user.role == "admin" and _runtime().settings.admin_two_factor


def _pending_user(db: Session) -> User | None:
    """The user who gave their password in the last few minutes and still may sign in, or None."""
    pending = session.get("pending")
    if not isinstance(pending, dict) or int(time.time()) - pending.get("at", 0) > PENDING_SECONDS:
        return None
    user = active_user(db, pending.get("user"))
    return user if user is not None and user.session_version == pending.get("version") else None


@bp.route("/login/code", methods=["GET", "POST"])
def code() -> Any:
    """The second step of a sign-in: a code from the authenticator app, or one recovery code."""
    with _runtime().control.session() as db:
        user = _pending_user(db)
        if user is None or user.totp_secret is None:
            return redirect(url_for("auth.login"))
        if request.method == "GET":
            return render_template("login_code.html", error=None, csrf=csrf_token())
        if not _csrf_ok():
            return render_template("login_code.html", error="The form expired; please try again.",
                                   csrf=csrf_token()), 400
        keys = (f"code:{user.id}", _address_key())
        wait = _throttle().wait_for(keys)
        if wait > 0:
            return render_template("login_code.html", error=_too_many(wait), csrf=csrf_token()), 429
        factor = two_factor.check(db, user, _runtime().keys, request.form.get("code", ""))
        if factor is None:
            audit.record(db, user.email, "signin_code_failed", user.email, {"address": _address()})
            _throttle().failed(keys)
            return render_template("login_code.html", error="That code is not right (or was used already).",
                                   csrf=csrf_token()), 401
        _throttle().succeeded(keys[0])
        next_path = session["pending"]["next"]
        _signed_in(db, user, factor)
        return redirect(next_path)


@bp.route("/login/setup", methods=["GET", "POST"])
def setup() -> Any:
    """An admin who must use two-factor sign-in and has none yet sets it up before signing in."""
    with _runtime().control.session() as db:
        user = _pending_user(db)
        if user is None or user.totp_secret is not None:
            return redirect(url_for("auth.login"))
        secret = two_factor.pending_secret(_runtime().keys[0], user.id, session["pending"]["nonce"])
        page = {"secret": secret, "qr": two_factor.qr_data_uri(secret, user.email), "codes": None}
        if request.method == "GET":
            return render_template("login_setup.html", error=None, csrf=csrf_token(), **page)
        if not _csrf_ok():
            return render_template("login_setup.html", error="The form expired; please try again.",
                                   csrf=csrf_token(), **page), 400
        codes = two_factor.enrol(db, user, _runtime().keys, secret, request.form.get("code", ""))
        if codes is None:
            return render_template("login_setup.html", error="That code is not right; check the app's clock.",
                                   csrf=csrf_token(), **page), 401
        next_path = session["pending"]["next"]
        audit.record(db, user.email, "two_factor_on", user.email, {"at": "sign-in"})
        _signed_in(db, user, "totp")
        return render_template("login_setup.html", error=None, csrf=csrf_token(), secret=None, qr=None,
                               codes=codes, next=next_path)


def _signed_in(db: Session, user: User, factor: str) -> None:
    start_session(user)
    audit.record(db, user.email, "signin", user.email, {"address": _address(), "factor": factor})


def _address() -> str:
    return client_of(request.environ, _runtime().proxies).ip


def _address_key() -> str:
    return "address:" + _address()


def _too_many(wait: float) -> str:
    return f"Too many failed sign-ins; try again in {int(wait) + 1} s."


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    if not _csrf_ok():
        return redirect(url_for("auth.login"))  # a forged sign-out changes nothing
    user = current_user()
    if user is not None:
        with _runtime().control.session() as db:
            end_sessions(db, user.id)
            audit.record(db, user.email, "signout", user.email)
    session.clear()
    return redirect(url_for("auth.login"))
