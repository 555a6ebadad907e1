"""Two-factor sign-in: TOTP secrets, their QR code, single-use recovery codes, and checking a code.

A secret being set up is never stored or put in a cookie: it is derived from the signing key, the
user and a random nonce the setup page holds (``pending_secret``), and only the confirmed secret is
written to the user row, sealed (AES-GCM, bound to the user's id) under a key derived from the
signing keys, so a copy of the control database alone cannot make codes. A sealed secret is 64
characters, a clear one 32: the column holds either, no migration needed. Rotating the signing keys
keeps old seals readable while the old key is still listed; a secret stored in the clear (before
this was so) is sealed at its next use. A TOTP code is accepted once (``users.totp_last_step``),
within one step of the server's clock either way. Recovery codes are shown once and kept as SHA-256
hashes: they are random (50 bits), so a slow hash would add nothing but cost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tracker.control.models import RecoveryCode, User, utcnow

ISSUER = "odnos"
RECOVERY_CODES = 10
STEP_SECONDS = 30
SEALED_LENGTH = 64  # a 12-byte nonce, the 20-byte secret and a 16-byte tag, in base64
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes are typed from paper


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def pending_secret(key: str, user_id: int, nonce: str) -> str:
    """The base32 secret offered to ``user_id`` by the setup page holding ``nonce``."""
    digest = hmac.new(key.encode(), f"totp-setup:{user_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:20]).decode()


def qr_data_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI of the secret as an SVG QR code in a data URI, made here, not fetched."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def code_matches(secret: str, code: str, after_step: int | None, now: float | None = None) -> int | None:
    """The time step ``code`` belongs to (this one or a neighbour), if it is later than ``after_step``."""
    code = "".join(code.split())
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    for step in (current - 1, current, current + 1):
        fresh = after_step is None or step > after_step
        if fresh and hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _sealers(keys: Sequence[str]) -> list[AESGCM]:
    """AES-GCM keys derived from the signing keys, newest first (the first seals)."""
    return [AESGCM(hmac.new(key.encode(), b"odnos totp secrets", hashlib.sha256).digest()) for key in keys]


def seal(keys: Sequence[str], user_id: int, secret: str) -> str:
    """``secret`` (base32, 20 bytes) sealed for ``user_id``: 64 URL-safe characters."""
    nonce = secrets.token_bytes(12)
    sealed = _sealers(keys)[0].encrypt(nonce, base64.b32decode(secret), f"totp:{user_id}".encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(keys: Sequence[str], user_id: int, stored: str) -> str | None:
    """The secret in ``stored``; None when no signing key listed opens it (it was rotated out)."""
    if len(stored) != SEALED_LENGTH:
        return stored  # base32 in the clear, from before secrets were sealed
    raw = base64.urlsafe_b64decode(stored)
    for sealer in _sealers(keys):
        try:
            return base64.b32encode(sealer.decrypt(raw[:12], raw[12:], f"totp:{user_id}".encode())).decode()
        except InvalidTag:
            continue
    return None


def enrol(session: Session, user: User, keys: Sequence[str], secret: str, code: str) -> list[str] | None:
    """Turn on two-factor sign-in with ``secret`` if ``code`` proves the app has it; new recovery codes.

    Returns the recovery codes (shown once, stored hashed) or None when the code is wrong.
    """
    step = code_matches(secret, code, None)
    if step is None:
        return None
    user.totp_secret = seal(keys, user.id, secret)
    user.totp_last_step = step
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(user_id=user.id, code_hash=_hash(c)) for c in codes)
    session.flush()
    return codes


def disable(session: Session, user: User) -> None:
    """Turn two-factor sign-in off for ``user`` and drop their recovery codes."""
    user.totp_secret = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.flush()


def check(session: Session, user: User, keys: Sequence[str], code: str) -> str | None:
    """Accept ``code`` for ``user`` once: ``"totp"``, ``"recovery"`` (that code is now used) or None."""
    if user.totp_secret is None:
        return None
    secret = unseal(keys, user.id, user.totp_secret)
    step = None if secret is None else code_matches(secret, code, user.totp_last_step)
    if step is not None:
        user.totp_last_step = step
        if len(user.totp_secret) != SEALED_LENGTH:
            user.totp_secret = seal(keys, user.id, secret)
        session.flush()
        return "totp"
    found = session.scalar(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                      RecoveryCode.code_hash == _hash(code),
                                                      RecoveryCode.used_at.is_(None)))
    if found is None:
        return None
    found.used_at = utcnow()
    session.flush()
    return "recovery"


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _hash(code: str) -> str:
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()
