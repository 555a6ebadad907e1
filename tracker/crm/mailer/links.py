"""Rewrite every trackable link of an HTML email into a tracked link, changing nothing else.

Only the characters of each ``href`` value change (positions from ``scan``); attribute order,
quoting, entities, comments, Outlook conditional comments, doctype and whitespace stay as they
were. A link is tracked when it leads to an absolute http(s) URL, directly or through the
document's ``<base href>``; ``mailto:``, ``tel:``, ``#fragment``, empty and relative links without a
base, other tools' merge tags, links into odnos itself (unsubscribe, survey answers) and URLs the
token codec refuses (``javascript:``, whitespace inside, over-long) stay as they are.

The target signed into the token is the ``href`` as a browser would follow it: entities decoded
once (``&amp;`` is ``&``), surrounding whitespace dropped, everything else byte for byte (query
order, ``%2F``, fragments, URLs inside parameters), so the redirect lands exactly where the
original link went.

Link ids are stable so reports can draw a click map: the first 6 hex digits of the target's
SHA-256, as ``odnos link`` names links, with ``-2``, ``-3``... for the second and third link to
the same URL in one message (a logo and a button to the home page are told apart).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from tracker.crm.mailer.scan import Scan
from tracker.errors import InvalidToken
from tracker.tokens import safe_target

log = logging.getLogger(__name__)

_HTML_SPACE = " \t\n\r\f"
_OWN_ROUTES = ("/c/", "/o/", "/u/", "/r/")


@dataclass(frozen=True, slots=True)
class TrackedLink:
    """One rewritten link: its id, where it leads (as the redirect says it) and the tracked URL."""

    link_id: str
    target: str
    url: str


def link_id_for(target: str) -> str:
    """The id of a link to ``target`` in reports: 6 hex digits of its SHA-256."""
    return hashlib.sha256(target.encode("utf-8")).hexdigest()[:6]


def target_of(href: str, base: str | None, own_base_url: str) -> str | None:
    """Where a tracked link for ``href`` should lead, or None to leave the link alone."""
    url = href.strip(_HTML_SPACE)
    if not url or url.startswith("#"):
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
        if not scheme and base:
            url = urljoin(base.strip(_HTML_SPACE), url)
            scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https"):
        return None
    if url.startswith(own_base_url) and url[len(own_base_url):len(own_base_url) + 3] in _OWN_ROUTES:
        return None
    return url


def rewrite(document: str, found: Scan, own_base_url: str,
            make_url: Callable[[str, str], str]) -> tuple[list[tuple[int, int, str]], list[TrackedLink]]:
    """The splices that track ``document``'s links, and the links; ``make_url(link_id, target)``."""
    splices: list[tuple[int, int, str]] = []
    links: list[TrackedLink] = []
    seen: dict[str, int] = {}
    for href in found.hrefs:
        wanted = target_of(href.value, found.base, own_base_url)
        if wanted is None:
            continue
        try:
            target = safe_target(wanted)  # as the redirect will send it: non-ASCII text encoded
            base_id = link_id_for(target)
            link_id = base_id if base_id not in seen else f"{base_id}-{seen[base_id] + 1}"
            url = make_url(link_id, target)
        except InvalidToken as exc:
            log.info("link left untracked: %s", exc.message)
            continue
        seen[base_id] = seen.get(base_id, 0) + 1
        splices.append((href.start, href.end, url))
        links.append(TrackedLink(link_id, target, url))
    return splices, links


def splice(document: str, splices: Sequence[tuple[int, int, str]]) -> str:
    """``document`` with each ``(start, end, text)`` replacing that range; ranges must not overlap."""
    out = []
    at = 0
    for start, end, text in sorted(splices, key=lambda s: (s[0], s[1])):
        out.append(document[at:start])
        out.append(text)
        at = end
    out.append(document[at:])
    return "".join(out)

