"""Compose one contact's message: render the template, track it, add the text part and headers.

``Composer.compose`` is what ``sending.send_batch`` sends and what the HTTP API returns to a sender
who mails through another tool: one implementation, so a message looks the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING

from tracker.crm.mailer.helpers import Recommender, context, survey_helper
from tracker.crm.mailer.links import TrackedLink
from tracker.crm.mailer.message import build_message, wire_bytes
from tracker.crm.mailer.render import CompiledTemplate
from tracker.crm.mailer.text import html_to_text
from tracker.crm.mailer.track import track_html
from tracker.crm.model import Contact
from tracker.store.base import EventStore
from tracker.tokens import SendTime, SentAt, TokenCodec

if TYPE_CHECKING:
    from tracker.runtime import Runtime

UNSUBSCRIBE_TEXT = "Unsubscribe: {url}"


@dataclass(frozen=True)
class ComposedMessage:
    """One message ready to send: its parts, its links, and the email built from them."""

    message_id: str
    contact: Contact
    subject: str
    html: str
    text: str
    links: list[TrackedLink]
    unsubscribe_url: str
    email: EmailMessage

    def wire(self) -> WireMessage:
        return WireMessage(self.message_id, self.email["Message-ID"], wire_bytes(self.email))


@dataclass(frozen=True)
class WireMessage:
    """A message as SMTP sends it, with the ids its ledger row and ``email_sent`` event record."""

    message_id: str
    message_id_header: str
    data: bytes  # the whole message, CRLF line ends


class Composer:
    """Composes messages for one batch: the codec, the public URL, the From address, the store.

    ``contact_ids`` are the batch's contacts, so ``recommended()`` asks the store once for all of
    them; ``store`` may be None when templates do not use it.
    """

    def __init__(self, codec: TokenCodec, base_url: str, sender: str, store: EventStore | None, *,
                 contact_ids: Sequence[str] = (), site_id: str = "", list_id: str = "") -> None:
        self.codec = codec
        self.base_url = base_url.rstrip("/")
        self.sender = sender
        self.list_id = list_id
        self.recommender = Recommender(store, contact_ids, site_id=site_id)

    @classmethod
    def from_runtime(cls, runtime: Runtime, *, contact_ids: Sequence[str] = (), site_id: str = "",
                     list_id: str = "") -> Composer:
        settings = runtime.settings
        return cls(TokenCodec(runtime.keys), settings.effective_public_url(), settings.mail_from,
                   runtime.reader, contact_ids=contact_ids, site_id=site_id, list_id=list_id)

    def compose(self, template: CompiledTemplate, contact: Contact, message_id: str, *,
                sent_at: SentAt = SendTime.AT_SIGNING) -> ComposedMessage:
        """Render ``template`` for ``contact`` as message ``message_id`` and make it trackable.

        ``sent_at`` as in ``track_html``: the default suits a message sent now. Raises
        ``TemplateError`` when the template fails for this contact.
        """
        unsubscribe_token = self.codec.unsubscribe(contact.contact_id, self.list_id)
        unsubscribe_url = f"{self.base_url}/u/{unsubscribe_token}"
        survey = survey_helper(self.codec, self.base_url, contact.contact_id, message_id, sent_at)
        rendered = template.render(context(contact, unsubscribe_url,
                                           self.recommender.helper(contact.contact_id), survey))
        tracked = track_html(rendered.html, codec=self.codec, base_url=self.base_url,
                             contact_id=contact.contact_id, message_id=message_id,
                             unsubscribe_url=unsubscribe_url,
                             add_footer=not template.uses("unsubscribe_url", "html"), sent_at=sent_at)
        if template.has_text:
            text = rendered.text
            if not template.uses("unsubscribe_url", "text"):
                text = text.rstrip("\n") + "\n\n" + UNSUBSCRIBE_TEXT.format(url=unsubscribe_url) + "\n"
        else:
            text = html_to_text(tracked.readable_body)
        name = f"{contact.first_name} {contact.last_name}".strip()
        email = build_message(sender=self.sender, to_email=contact.email, to_name=name,
                              subject=rendered.subject, html=tracked.html, text=text,
                              message_id=message_id, unsubscribe_url=unsubscribe_url,
                              unsubscribe_token=unsubscribe_token)
        return ComposedMessage(message_id, contact, rendered.subject, tracked.html, text, tracked.links,
                               unsubscribe_url, email)
