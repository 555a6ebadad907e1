"""Link rewriting on a dozen emails in the styles of real makers, checked byte for byte and through HTTP.

The fixtures in tests/fixtures/emails/ are written for this project in the manner of MJML output,
a Mailchimp newsletter, a Campaign Monitor digest, a Postmark-style receipt, an Outlook/Word
message, Stripo, a code-review notification, a hand-written note and more: tables, conditional
comments, VML buttons, entities, unquoted and upper-case attributes, ``<base href>``.

The byte check does not reuse the mailer's scanner: it walks the original and the rewritten
document side by side, requires every byte outside a tracked URL to be equal, and reads each
original value up to its own closing quote. Expected link counts and kept links were counted by
hand. Every tracked link then goes through the real collector and must redirect to its original.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.fixtures.collector import NEW_KEY, OLD_KEY, Collector, running_collector
from tracker.crm.mailer.track import track_html
from tracker.tokens import TRAP_LINK_ID, TokenCodec

FIXTURES = Path(__file__).parent / "fixtures" / "emails"
BASE = "http://t.example.test"
CODEC = TokenCodec([NEW_KEY, OLD_KEY])
TOKEN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")

# fixture -> number of links that must be tracked (counted by hand) and hrefs that must stay as written
EXPECTED = {
    "article_digest.html": (10, ["javascript:void(0)", "{{ unsubscribe_url }}"]),
    "base_href_relative.html": (5, ["", "#top"]),
    "bulletproof_buttons.html": (4, ["{{ unsubscribe_url }}"]),
    "campaign_monitor_digest.html": (7, []),
    "handwritten_plain.html": (3, ["tel:+15555550123"]),
    "mailchimp_newsletter.html": (7, ["#upcoming", "*|UPDATE_PROFILE|*", "*|UNSUB|*"]),
    "mjml_welcome.html": (2, ["mailto:hello@fernwood.example.com?subject=Question%20about%20my%20order",
                              "tel:+441632960961", "{{ unsubscribe_url }}"]),
    "notification_thread.html": (4, []),
    "outlook_word.html": (3, ["mailto:priya.n@example.co.uk"]),
    "receipt_transactional.html": (5, []),
    "shop_abandoned_cart.html": (2, []),
    "stripo_promo.html": (4, ["", "#", "sms:+33612345678"]),
}
# Relative links resolved against <base href="https://library.example.edu/branches/east/">.
BASE_HREF_TARGETS = [
    "https://library.example.edu/branches/east/catalog/item?id=88213&format=book",
    "https://library.example.edu/catalog/item?id=10442&format=audiobook",
    "https://library.example.edu/branches/east/hours.html#summer",
    "https://library.example.edu/account",
    "https://renew.example.edu/?lib=east",
]


def _track(document: str):
    return track_html(document, codec=CODEC, base_url=BASE, contact_id="c0ffee", message_id="7.42",
                      unsubscribe_url=f"{BASE}/u/x", add_footer=False)


def _replaced_values(original: str, rewritten: str) -> list[tuple[str, str]]:
    """(raw original value, token) for each tracked URL; asserts nothing else differs."""
    marker = f"{BASE}/c/"
    found = []
    i = j = 0
    while (k := rewritten.find(marker, j)) >= 0:
        same = rewritten[j:k]
        assert original[i:i + len(same)] == same, f"changed near {same[-60:]!r}"
        i += len(same)
        end = k + len(marker)
        while end < len(rewritten) and rewritten[end] in TOKEN_CHARS:
            end += 1
        quote = rewritten[k - 1]
        if quote in "\"'":
            stop = original.index(quote, i)
        else:
            stop = i
            while stop < len(original) and not (original[stop].isspace() or original[stop] == ">"):
                stop += 1
        found.append((original[i:stop], rewritten[k + len(marker):end]))
        i, j = stop, end
    assert original[i:] == rewritten[j:]
    return found


def _expected_target(raw: str) -> str:
    return html.unescape(raw).strip(" \t\n\r\f")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_only_href_values_change_and_each_token_leads_to_its_original(name: str) -> None:
    original = (FIXTURES / name).read_text(encoding="utf-8")
    tracked = _track(original)
    replaced = _replaced_values(original, tracked.readable_html)
    count, kept = EXPECTED[name]
    assert len(replaced) == count == len(tracked.links)
    targets = [CODEC.read_click(token).target for _, token in replaced]
    if name == "base_href_relative.html":
        assert targets == BASE_HREF_TARGETS
    else:
        for (raw, _), target in zip(replaced, targets, strict=True):
            expected = _expected_target(raw)
            assert target == expected if expected.isascii() else unquote(target) == expected
    for value in kept:
        assert f'"{value}"' in tracked.readable_html or f"'{value}'" in tracked.readable_html
    assert [link.target for link in tracked.links] == targets
    ids = [link.link_id for link in tracked.links]
    assert len(set(ids)) == len(ids)


def test_link_ids_are_stable_across_contacts_and_name_repeats() -> None:
    document = ('<a href="https://a.example/">logo</a><a href="https://b.example/x">b</a>'
                '<a href="https://a.example/">button</a>')
    one = track_html(document, codec=CODEC, base_url=BASE, contact_id="c1", message_id="7.1",
                     unsubscribe_url=f"{BASE}/u/x", add_footer=False)
    two = track_html(document, codec=CODEC, base_url=BASE, contact_id="c2", message_id="7.2",
                     unsubscribe_url=f"{BASE}/u/y", add_footer=False)
    ids = [link.link_id for link in one.links]
    assert ids == [link.link_id for link in two.links]
    assert ids[2] == ids[0] + "-2" and ids[0] != ids[1]
    assert [CODEC.read_click(link.url.rsplit("/", 1)[1]).link_id for link in one.links] == ids


def test_links_in_comments_styles_and_scripts_are_not_links() -> None:
    document = ('<style>a[href="https://css.example/"]{color:red}</style>'
                '<!-- <a href="https://comment.example/">old</a> -->'
                '<script type="application/ld+json">{"url": "<a href=\'https://script.example/\'>"}</script>'
                '<p><a href="https://real.example/">real</a></p>')
    tracked = _track(document)
    assert [link.target for link in tracked.links] == ["https://real.example/"]


def test_outlook_vml_button_inside_conditional_comment_is_tracked_and_comment_kept() -> None:
    original = (FIXTURES / "bulletproof_buttons.html").read_text(encoding="utf-8")
    tracked = _track(original).readable_html
    comment = tracked[tracked.index("<!--[if mso]>\n  <v:roundrect"):]
    comment = comment[:comment.index("<![endif]-->") + len("<![endif]-->")]
    assert f'href="{BASE}/c/' in comment
    assert 'arcsize="17%" strokecolor="#1e3650" fill="t">' in comment


def test_pixel_before_body_end_trap_after_body_start_footer_when_asked() -> None:
    original = (FIXTURES / "receipt_transactional.html").read_text(encoding="utf-8")
    tracked = track_html(original, codec=CODEC, base_url=BASE, contact_id="c0ffee", message_id="7.42",
                         unsubscribe_url=f"{BASE}/u/tok", add_footer=True)
    body_open = re.search(r"<body[^>]*>", tracked.html).end()
    trap = re.match(r'<a href="([^"]+)" aria-hidden="true" tabindex="-1" style="([^"]+)"></a>',
                    tracked.html[body_open:])
    assert trap is not None
    assert "display:none" in trap.group(2) and "mso-hide:all" in trap.group(2)
    trap_token = CODEC.read_click(trap.group(1).removeprefix(f"{BASE}/c/"))
    assert (trap_token.link_id, trap_token.contact_id) == (TRAP_LINK_ID, "c0ffee")
    assert trap_token.message_id == "7.42"
    before_end = tracked.html[:tracked.html.rindex("</body>")]
    pixel = re.search(r'<img src="([^"]+)" width="1" height="1" alt="" style="[^"]+">$', before_end)
    assert pixel is not None
    opened = CODEC.read_open(pixel.group(1).removeprefix(f"{BASE}/o/"))
    assert (opened.contact_id, opened.message_id) == ("c0ffee", "7.42")
    footer = before_end[:pixel.start()]
    assert footer.endswith(f'<a href="{BASE}/u/tok" style="color:#777777">Unsubscribe</a></p>')
    assert trap.group(0) not in tracked.readable_html and pixel.group(0) not in tracked.readable_html
    readable_open = re.search(r"<body[^>]*>", tracked.readable_html).end()
    assert tracked.readable_html[readable_open:].startswith(tracked.readable_body)
    assert tracked.readable_body.endswith("Unsubscribe</a></p>")  # the footer, for the text part
    assert tracked.readable_html[readable_open + len(tracked.readable_body):].lstrip().startswith("</body>")


def test_fragment_without_body_gets_trap_first_and_pixel_last() -> None:
    tracked = _track('<p>Hi <a href="https://x.example/">x</a></p>')
    assert tracked.html.startswith(f'<a href="{BASE}/c/')
    assert tracked.html.endswith('">') and "<img src=" in tracked.html[-400:]


@pytest.fixture(scope="module")
def collector(clickhouse_server, tmp_path_factory) -> Collector:
    with running_collector(clickhouse_server, tmp_path_factory.mktemp("links")) as running:
        yield running


@pytest.mark.server
def test_every_tracked_link_redirects_to_its_original_through_the_collector(collector: Collector) -> None:
    checked = 0
    for name in sorted(EXPECTED):
        tracked = _track((FIXTURES / name).read_text(encoding="utf-8"))
        for link in tracked.links:
            path = urlsplit(link.url).path
            status, headers, _ = collector.request("GET", path)
            assert status == 302, (name, link.target)
            assert headers["location"] == link.target == CODEC.read_click(path[3:]).target, name
            checked += 1
    assert checked == sum(count for count, _ in EXPECTED.values())
