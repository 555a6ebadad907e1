"""Find, with their exact positions, the parts of an HTML email the mailer changes or inserts at.

The mailer must change nothing in a message but the ``href`` values it tracks, so it never
re-serialises a document: the standard library's ``HTMLParser`` tokenises it (tags inside
``<style>`` or comments are not tags, entities are decoded the way browsers do), and this module
records where each ``href`` value, ``<base>``, ``<body>`` and ``</body>`` sit in the source text, so
callers splice new text in at those offsets and leave every other byte alone.

Outlook's conditional comments (``<!--[if mso]>...<![endif]-->``) are comments to a parser but
markup to Outlook, whose "bulletproof" buttons are VML shapes with an ``href`` inside them; their
inner markup is scanned too, with offsets mapped back into the document.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import accumulate

LINK_TAGS = frozenset({"a", "area"})


@dataclass(frozen=True, slots=True)
class Href:
    """One ``href`` attribute: its decoded value and where its raw value sits in the document."""

    tag: str
    value: str
    start: int
    end: int


@dataclass
class Scan:
    """What ``scan`` found; offsets index the scanned string."""

    hrefs: list[Href] = field(default_factory=list)
    base: str | None = None
    body_open_end: int | None = None  # just after the first <body ...> tag
    body_close: int | None = None  # at the '<' of the last </body>


def scan(document: str) -> Scan:
    """Scan ``document`` (a whole email body or a fragment)."""
    parser = _Scanner(document, 0, in_conditional=False)
    parser.run()
    return parser.found


def _attribute_spans(tag_text: str) -> list[tuple[str, int, int]]:
    """(lower-case name, value start, value end) of each attribute with a value in a raw start tag.

    Follows the HTML tokenizer: a name runs to whitespace, ``/``, ``>`` or ``=``; a value is quoted
    with ``"`` or ``'`` or runs unquoted to whitespace or ``>``. Attributes without a value are left
    out (they have no value to change).
    """
    spans = []
    n = len(tag_text)
    i = 1
    while i < n and not (tag_text[i].isspace() or tag_text[i] in "/>"):
        i += 1
    while i < n:
        while i < n and (tag_text[i].isspace() or tag_text[i] == "/"):
            i += 1
        if i >= n or tag_text[i] == ">":
            break
        start = i
        i += 1  # a name's first character may be '='
        while i < n and not (tag_text[i].isspace() or tag_text[i] in "/>="):
            i += 1
        name = tag_text[start:i].lower()
        j = i
        while j < n and tag_text[j].isspace():
            j += 1
        if j >= n or tag_text[j] != "=":
            continue
        j += 1
        while j < n and tag_text[j].isspace():
            j += 1
        if j < n and tag_text[j] in "\"'":
            quote = tag_text[j]
            close = tag_text.find(quote, j + 1)
            close = n - 1 if close < 0 else close
            spans.append((name, j + 1, close))
            i = close + 1
        else:
            k = j
            while k < n and not (tag_text[k].isspace() or tag_text[k] == ">"):
                k += 1
            spans.append((name, j, k))
            i = k
    return spans


class _Scanner(HTMLParser):
    def __init__(self, document: str, offset: int, *, in_conditional: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.document = document
        self._base = offset
        self.in_conditional = in_conditional
        self.found = Scan()
        # getpos() counts lines by "\n" alone, as this does; str.split keeps it at C speed
        self._line_starts = [0, *accumulate(len(line) + 1 for line in document.split("\n"))]

    def run(self) -> None:
        self.feed(self.document)
        self.close()

    def _here(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            if self.found.body_open_end is None:
                self.found.body_open_end = self._base + self._here() + len(self.get_starttag_text() or "")
            return
        if tag == "base":
            if self.found.base is None:
                self.found.base = next((v for k, v in attrs if k == "href" and v), None)
            return
        if not (tag in LINK_TAGS or (self.in_conditional and tag.startswith("v:"))):
            return
        value = next((v for k, v in attrs if k == "href"), None)
        if value is None:
            return
        text = self.get_starttag_text() or ""
        start = self._here()
        if self.document[start:start + len(text)] != text:
            return  # the parser's position disagrees with the text: change nothing rather than guess
        for name, value_start, value_end in _attribute_spans(text):
            if name == "href":
                raw = text[value_start:value_end]
                if html.unescape(raw) == value:
                    self.found.hrefs.append(Href(tag, value, self._base + start + value_start,
                                                 self._base + start + value_end))
                return

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self.found.body_close = self._base + self._here()

    def handle_comment(self, data: str) -> None:
        """Scan the markup inside a downlevel-hidden conditional comment ``<!--[if ...]>...<![endif]-->``."""
        if self.in_conditional or data[:3].lower() != "[if":
            return
        opened = data.find("]>")
        if opened < 0:
            return
        inner = data[opened + 2:]
        if inner.lower().endswith("<![endif]"):
            inner = inner[:-len("<![endif]")]
        comment_start = self._here()
        if self.document[comment_start:comment_start + 4] != "<!--":
            return
        nested = _Scanner(inner, self._base + comment_start + 4 + opened + 2, in_conditional=True)
        nested.run()
        self.found.hrefs.extend(nested.found.hrefs)
