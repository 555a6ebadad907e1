"""Make an HTML email trackable for one contact and message: the one implementation of it.

The mailer calls it for every message it sends, and the HTTP API for messages other tools send,
so both produce the same thing: every trackable link rewritten (``links``), an unsubscribe
footer when the HTML has no unsubscribe link of its own, the invisible trap link right after
``<body>`` (scanners that follow every link usually start at the top), and the open pixel just
before ``</body>`` (or at the end of a fragment). Each insertion is spliced in at a position found
by the parser; nothing else in the document changes.

The trap link has no text, is hidden from screen readers (``aria-hidden``), from the keyboard
(``tabindex="-1"``) and from sight (``display:none``, zero size, ``mso-hide:all`` for Outlook), so a
person never follows it; its token names the link ``TRAP_LINK_ID``, and a click on it tells the
collector that the clicks around it on that message are a machine's.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import escape

from tracker.crm.mailer.links import TrackedLink, rewrite, splice
from tracker.crm.mailer.scan import scan
from tracker.tokens import SendTime, SentAt, TokenCodec

TRAP_STYLE = ("display:none!important;width:0;height:0;max-height:0;overflow:hidden;font-size:0;"
              "line-height:0;opacity:0;mso-hide:all")
PIXEL_STYLE = "display:block;border:0;width:1px;height:1px;overflow:hidden"


@dataclass(frozen=True)
class TrackedHtml:
    """The tracked HTML; the same without pixel and trap, whole and its body alone (what the text
    part is made from); the links."""

    html: str
    readable_html: str
    readable_body: str
    links: list[TrackedLink]


def footer_html(unsubscribe_url: str) -> str:
    """The unsubscribe footer added when a template does not place ``{{ unsubscribe_url }}`` itself."""
    return ('<p style="margin:24px 0 0;font-family:Arial,sans-serif;font-size:12px;line-height:18px;'
            'color:#777777;text-align:center">You receive this email because you subscribed. '
            f'<a href="{escape(unsubscribe_url)}" style="color:#777777">Unsubscribe</a></p>')


def track_html(document: str, *, codec: TokenCodec, base_url: str, contact_id: str,
               message_id: str, unsubscribe_url: str, add_footer: bool,
               sent_at: SentAt = SendTime.AT_SIGNING) -> TrackedHtml:
    """Track ``document`` for ``contact_id`` and ``message_id``.

    ``base_url`` is the collector's public URL (``effective_public_url()``); ``add_footer`` puts the
    unsubscribe footer in; ``sent_at`` goes into every token (the default is right for a message
    sent as it is made, see ``TokenCodec.click``).
    """
    found = scan(document)

    def make_url(link_id: str, target: str) -> str:
        return f"{base_url}/c/{codec.click(contact_id, message_id, link_id, target, sent_at=sent_at)}"

    splices, links = rewrite(document, found, base_url, make_url)
    end = found.body_close if found.body_close is not None else len(document)
    start = found.body_open_end if found.body_open_end is not None else 0
    readable = list(splices)
    if add_footer:
        readable.append((end, end, footer_html(unsubscribe_url)))
    trap_url = f"{base_url}/c/{codec.trap(contact_id, message_id, base_url + '/', sent_at=sent_at)}"
    pixel_url = f"{base_url}/o/{codec.open(contact_id, message_id, sent_at=sent_at)}"
    trap = f'<a href="{trap_url}" aria-hidden="true" tabindex="-1" style="{TRAP_STYLE}"></a>'
    pixel = f'<img src="{pixel_url}" width="1" height="1" alt="" style="{PIXEL_STYLE}">'
    tracked = [*readable, (start, start, trap), (end, end, pixel)]
    body = [(a - start, b - start, text) for a, b, text in readable if start <= a and b <= end]
    return TrackedHtml(splice(document, tracked), splice(document, readable),
                       splice(document[start:end], body), links)
