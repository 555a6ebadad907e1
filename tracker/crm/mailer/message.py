"""Build the email itself (``email.message.EmailMessage``): headers, a text and an HTML part.

Headers every bulk message needs to be delivered and to be left cleanly: ``Message-ID`` (under the
sender's domain), ``Date``, ``List-Unsubscribe`` with the one-click URL and a ``mailto:`` (RFC 2369;
the address is the From address, the subject carries the unsubscribe token so the request can be
acted on by hand or by a mailbox rule), ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
(RFC 8058, which Gmail and Yahoo require of bulk senders), and ``X-Odnos-Message`` naming the
message, so a bounce or complaint that comes back can be tied to it.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate, make_msgid, parseaddr

from tracker.errors import ConfigError

MESSAGE_HEADER = "X-Odnos-Message"
# Parts are encoded under SMTP's own policy (quoted-printable lines stay within RFC 2045's 76), but
# the message is written with headers folded only past RFC 5322's 998 characters: folding at 78
# turns a header whose URLs are longer than that (List-Unsubscribe) into RFC 2047 encoded words,
# which no mail client reads as URLs.
PART_POLICY = SMTP
WIRE_POLICY = SMTP.clone(max_line_length=998)
MAX_LINE = 998

def sender_address(sender: str) -> str:
    """The bare address of a From value (``Shop <news@shop.example>`` -> ``news@shop.example``)."""
    _, address = parseaddr(sender)
    if "@" not in address:
        raise ConfigError(f"ODNOS_MAIL_FROM {sender!r} has no address; set it like "
                          "ODNOS_MAIL_FROM='Shop <news@shop.example.com>'")
    return address


def message_id_header(message_id: str, sender: str) -> str:
    """A globally unique ``Message-ID`` that still shows which message it is."""
    return make_msgid(idstring=message_id, domain=sender_address(sender).rsplit("@", 1)[1])


def list_unsubscribe(unsubscribe_url: str, unsubscribe_token: str, sender: str) -> str:
    """The ``List-Unsubscribe`` value: the one-click URL first, then the mailto."""
    return (f"<{unsubscribe_url}>, "
            f"<mailto:{sender_address(sender)}?subject=unsubscribe%20{unsubscribe_token}>")


def build_message(*, sender: str, to_email: str, to_name: str, subject: str, html: str, text: str,
                  message_id: str, unsubscribe_url: str, unsubscribe_token: str) -> EmailMessage:
    """An ``EmailMessage`` with a text and an HTML alternative and the headers above."""
    msg = EmailMessage(policy=PART_POLICY)
    msg["From"] = sender
    name = " ".join(to_name.split())
    msg["To"] = formataddr((name, to_email))
    msg["Subject"] = subject
    _set_own(msg, "Date", formatdate(usegmt=True))
    _set_own(msg, "Message-ID", message_id_header(message_id, sender))
    _set_own(msg, "List-Unsubscribe", list_unsubscribe(unsubscribe_url, unsubscribe_token, sender))
    _set_own(msg, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    _set_own(msg, MESSAGE_HEADER, message_id)
    msg.set_content(text, subtype="plain", charset="utf-8", cte=_plain_cte(text))
    msg.add_alternative(html, subtype="html", charset="utf-8", cte=_plain_cte(html))
    msg.policy = WIRE_POLICY
    return msg


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message as SMTP sends it: its policy's headers and encodings, CRLF line ends."""
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def _set_own(msg: EmailMessage, name: str, value: str) -> None:
    """Set a header odnos makes itself. One on a single line of printable ASCII is stored as it is:
    parsing it, as ``msg[name] = value`` does, costs more than the rest of the message's headers
    together, and finds nothing to change. Anything else goes through the email package's checks."""
    if value.isascii() and value.isprintable():
        msg.set_raw(name, value)
    else:
        msg[name] = value


def _plain_cte(body: str) -> str | None:
    """``7bit`` for ASCII whose lines fit in SMTP's limit (sent as is, nothing to encode), else None:
    the email package then picks quoted-printable or base64."""
    if body.isascii() and max(map(len, body.splitlines()), default=0) <= MAX_LINE:
        return "7bit"
    return None
