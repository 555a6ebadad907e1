"""SMTP through a real server (aiosmtpd on a free port): reuse, STARTTLS and login, and every fault.

``SmtpCapture`` is a real SMTP server that keeps what it accepts and can be told to answer with
an error the next times a command arrives (421, 451, 550, 554) or to drop the connection right
after the message's final dot, so each outcome of ``SmtpSender`` is produced by a real exchange.
"""

from __future__ import annotations

import ssl
from collections import defaultdict
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.fixtures.clickhouse import free_port, self_signed_certificate
from tracker.crm.mailer.smtp import Outcome, SmtpSender
from tracker.errors import ConfigError

DROP = "drop"


@dataclass
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple

    @property
    def message(self) -> EmailMessage:
        """The message as a client reads it (line ends as the local convention, "\n")."""
        return message_from_bytes(self.data.replace(b"\r\n", b"\n"), policy=policy.default)


@dataclass
class _Handler:
    messages: list[Captured] = field(default_factory=list)
    rcpts: list[str] = field(default_factory=list)
    data_commands: int = 0
    # what to answer next, per command ("RCPT" may also be keyed by address), instead of accepting
    script: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        self.rcpts.append(address)
        for key in (f"RCPT {address}", "RCPT"):
            if self.script[key]:
                return self.script[key].pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.data_commands += 1
        if self.script["DATA"]:
            reply = self.script["DATA"].pop(0)
            if reply == DROP:
                self.messages.append(Captured(envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                                              session.peer))
                server.transport.close()
                return "250 OK"
            return reply
        self.messages.append(Captured(envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                                      session.peer))
        return "250 OK"


class SmtpCapture:
    """A real SMTP server on a free port; ``url`` for ODNOS_SMTP_URL, ``messages`` what it accepted."""

    def __init__(self, **smtp_options) -> None:
        self.handler = _Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **smtp_options)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Captured]:
        return self.handler.messages

    def answer(self, command: str, *replies: str) -> None:
        """Answer the next ``len(replies)`` ``command``s (``DATA``, ``RCPT`` or ``RCPT addr``) so."""
        self.handler.script[command].extend(replies)

    def __enter__(self) -> SmtpCapture:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def _message(to: str, subject: str = "Hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "news@shop.example.com"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(".leading dot line\nsecond line\n.\nend")
    return msg


def _sender(url: str, **options) -> SmtpSender:
    return SmtpSender(url, backoff=0.01, **options)


def test_one_connection_carries_many_messages_and_dots_survive() -> None:
    with SmtpCapture() as server, _sender(server.url) as sender:
        for n in range(5):
            delivery = sender.send(_message(f"p{n}@example.org"), sender="news@shop.example.com",
                                   recipient=f"p{n}@example.org")
            assert (delivery.outcome, delivery.code, delivery.attempts) == (Outcome.sent, 250, 1)
    assert [m.rcpt_tos for m in server.messages] == [[f"p{n}@example.org"] for n in range(5)]
    assert len({m.peer for m in server.messages}) == 1  # one connection
    body = server.messages[0].message.get_content()
    assert body.splitlines() == [".leading dot line", "second line", ".", "end"]


def test_refused_connection_is_retried_then_deferred_as_server_down() -> None:
    slept = []
    sender = SmtpSender(f"smtp://127.0.0.1:{free_port()}", attempts=3, backoff=0.2, sleep=slept.append)
    delivery = sender.send(_message("a@example.org"), sender="news@shop.example.com",
                           recipient="a@example.org")
    assert delivery.outcome is Outcome.deferred
    assert delivery.server_down and delivery.attempts == 3
    assert "cannot talk to 127.0.0.1" in delivery.reply
    assert slept == [0.2, 0.4]  # bounded, with exponential backoff


def test_421_then_accepted_is_sent_once() -> None:
    with SmtpCapture() as server, _sender(server.url) as sender:
        server.answer("DATA", "421 4.3.2 Service shutting down, try again")
        delivery = sender.send(_message("a@example.org"), sender="news@shop.example.com",
                               recipient="a@example.org")
    assert (delivery.outcome, delivery.attempts) == (Outcome.sent, 2)
    assert len(server.messages) == 1 and server.handler.data_commands == 2
    assert len({m.peer for m in server.messages}) == 1


def test_451_on_rcpt_is_retried_on_the_same_connection() -> None:
    with SmtpCapture() as server, _sender(server.url) as sender:
        server.answer("RCPT", "451 4.7.1 Greylisted, come back later")
        delivery = sender.send(_message("a@example.org"), sender="news@shop.example.com",
                               recipient="a@example.org")
    assert (delivery.outcome, delivery.attempts) == (Outcome.sent, 2)
    assert server.handler.rcpts == ["a@example.org", "a@example.org"]


def test_550_on_rcpt_is_a_hard_bounce_without_retry() -> None:
    with SmtpCapture() as server, _sender(server.url) as sender:
        server.answer("RCPT gone@example.org", "550 5.1.1 <gone@example.org>: user unknown")
        delivery = sender.send(_message("gone@example.org"), sender="news@shop.example.com",
                               recipient="gone@example.org")
        after = sender.send(_message("ok@example.org"), sender="news@shop.example.com",
                            recipient="ok@example.org")
    assert (delivery.outcome, delivery.code, delivery.bounced, delivery.attempts) == (
        Outcome.failed, 550, True, 1)
    assert "user unknown" in delivery.detail
    assert server.handler.rcpts == ["gone@example.org", "ok@example.org"]
    assert after.outcome is Outcome.sent  # the connection was reset, not spoilt


def test_554_on_data_fails_without_calling_it_a_bounce() -> None:
    with SmtpCapture() as server, _sender(server.url) as sender:
        server.answer("DATA", "554 5.7.1 Message rejected as spam")
        delivery = sender.send(_message("a@example.org"), sender="news@shop.example.com",
                               recipient="a@example.org")
    assert (delivery.outcome, delivery.code, delivery.bounced) == (Outcome.failed, 554, False)
    assert server.handler.data_commands == 1 and server.messages == []


def test_temporary_failures_past_the_bound_are_deferred_not_server_down() -> None:
    with SmtpCapture() as server, _sender(server.url, attempts=3) as sender:
        server.answer("DATA", *["452 4.3.1 Insufficient system storage"] * 3)
        delivery = sender.send(_message("a@example.org"), sender="news@shop.example.com",
                               recipient="a@example.org")
    assert (delivery.outcome, delivery.code, delivery.attempts, delivery.server_down) == (
        Outcome.deferred, 452, 3, False)
    assert server.messages == []


def test_connection_lost_after_the_final_dot_is_unknown_and_not_retried() -> None:
    with SmtpCapture() as server, _sender(server.url) as sender:
        server.answer("DATA", DROP)
        delivery = sender.send(_message("a@example.org"), sender="news@shop.example.com",
                               recipient="a@example.org")
        assert delivery.outcome is Outcome.unknown and delivery.attempts == 1
        assert "may have been delivered" in delivery.reply
        again = sender.send(_message("b@example.org"), sender="news@shop.example.com",
                            recipient="b@example.org")
    assert again.outcome is Outcome.sent  # reconnected
    assert server.handler.data_commands == 2


def test_starttls_and_login(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path, "smtp")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        login, password = (v.decode() if isinstance(v, bytes) else v
                           for v in (auth_data.login, auth_data.password))
        seen.append((mechanism, login, password))
        return AuthResult(success=(login, password) == ("mailer", "p@ss word"), handled=False)

    client_tls = ssl.create_default_context(cafile=str(cert))
    with SmtpCapture(tls_context=server_tls, require_starttls=True, auth_required=True,
                     authenticator=authenticator) as server:
        url = f"smtp://mailer:p%40ss%20word@127.0.0.1:{server.port}"
        with _sender(url, ssl_context=client_tls) as sender:
            delivery = sender.send(_message("a@example.org"), sender="news@shop.example.com",
                                   recipient="a@example.org")
        assert delivery.outcome is Outcome.sent
        with _sender(f"smtp://mailer:wrong@127.0.0.1:{server.port}", ssl_context=client_tls,
                     attempts=2) as sender:
            refused = sender.send(_message("b@example.org"), sender="news@shop.example.com",
                                  recipient="b@example.org")
    assert (refused.outcome, refused.server_down, refused.attempts) == (Outcome.deferred, True, 1)
    assert "login refused" in refused.reply  # not retried: a wrong password stays wrong
    assert seen[0][1:] == ("mailer", "p@ss word")
    assert {entry[1:] for entry in seen[1:]} == {("mailer", "wrong")}  # smtplib tries each mechanism
    assert len(server.messages) == 1


def test_smtps_is_tls_from_the_first_byte(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path, "smtps")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    with SmtpCapture(ssl_context=server_tls) as server:
        trusted = ssl.create_default_context(cafile=str(cert))
        with _sender(f"smtps://127.0.0.1:{server.port}", ssl_context=trusted) as sender:
            assert sender.send(_message("a@example.org"), sender="news@shop.example.com",
                               recipient="a@example.org").outcome is Outcome.sent
        with _sender(f"smtps://127.0.0.1:{server.port}", attempts=1) as sender:  # public CAs only
            untrusted = sender.send(_message("b@example.org"), sender="news@shop.example.com",
                                    recipient="b@example.org")
    assert (untrusted.outcome, untrusted.server_down) == (Outcome.deferred, True)
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.reply
    assert [m.rcpt_tos for m in server.messages] == [["a@example.org"]]


def test_no_password_in_clear_without_starttls() -> None:
    with SmtpCapture() as server, _sender(f"smtp://mailer:secret@127.0.0.1:{server.port}") as sender:
        delivery = sender.send(_message("a@example.org"), sender="news@shop.example.com",
                               recipient="a@example.org")
    assert (delivery.outcome, delivery.server_down, delivery.attempts) == (Outcome.deferred, True, 1)
    assert "does not send a password in clear" in delivery.reply
    assert server.messages == []


@pytest.mark.parametrize("url", ["", "http://mail.example.com", "smtp://host:notaport"])
def test_bad_smtp_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="ODNOS_SMTP_URL"):
        SmtpSender(url)
