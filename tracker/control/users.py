"""Dashboard users: add one with a checked email, role and password; check a password at sign-in;
set a new password; disable one (their sessions end at their next request)."""

from __future__ import annotations

from functools import cache

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from tracker.contacts import normalize_email
from tracker.control.models import Role, User
from tracker.errors import NotFound, OdnosError

# NIST SP 800-63B: at least 8 characters, no composition rules. The upper bound keeps one sign-in
# attempt from making the server hash megabytes.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


def add_user(session: Session, email: str, password: str, role: Role | str) -> User:
    """Add a user (email normalised, password hashed with werkzeug's default, scrypt) and flush it.

    Raises ``OdnosError`` with code ``bad_email``, ``bad_password``, ``bad_role``, or
    ``duplicate_email`` (409) when the address is taken. After ``duplicate_email`` raised by a
    concurrent insert the session must be rolled back, as after any failed flush.
    """
    email = normalize_email(email)
    role = _role(role)
    _check_password(password)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise _duplicate(email)
    user = User(email=email, password_hash=generate_password_hash(password), role=role)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # another process added the same address since our check
        raise _duplicate(email) from exc
    return user


def check_password(session: Session, email: str, password: str) -> User | None:
    """The user with this email and password, or None.

    None also for a disabled user, a malformed email, or a password that is not a string (a JSON
    body may send one). An unknown address costs the same hashing as a known one, so response
    times do not reveal which addresses have accounts.
    """
    try:
        user = session.scalar(select(User).where(User.email == normalize_email(email)))
    except OdnosError:
        user = None
    if not isinstance(password, str):
        return None
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password) or user.disabled:
        return None
    return user


def active_user(session: Session, user_id: object) -> User | None:
    """The user with this id if they may still use the dashboard: None when deleted or disabled.

    One primary-key lookup: it runs on every dashboard request.
    """
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    return None if user is None or user.disabled else user


def set_password(session: Session, email: str, password: str, role: Role | str | None = None) -> User:
    """Give the user with this email a new password (and ``role``, when given) and flush.

    ``NotFound`` (code ``unknown_user``) when there is none; ``bad_password`` and ``bad_role`` as for
    ``add_user``. Sessions stay valid: the cookie names the user, not the password.
    """
    new_role = None if role is None else _role(role)
    _check_password(password)
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"There is no user with the email {email!r}.", code="unknown_user")
    user.password_hash = generate_password_hash(password)
    if new_role is not None:
        user.role = new_role
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    """Every user, disabled ones too, in the order they were added."""
    return list(session.scalars(select(User).order_by(User.id)))


def set_disabled(session: Session, email: str, disabled: bool = True) -> User:
    """Disable (or enable again) the user with this email and flush; ``NotFound`` when there is none.

    A disabled user cannot sign in, their open sessions end at their next request, and their API
    keys stop working.
    """
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"There is no user with the email {email!r}.", code="unknown_user")
    user.disabled = disabled
    session.flush()
    return user


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(Role)
        raise OdnosError(f"Unknown role {value!r}; choose one of {choices}.", code="bad_role") from None


def _check_password(password: str) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise OdnosError(
            f"A password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
            code="bad_password",
        )


def _duplicate(email: str) -> OdnosError:
    return OdnosError(f"A user with the email {email!r} exists already.", code="duplicate_email", status=409)


@cache
def _dummy_hash() -> str:
    """A hash made like real ones, for timing-equal failures; computed once, on first need."""
    return generate_password_hash("odnos-no-such-user")
