"""Signed tokens for tracked email: make and check click, open, unsubscribe, hand-off, survey tokens.

Every open, click and unsubscribe must be tied to one contact and one message without a database
lookup on the hot path, and must never be forgeable: the facts travel inside the token, signed with
``itsdangerous``. Keys rotate: the newest key signs, every configured key verifies, so links
already sitting in inboxes keep working after a rotation until their key is removed.

Each kind has its own salt, so a token of one kind never verifies as another (an open pixel
token cannot be replayed as an unsubscribe). Payloads are JSON lists, not dicts, to keep tracked
URLs short; itsdangerous compresses them only when that makes them shorter.

Click and open tokens say when their message was sent, for the "too fast" rule of
``enrich/email_machines.py``. The signing time is the send time only when the message leaves as its
tokens are signed (odnos's own mailer): that is the default, and the payload stays as it always was
(``[contact, message, link, target]``, ``[contact, message]``), so every token already in an inbox
keeps its meaning. A token made for another mail tool ends its list with the send time in Unix
seconds when the maker knows it, or with ``null`` when it does not.

The redirect target of a click token is checked by ``safe_target`` both when the token is made
and when it is read, so even a token signed with a leaked key cannot redirect to ``javascript:``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from tracker.contacts import normalize_email
from tracker.errors import ConfigError, InvalidToken, OdnosError

DEFAULT_MAX_AGE = 400 * 24 * 3600  # email is read months later; a year plus a margin
DEFAULT_HANDOFF_MAX_AGE = 24 * 3600  # the hand-off is consumed by the landing page within seconds
MAX_TARGET = 2048
MAX_TOKEN = 2048
# Collectors on different machines sign and read each other's tokens; tolerate that much clock skew
# before calling a token "from the future".
MAX_CLOCK_SKEW = 300

CAMPAIGN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""A campaign id that senders name themselves (`odnos link --campaign`, the API's tracking routes):
it becomes the message id in tokens and ``campaign_id`` in reports, so plain ASCII, short."""
_TOKEN_RE = re.compile(rb"[A-Za-z0-9_\-.]+")
_HOST_RE = re.compile(r"[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*\.?")
_IPV6_RE = re.compile(r"[0-9a-f:.]+")
_ASCII_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
_SALT = {kind: f"odnos.{kind}.v1" for kind in ("click", "open", "unsubscribe", "handoff", "survey")}
TRAP_LINK_ID = "_trap"
"""The link id of the invisible trap link every message carries: only a machine follows it."""
MAX_SURVEY_QUESTION = 200


class SendTime(enum.Enum):
    """A send time a token states without a clock reading of its own."""

    AT_SIGNING = "at_signing"  # the message leaves as its tokens are signed, as odnos's mailer does


SentAt = float | None | Literal[SendTime.AT_SIGNING]
"""What ``click`` and ``open`` take: Unix seconds, ``None`` for unknown, or ``SendTime.AT_SIGNING``."""


@dataclass(frozen=True, slots=True)
class ClickToken:
    """A verified click token. ``sent_at`` is the message's send time (Unix seconds), None if unknown."""

    contact_id: str
    message_id: str | int
    link_id: str | int
    target: str
    issued_at: int
    sent_at: int | None


@dataclass(frozen=True, slots=True)
class OpenToken:
    """A verified open-pixel token; ``sent_at`` as in ``ClickToken``."""

    contact_id: str
    message_id: str | int
    issued_at: int
    sent_at: int | None


@dataclass(frozen=True, slots=True)
class SurveyToken:
    """A verified survey answer: ``score`` (0-10) given to ``question``; ``sent_at`` as in ``ClickToken``."""

    contact_id: str
    message_id: str | int
    question: str
    score: int
    issued_at: int
    sent_at: int | None


@dataclass(frozen=True, slots=True)
class UnsubscribeToken:
    contact_id: str
    list_id: str
    issued_at: int


def _bad_target(url: object, why: str) -> InvalidToken:
    shown = repr(url)[:80]
    return InvalidToken(f"Redirect target {shown} is not allowed: {why}.", code="bad_target")


def _ascii_url(url: str) -> str:
    """Return ``url`` with a non-ASCII host IDNA-encoded and other non-ASCII text percent-encoded.

    That is what a browser sends anyway; doing it here keeps the signed target and the
    ``Location`` header plain ASCII.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if not netloc.isascii():
            if "@" in netloc:
                raise _bad_target(url, "non-ASCII user info")
            host, colon, port = netloc.partition(":")
            netloc = host.encode("idna").decode("ascii") + colon + port
    except (ValueError, UnicodeError) as exc:
        raise _bad_target(url, "the host name cannot be encoded") from exc

    def enc(text: str) -> str:
        return quote(text, safe=_ASCII_PRINTABLE)

    return urlunsplit((parts.scheme, netloc, enc(parts.path), enc(parts.query), enc(parts.fragment)))


def safe_target(url: str) -> str:
    """Return ``url`` if a tracked link may redirect there, else raise ``InvalidToken(bad_target)``.

    Only absolute http(s) URLs with a host; no control characters, whitespace or backslashes in the
    authority (browsers read ``\\`` as ``/``, so ``https://evil\\@good`` would go to ``evil``).
    Non-ASCII text is encoded (see ``_ascii_url``), so the result is always ASCII.
    """
    if not isinstance(url, str) or not url:
        raise _bad_target(url, "it must be a non-empty string")
    if len(url) > MAX_TARGET:
        raise _bad_target(url, f"it is {len(url)} characters long, the limit is {MAX_TARGET}")
    for ch in url:
        if ch < " " or ch == "\x7f" or ch.isspace():
            raise _bad_target(url, "it contains whitespace or a control character")
    if not url.isascii():
        url = _ascii_url(url)
        if len(url) > MAX_TARGET:
            raise _bad_target(url, f"encoded, it is longer than {MAX_TARGET} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise _bad_target(url, "it is not a well-formed URL") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise _bad_target(url, "only absolute http and https URLs are allowed")
    if "\\" in parts.netloc:
        raise _bad_target(url, "it has a backslash in the host part")
    if not host or not (_HOST_RE.fullmatch(host) or ("[" in parts.netloc and _IPV6_RE.fullmatch(host))):
        raise _bad_target(url, "it has no valid host")
    return url


def _is_id(value: object, *, allow_int: bool, allow_empty: bool = False) -> bool:
    if isinstance(value, str):
        return bool(value) or allow_empty
    return allow_int and isinstance(value, int) and not isinstance(value, bool)


def _check_id(name: str, value: object, *, allow_int: bool, allow_empty: bool = False) -> None:
    """Reject ids of a type the reader would refuse, so a bad call fails where it is made."""
    if not _is_id(value, allow_int=allow_int, allow_empty=allow_empty):
        kind = "string or integer" if allow_int else "non-empty string"
        raise ValueError(f"{name} must be a {kind}, got {value!r}")


class _ClockedSigner(TimestampSigner):
    """A TimestampSigner whose clock the codec chooses, so tests can move time."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class TokenCodec:
    """Make and read every kind of token with one ordered list of keys (newest first)."""

    def __init__(
        self,
        keys: Sequence[str],
        *,
        max_age: int = DEFAULT_MAX_AGE,
        handoff_max_age: int = DEFAULT_HANDOFF_MAX_AGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(keys, str | bytes):
            raise ConfigError(
                "Secret keys must be a list, newest first; split ODNOS_SECRET_KEYS on commas "
                "(for example ODNOS_SECRET_KEYS=newkey,oldkey)."
            )
        keys = list(keys)
        if not keys or not all(isinstance(k, str) and k for k in keys):
            raise ConfigError(
                "At least one non-empty secret key is needed to sign tokens "
                "(set ODNOS_SECRET_KEYS=newkey,oldkey)."
            )
        self.keys = tuple(keys)  # newest first, as given
        self._clock = clock
        self._max_age = {"click": max_age, "open": max_age, "unsubscribe": max_age}
        self._max_age["handoff"] = handoff_max_age
        self._max_age["survey"] = max_age
        # itsdangerous signs with the LAST key of its list; ours is newest first.
        oldest_first = list(reversed(keys))
        self._serializers = {
            kind: URLSafeTimedSerializer(
                oldest_first, salt=salt, signer=_ClockedSigner, signer_kwargs={"clock": clock}
            )
            for kind, salt in _SALT.items()
        }

    # -- making ---------------------------------------------------------------------------------

    def _dump(self, kind: str, payload: list) -> str:
        token = self._serializers[kind].dumps(payload)
        if len(token) > MAX_TOKEN:
            raise InvalidToken(
                f"The {kind} token would be {len(token)} characters, over the {MAX_TOKEN} limit; "
                "shorten the target URL or the ids.",
                code="bad_target" if kind == "click" else "bad_token",
            )
        return token

    def _sent_field(self, kind: str, sent_at: SentAt) -> list:
        """The payload's tail for ``sent_at``: nothing (sent when signed), ``[seconds]`` or ``[None]``.

        A send time further from now than a token lives is a user's mistake (a wrong year), not a
        schedule: ``OdnosError(bad_sent_at)``, which the CLI and the API show as it is.
        """
        if sent_at is SendTime.AT_SIGNING:
            return []
        if sent_at is None:
            return [None]
        if isinstance(sent_at, bool) or not isinstance(sent_at, int | float) or not math.isfinite(sent_at):
            raise ValueError(f"sent_at must be Unix seconds, None (unknown) or AT_SIGNING, got {sent_at!r}")
        if abs(sent_at - self._clock()) > self._max_age[kind]:
            raise OdnosError(f"The send time is more than {self._max_age[kind] // 86400} days from now, "
                             "past the life of a tracked link; check the date.", code="bad_sent_at")
        return [int(sent_at)]

    def click(self, contact_id: str, message_id: str | int, link_id: str | int, target: str, *,
              sent_at: SentAt = SendTime.AT_SIGNING) -> str:
        """Token for a tracked link; raises ``InvalidToken(bad_target)`` for an unsafe target.

        ``sent_at`` is when the message leaves: the default ``SendTime.AT_SIGNING`` is right only for a caller
        that sends as it signs; anyone else passes the send time, or ``None`` when it is not known
        (the too-fast rule is then skipped, rather than timed from when the link was made).
        """
        _check_id("contact_id", contact_id, allow_int=False)
        _check_id("message_id", message_id, allow_int=True)
        _check_id("link_id", link_id, allow_int=True)
        return self._dump("click", [contact_id, message_id, link_id, safe_target(target),
                                    *self._sent_field("click", sent_at)])

    def open(self, contact_id: str, message_id: str | int, *,
             sent_at: SentAt = SendTime.AT_SIGNING) -> str:
        """Token for the open pixel of one message sent to one contact; ``sent_at`` as in ``click``."""
        _check_id("contact_id", contact_id, allow_int=False)
        _check_id("message_id", message_id, allow_int=True)
        return self._dump("open", [contact_id, message_id, *self._sent_field("open", sent_at)])

    def unsubscribe(self, contact_id: str, list_id: str = "") -> str:
        """Token for the unsubscribe page and RFC 8058 one-click POST; ``list_id`` '' means all."""
        _check_id("contact_id", contact_id, allow_int=False)
        _check_id("list_id", list_id, allow_int=False, allow_empty=True)
        return self._dump("unsubscribe", [contact_id, list_id])

    def trap(self, contact_id: str, message_id: str | int, target: str, *,
             sent_at: SentAt = SendTime.AT_SIGNING) -> str:
        """Click token of the invisible trap link a message carries (``TRAP_LINK_ID``): machines follow it."""
        return self.click(contact_id, message_id, TRAP_LINK_ID, target, sent_at=sent_at)

    def survey(self, contact_id: str, message_id: str | int, question: str, score: int, *,
               sent_at: SentAt = SendTime.AT_SIGNING) -> str:
        """Token of one answer link of a 0-10 survey question; ``sent_at`` as in ``click``."""
        _check_id("contact_id", contact_id, allow_int=False)
        _check_id("message_id", message_id, allow_int=True)
        _check_survey(question, score)
        return self._dump("survey", [contact_id, message_id, question, score,
                                     *self._sent_field("survey", sent_at)])

    def handoff(self, contact_id: str) -> str:
        """Short-lived token the click redirect puts in ``_odn`` so the snippet can link its visitor."""
        _check_id("contact_id", contact_id, allow_int=False)
        return self._dump("handoff", [contact_id])

    # -- reading --------------------------------------------------------------------------------

    def _load(self, kind: str, token: str | bytes, *lengths: int) -> tuple[list, int]:
        """Verify ``token`` as ``kind`` and return its list payload (of one of ``lengths``) and issue time."""
        if isinstance(token, str):
            if not token.isascii():
                raise InvalidToken(f"Invalid {kind} token: it contains non-ASCII characters.")
            token = token.encode("ascii")
        if not isinstance(token, bytes):
            raise InvalidToken(f"Invalid {kind} token: it must be text.")
        if len(token) > MAX_TOKEN:
            raise InvalidToken(f"Invalid {kind} token: it is longer than {MAX_TOKEN} characters.")
        if not _TOKEN_RE.fullmatch(token):
            raise InvalidToken(f"Invalid {kind} token: it is empty or has characters tokens never have.")
        try:
            payload, signed_at = self._serializers[kind].loads(token, return_timestamp=True)
        except BadData as exc:
            raise InvalidToken(
                f"Invalid {kind} token: the signature does not match (the link was altered, cut short, "
                "is of another kind, or was signed with a key no longer configured)."
            ) from exc
        issued = int(signed_at.timestamp())
        age = self._clock() - issued
        if age > self._max_age[kind]:
            raise InvalidToken(
                f"This {kind} token has expired (issued {int(age // 86400)} days ago).", code="expired_token"
            )
        if age < -MAX_CLOCK_SKEW:
            raise InvalidToken(f"Invalid {kind} token: it claims to be issued in the future.")
        if not isinstance(payload, list) or len(payload) not in lengths:
            raise InvalidToken(f"Invalid {kind} token: unexpected payload.")
        return payload, issued

    def read_click(self, token: str | bytes) -> ClickToken:
        """Verify a click token; the target is re-checked, so the redirect is always safe."""
        (contact_id, message_id, link_id, target, *sent), issued = self._load("click", token, 4, 5)
        if not (
            _is_id(contact_id, allow_int=False)
            and _is_id(message_id, allow_int=True)
            and _is_id(link_id, allow_int=True)
        ):
            raise InvalidToken("Invalid click token: unexpected payload.")
        sent_at = _read_sent("click", sent, issued)
        return ClickToken(contact_id, message_id, link_id, safe_target(target), issued, sent_at)

    def read_open(self, token: str | bytes) -> OpenToken:
        (contact_id, message_id, *sent), issued = self._load("open", token, 2, 3)
        if not (_is_id(contact_id, allow_int=False) and _is_id(message_id, allow_int=True)):
            raise InvalidToken("Invalid open token: unexpected payload.")
        return OpenToken(contact_id, message_id, issued, _read_sent("open", sent, issued))

    def read_unsubscribe(self, token: str | bytes) -> UnsubscribeToken:
        (contact_id, list_id), issued = self._load("unsubscribe", token, 2)
        if not (_is_id(contact_id, allow_int=False) and _is_id(list_id, allow_int=False, allow_empty=True)):
            raise InvalidToken("Invalid unsubscribe token: unexpected payload.")
        return UnsubscribeToken(contact_id, list_id, issued)

    def read_survey(self, token: str | bytes) -> SurveyToken:
        """Verify a survey answer token."""
        (contact_id, message_id, question, score, *sent), issued = self._load("survey", token, 4, 5)
        if not (_is_id(contact_id, allow_int=False) and _is_id(message_id, allow_int=True)):
            raise InvalidToken("Invalid survey token: unexpected payload.")
        try:
            _check_survey(question, score)
        except ValueError:
            raise InvalidToken("Invalid survey token: unexpected payload.") from None
        sent_at = _read_sent("survey", sent, issued)
        return SurveyToken(contact_id, message_id, question, score, issued, sent_at)

    def read_handoff(self, token: str | bytes) -> str:
        """Verify a hand-off token and return its contact id."""
        (contact_id,), _ = self._load("handoff", token, 1)
        if not _is_id(contact_id, allow_int=False):
            raise InvalidToken("Invalid handoff token: unexpected payload.")
        return contact_id


def _check_survey(question: object, score: object) -> None:
    if not isinstance(question, str) or not question.strip() or len(question) > MAX_SURVEY_QUESTION:
        raise ValueError(f"a survey question must be text of 1 to {MAX_SURVEY_QUESTION} characters")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError(f"a survey score must be an integer from 0 to 10, got {score!r}")


def _read_sent(kind: str, tail: list, issued: int) -> int | None:
    """The send time a payload's tail states (see ``TokenCodec._sent_field``)."""
    if not tail:
        return issued
    (sent,) = tail
    if sent is None or (isinstance(sent, int) and not isinstance(sent, bool) and sent >= 0):
        return sent
    raise InvalidToken(f"Invalid {kind} token: unexpected payload.")


def identify_hash(secret: str, email: str) -> str:
    """Hex HMAC-SHA256 of the normalised email, as the site's server computes it for ``identify``.

    The site signs with a per-site secret so a visitor cannot claim to be someone else by calling
    ``odnos.identify`` with another person's address. An empty secret would let anyone do that,
    so it is a configuration error.
    """
    if not secret:
        raise ConfigError("The site's identify secret is empty; set one to accept identify calls.")
    return hmac.new(
        secret.encode("utf-8"), normalize_email(email).encode("utf-8"), hashlib.sha256
    ).hexdigest()


def verify_identify(secret: str, email: str, hash: str) -> bool:
    """True if ``hash`` is ``identify_hash(secret, email)``; compared in constant time.

    A malformed email or hash is simply not a match: callers answer 4xx either way.
    """
    if not secret or not isinstance(hash, str) or not hash.isascii():
        return False
    try:
        expected = identify_hash(secret, email)
    except OdnosError:
        return False
    return hmac.compare_digest(expected, hash.strip().lower())
