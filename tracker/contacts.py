"""Contact identity: normalise an email address and derive the contact id from it.

The id is a pure function of the normalised address, so every collector process, the importer
and the mailer agree on who a person is without a lookup or a shared sequence.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from tracker.errors import OdnosError

# One "@", something on each side, a dot in the domain, no whitespace or angle brackets. Deliverability
# is the mail server's business; this only keeps garbage and display-name forms out of the id space.
_CH = r"[^@\s<>,;\"\x00-\x1f\x7f]"
_EMAIL_RE = re.compile(rf"{_CH}+@{_CH}+\.(?:(?!\.){_CH})+")
_MAX_EMAIL = 254  # RFC 5321 path limit
_ID_PREFIX = b"odnos.contact\x00"


def normalize_email(email: str) -> str:
    """Return the canonical form of an address: stripped, NFC, lower-cased.

    Lower-casing the local part is not strictly RFC-correct, but no real provider treats
    ``Ann@x.com`` and ``ann@x.com`` as different people, and one person must get one id.
    Raises ``OdnosError`` (code ``bad_email``) for anything that is not a plausible address.
    """
    if not isinstance(email, str):
        raise OdnosError("An email address must be a string.", code="bad_email")
    normal = unicodedata.normalize("NFC", email.strip()).lower()
    if len(normal) > _MAX_EMAIL or not _EMAIL_RE.fullmatch(normal):
        shown = normal[:60] + ("..." if len(normal) > 60 else "")
        raise OdnosError(
            f"{shown!r} is not a valid email address (expected something like ann@example.com).",
            code="bad_email",
        )
    local, domain = normal.rsplit("@", 1)
    if len(local) > 64 or domain.startswith(("-", ".")) or ".." in domain:
        raise OdnosError(f"{normal!r} is not a valid email address.", code="bad_email")
    return normal


def contact_id_for(email: str) -> str:
    """Return the deterministic contact id (16 hex chars) of an address.

    64 bits of SHA-256 keep ids short in tokens and URLs; a collision needs billions of contacts.
    """
    digest = hashlib.sha256(_ID_PREFIX + normalize_email(email).encode("utf-8")).hexdigest()
    return digest[:16]
