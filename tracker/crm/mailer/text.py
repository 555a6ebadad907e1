"""The plain-text part of a message, made from its HTML when the template has no text of its own.

html2text turns the HTML into readable text: headings, lists and paragraphs kept, layout tables
flattened, images dropped (their alt text and a pixel are noise in plain text), links written as
``[text](URL)`` with their tracked URLs, so clicks from the text part count too, and lines not
wrapped (a wrapped URL would break; mail clients wrap text themselves). Only the body is converted
(``TrackedHtml.readable_body``): the head holds nothing a reader sees.
"""

from __future__ import annotations

import html2text


def html_to_text(document: str) -> str:
    """Readable plain text of an HTML email."""
    converter = html2text.HTML2Text(bodywidth=0)
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_tables = True
    converter.inline_links = True
    converter.protect_links = False
    converter.wrap_links = False
    converter.single_line_break = False
    converter.unicode_snob = True
    text = converter.handle(document)
    lines = [line.rstrip() for line in text.splitlines()]
    compact: list[str] = []
    for line in lines:
        if line or (compact and compact[-1]):
            compact.append(line)
    return "\n".join(compact).strip() + "\n"
