"""Hand messages to an SMTP server (``ODNOS_SMTP_URL``) over one reused connection, with retries.

``smtp://user:pass@host:587`` upgrades with STARTTLS when the server offers it (and refuses to log
in without it, so a password never crosses the network in clear); ``smtps://...:465`` is TLS from
the first byte. One connection carries many messages; a dropped one is reopened.

Every attempt ends in one of four outcomes, because the send ledger must know which it was:

- ``sent``: the server took the message (250 after DATA);
- ``failed``: the server refused it for good (5xx); ``bounced`` says the mailbox itself was refused
  (550, 551, 553 or an enhanced 5.1.x status on RCPT), so the contact should be marked bounced;
- ``deferred``: it did not leave, for a reason that may pass (4xx, connection refused, dropped
  before the end of DATA) even after the bounded retries with backoff; ``server_down`` when the
  server could not be talked to at all, so a batch stops rather than try every contact;
- ``unknown``: the connection died after the whole message was written but before the server
  answered. It may have been delivered, so it is never retried (at most once beats twice).

The envelope and DATA are driven step by step (``mail``, ``rcpt``, ``data`` commands) rather than
with ``sendmail``, precisely to tell "not sent" from "may have been sent".
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from urllib.parse import unquote, urlsplit

from tracker.crm.mailer.message import wire_bytes
from tracker.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
BOUNCE_CODES = frozenset({550, 551, 553})


class Outcome(StrEnum):
    sent = "sent"
    failed = "failed"
    deferred = "deferred"
    unknown = "unknown"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one message: the outcome, the server's last reply, how many attempts."""

    outcome: Outcome
    code: int = 0
    reply: str = ""
    attempts: int = 1
    bounced: bool = False
    server_down: bool = False

    @property
    def detail(self) -> str:
        """One line for the ledger's ``error`` column."""
        return f"{self.code} {self.reply}".strip() if self.code else self.reply


class _Retry(Exception):
    """An attempt failed in a way the next attempt may not: 4xx, or the connection before DATA's end."""

    def __init__(self, code: int, reply: str, *, server_down: bool = False, hopeless: bool = False) -> None:
        super().__init__(reply)
        self.code = code
        self.reply = reply
        self.server_down = server_down
        self.hopeless = hopeless  # retrying cannot help (a refused login): stop at once


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to connect, parsed from ``ODNOS_SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    username: str
    password: str

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        if not url:
            raise ConfigError("ODNOS_SMTP_URL is not set; set it to the server mail goes through, e.g. "
                              "ODNOS_SMTP_URL=smtp://user:pass@smtp.example.com:587")
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ConfigError(f"ODNOS_SMTP_URL {parts.scheme}://{parts.hostname or ''}... must be "
                              "smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465 (TLS)")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ConfigError("ODNOS_SMTP_URL has a bad port; e.g. smtp://user:pass@host:587") from None
        return cls(parts.hostname, port, parts.scheme == "smtps", unquote(parts.username or ""),
                   unquote(parts.password or ""))


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _is_bounce(code: int, reply: str) -> bool:
    """A hard bounce on RCPT: the mailbox does not exist or is refused for good."""
    return code in BOUNCE_CODES or (500 <= code < 600 and reply.startswith("5.1."))


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it: CRLF lines, leading dots doubled, the final dot line."""
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpSender:
    """One SMTP connection, reused for every ``send`` until ``close`` (also a context manager)."""

    def __init__(self, url: str, *, attempts: int = 4, backoff: float = 0.5, timeout: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.target = SmtpTarget.parse(url)
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._sleep = sleep
        self._conn: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """QUIT and drop the connection; the next ``send`` opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()

    # -- sending ----------------------------------------------------------------------------------

    def send(self, message: EmailMessage | bytes, *, sender: str, recipient: str) -> Delivery:
        """Deliver one message to one recipient; never raises for what the server says or does."""
        if not isinstance(message, bytes):
            message = wire_bytes(message)
        data = _dot_stuffed(message)
        last = _Retry(0, "not attempted")
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                self._sleep(self.backoff * 2 ** (attempt - 2))
            try:
                return self._attempt(data, sender, recipient, attempt)
            except _Retry as retry:
                last = retry
                log.info("SMTP attempt %d deferred: %s %s", attempt, retry.code, retry.reply)
                if retry.hopeless:
                    return Delivery(Outcome.deferred, retry.code, retry.reply, attempt, server_down=True)
        return Delivery(Outcome.deferred, last.code, last.reply, self.attempts,
                        server_down=last.server_down)

    def _attempt(self, data: bytes, sender: str, recipient: str, attempt: int) -> Delivery:
        conn = self._connection()
        options = ["SMTPUTF8"] if not (sender + recipient).isascii() else []
        if options and not conn.has_extn("smtputf8"):
            return Delivery(Outcome.failed, 0, "the server does not accept non-ASCII addresses (SMTPUTF8)",
                            attempt)
        try:
            code, reply = conn.mail(sender, options)
            if code != 250:
                return self._refused(conn, code, reply, attempt)
            code, reply = conn.rcpt(recipient)
            if code not in (250, 251):
                return self._refused(conn, code, reply, attempt, on_rcpt=True)
            conn.putcmd("data")
            code, reply = conn.getreply()
            if code != 354:
                return self._refused(conn, code, reply, attempt)
            conn.send(data)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise _Retry(0, f"connection lost before the message was complete: {exc}") from None
        try:
            code, reply = conn.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            return Delivery(Outcome.unknown, 0, f"connection lost after the message was sent, before the "
                            f"server answered (it may have been delivered): {exc}", attempt)
        if code == 250:
            return Delivery(Outcome.sent, code, _reply_text(reply), attempt)
        return self._refused(conn, code, reply, attempt)

    def _refused(self, conn: smtplib.SMTP, code: int, reply: bytes, attempt: int, *,
                 on_rcpt: bool = False) -> Delivery:
        """A reply other than the one wanted: 5xx is final, 4xx (or anything else) is retried."""
        text = _reply_text(reply)
        if code == 421 or code < 0:  # the server is closing the connection
            self._drop()
            raise _Retry(code, text)
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()
        if 500 <= code < 600:
            return Delivery(Outcome.failed, code, text, attempt, bounced=on_rcpt and _is_bounce(code, text))
        raise _Retry(code, text)

    # -- the connection ---------------------------------------------------------------------------

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        target = self.target
        conn: smtplib.SMTP | None = None
        try:
            if target.implicit_tls:
                conn = smtplib.SMTP_SSL(target.host, target.port, timeout=self.timeout,
                                        context=self.ssl_context)
            else:
                conn = smtplib.SMTP(target.host, target.port, timeout=self.timeout)
            conn.ehlo_or_helo_if_needed()
            if not target.implicit_tls and conn.has_extn("starttls"):
                conn.starttls(context=self.ssl_context)
                conn.ehlo()
            if target.username:
                if not isinstance(conn.sock, ssl.SSLSocket):
                    conn.close()
                    raise _Retry(0, f"{target.host} offers no STARTTLS; odnos does not send a password "
                                 "in clear (use smtps:// or a server with STARTTLS)", hopeless=True)
                conn.login(target.username, target.password)
        except smtplib.SMTPAuthenticationError as exc:
            conn.close()
            raise _Retry(exc.smtp_code, f"login refused: {_reply_text(exc.smtp_error)}; check the user and "
                         "password in ODNOS_SMTP_URL", hopeless=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            if conn is not None:
                conn.close()
            code = getattr(exc, "smtp_code", 0)
            raise _Retry(code if isinstance(code, int) else 0,
                         f"cannot talk to {target.host}:{target.port}: {exc}", server_down=True) from None
        self._conn = conn
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
