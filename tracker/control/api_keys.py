"""API keys: issue one with its scopes (its plaintext shown once), verify one on each request, revoke one."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.contacts import normalize_email
from tracker.control.fields import clean_name
from tracker.control.models import ApiKey, Role, User, utcnow
from tracker.errors import NotFound, OdnosError

KEY_SCHEME = "odn"
# What a key may do; each API route requires one. A ``send`` key cannot read contacts.
SCOPES = ("events:write", "contacts:read", "contacts:write", "send", "reports:read")
# last_used_at is refreshed at most this often, so a busy client does not make every request a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def create_api_key(session: Session, user_id: int, name: str,
                   scopes: Iterable[str] = ()) -> tuple[ApiKey, str]:
    """Create a key for a user; return the row and the plaintext ``odn_<prefix>_<secret>``.

    Only a SHA-256 of the secret is stored, so the plaintext cannot be shown again: the caller
    must hand it to the user now. A plain hash suffices (no slow KDF): the secret is 256 random
    bits, not a password a person chose. Raises ``OdnosError`` (``bad_name``, ``bad_scope``) or
    ``NotFound`` (``unknown_user``).
    """
    name = clean_name(name, what="API key name", max_length=100)
    scope_text = ",".join(parse_scopes(scopes))
    if session.get(User, user_id) is None:
        raise NotFound(f"There is no user with id {user_id}.", code="unknown_user")
    prefix = secrets.token_hex(6)  # hex: never contains the "_" that separates the parts
    secret = secrets.token_urlsafe(32)
    key = ApiKey(user_id=user_id, name=name, prefix=prefix, key_hash=_digest(secret), scopes=scope_text)
    session.add(key)
    session.flush()
    return key, f"{KEY_SCHEME}_{prefix}_{secret}"


def parse_scopes(scopes: Iterable[str] | str) -> list[str]:
    """Scope names from a list or a comma-separated text, checked, without repeats, in ``SCOPES`` order.

    Raises ``OdnosError`` (``bad_scope``) naming the unknown one and the valid ones. An empty set is
    allowed (the key authenticates but every route refuses it): callers that ask people for scopes
    require one themselves.
    """
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    wanted = {str(item).strip() for item in items if str(item).strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise OdnosError(f"Unknown API key scope {unknown[0]!r}; valid scopes are {', '.join(SCOPES)}.",
                         code="bad_scope")
    return [scope for scope in SCOPES if scope in wanted]


def key_scopes(key: ApiKey) -> frozenset[str]:
    """The scopes a stored key holds (none for a key made before scopes existed)."""
    return frozenset(scope for scope in key.scopes.split(",") if scope)


def verify_api_key(session: Session, plaintext: str) -> ApiKey | None:
    """The key this plaintext proves, or None; marks the key as used.

    None for a malformed or unknown key, a wrong secret, a revoked key, or a disabled user. The
    hash comparison takes constant time, so timing does not tell how much of a guess was right.
    """
    parts = plaintext.split("_", 2) if isinstance(plaintext, str) else []
    if len(parts) != 3 or parts[0] != KEY_SCHEME:
        return None
    _, prefix, secret = parts
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not hmac.compare_digest(key.key_hash, _digest(secret)):
        return None
    if key.revoked_at is not None or key.user.disabled:
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        key.last_used_at = now
    return key


def revoke_api_key(session: Session, key_id: int) -> ApiKey:
    """Revoke a key for good; the row stays for the audit trail. ``NotFound`` (``unknown_api_key``)."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"There is no API key with id {key_id}.", code="unknown_api_key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every key, newest first, revoked ones included (their rows are the audit trail)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())))


def key_by_prefix(session: Session, prefix: str) -> ApiKey:
    """The key whose prefix is ``prefix`` (as ``odnos apikey list`` shows it, or a whole plaintext key).

    ``NotFound`` (``unknown_api_key``).
    """
    text = prefix.strip()
    if text.startswith(f"{KEY_SCHEME}_"):
        text = text.split("_", 2)[1]
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == text))
    if key is None:
        raise NotFound(f"There is no API key with prefix {prefix!r}; `odnos apikey list` shows them.",
                       code="unknown_api_key")
    return key


def key_owner(session: Session, email: str | None) -> User:
    """The user a new key acts as: the one with this email, or else the first active admin.

    ``NotFound`` (``unknown_user``) when there is no such user, or no admin to default to.
    """
    if email is not None:
        user = session.scalar(select(User).where(User.email == normalize_email(email)))
        if user is None:
            raise NotFound(f"There is no user {email!r}; add one with `odnos user add`.", code="unknown_user")
        return user
    user = session.scalar(select(User).where(User.role == Role.admin, User.disabled.is_(False))
                          .order_by(User.id))
    if user is None:
        raise NotFound("There is no admin user to own the key; name one with --user EMAIL or add one "
                       "with `odnos user add --role admin`.", code="unknown_user")
    return user
