"""API keys: issue one (its plaintext shown once), verify one on each request, revoke one."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.control.fields import clean_name
from tracker.control.models import ApiKey, User, utcnow
from tracker.errors import NotFound

KEY_SCHEME = "odn"
# last_used_at is refreshed at most this often, so a busy client does not make every request a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def create_api_key(session: Session, user_id: int, name: str) -> tuple[ApiKey, str]:
    """Create a key for a user; return the row and the plaintext ``odn_<prefix>_<secret>``.

    Only a SHA-256 of the secret is stored, so the plaintext cannot be shown again: the caller
    must hand it to the user now. A plain hash suffices (no slow KDF): the secret is 256 random
    bits, not a password a person chose. Raises ``OdnosError`` (``bad_name``) or ``NotFound``
    (``unknown_user``).
    """
    name = clean_name(name, what="API key name", max_length=100)
    if session.get(User, user_id) is None:
        raise NotFound(f"There is no user with id {user_id}.", code="unknown_user")
    prefix = secrets.token_hex(6)  # hex: never contains the "_" that separates the parts
    secret = secrets.token_urlsafe(32)
    key = ApiKey(user_id=user_id, name=name, prefix=prefix, key_hash=_digest(secret))
    session.add(key)
    session.flush()
    return key, f"{KEY_SCHEME}_{prefix}_{secret}"


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
