"""`odnos link` and `odnos pixel`: tracked URLs for any mail tool, signed with this deployment's keys.

The simplest way to use odnos with a mail tool it does not drive: put the printed link in place of
the original one and the pixel as an ``<img>`` at the end of the message. Each is made for one
contact (by email) and one campaign, so every open and click is tied to both.

odnos does not see that tool send, so the moment a link is made says nothing of when the message
leaves: without ``--sent-at`` the token says the send time is unknown and the "too fast" rule is not
applied to its clicks and opens; with it, that rule times them from the send given.

Someone trying a link by hand wants to see the ``_odn`` hand-off, which only a person's click on a
registered site's page gets: ``odnos link`` says, before the URL, whether the target is on a
registered site, how the timing rule applies to this link, and how to try it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import re
import time
import unicodedata

from tracker.cli.common import open_control
from tracker.contacts import contact_id_for
from tracker.errors import OdnosError
from tracker.settings import load_settings, signing_keys
from tracker.tokens import CAMPAIGN_NAME, TokenCodec


def register(sub: argparse._SubParsersAction) -> None:
    link = sub.add_parser("link", help="print a tracked link for one contact and campaign",
                          description="Print a tracked URL on ODNOS_PUBLIC_URL that records a click and "
                                      "redirects to URL, after a few lines on how its clicks are judged "
                                      "and how to try the hand-off. Prints the URL alone on the last "
                                      "line.")
    link.add_argument("url", help="where the click should land (http or https)")
    _who(link)
    link.add_argument("--link-id", help="names the link in reports (default: derived from the URL)")
    link.set_defaults(run=run_link)
    pixel = sub.add_parser("pixel", help="print an open-pixel URL for one contact and campaign",
                           description="Print the URL of a 1x1 image that records an open; put it in "
                                       "the message as <img src=\"...\" width=\"1\" height=\"1\" alt=\"\">.")
    _who(pixel)
    pixel.set_defaults(run=run_pixel)


def _who(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", required=True, help="the contact the message goes to")
    parser.add_argument("--campaign", required=True,
                        help="campaign id or name (ASCII letters, digits, - and _; at most 64)")
    parser.add_argument("--sent-at", metavar="TIME",
                        help="when the mail tool sends the message: ISO 8601 with a UTC offset "
                             "(2025-03-10T09:00:00Z) or Unix seconds; without it the send time is unknown "
                             "and opens and clicks are not judged by how soon they came after it")


def _campaign(text: str) -> str:
    """``--campaign`` as the help promises it: ASCII letters, digits, ``-`` and ``_``."""
    if not CAMPAIGN_NAME.fullmatch(text):
        ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        example = "-".join(re.findall(r"[A-Za-z0-9_]+", ascii_text)).lower() or "spring-sale"
        raise OdnosError(f"--campaign {text!r} may hold only ASCII letters, digits, - and _, at most 64 "
                         f"(for example {example[:64]})", code="bad_argument")
    return text


def _codec_and_base() -> tuple[TokenCodec, str]:
    settings = load_settings()
    return TokenCodec(signing_keys(settings)), settings.effective_public_url()


def _send_time(text: str | None) -> float | None:
    """``--sent-at`` as Unix seconds; None when not given (the send time is unknown).

    A time too far from now for a token is refused by the codec (``bad_sent_at``), in one line too.
    """
    if text is None:
        return None
    how = "give ISO 8601 with a UTC offset (2025-03-10T09:00:00Z, 2025-03-10T10:00:00+01:00) or Unix seconds"
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise OdnosError(f"--sent-at {text!r} is not a time; {how}", code="bad_sent_at") from None
    if when.tzinfo is None:
        raise OdnosError(f"--sent-at {text!r} has no UTC offset, so the hour is ambiguous; {how}",
                         code="bad_sent_at")
    return when.timestamp()


def _how_clicks_count(target: str, sent_at: float | None) -> list[str]:
    """Lines that say whether a click on this link can get the hand-off, and when."""
    from tracker.control.sites import list_sites, site_allows_host
    from tracker.enrich.email_machines import CLICK_TOO_FAST
    from tracker.enrich.referrer import split_url

    host, _ = split_url(target)
    try:  # the link works without it: a mail tool's machine may not reach the control database
        control = open_control()
        try:
            with control.session() as db:
                site = next((site.name for site in list_sites(db) if site_allows_host(site, host)), None)
        finally:
            control.dispose()
    except OdnosError as exc:
        reason = " ".join(exc.message.split())
        lines = [f"could not check whether {host} is a registered site ({reason}); only a registered "
                 "site's pages get the _odn hand-off"]
    else:
        if site is None:
            return [f"{host or target} is not a registered site's domain, so clicks get no _odn hand-off "
                    f"(register it: odnos site add NAME --domain {host or 'DOMAIN'})"]
        lines = [f"{host} is on the site {site!r}: a person's click lands there with an _odn hand-off "
                 "that the site's snippet turns into a visitor -> contact link"]
    if sent_at is None:
        lines.append(f"timing: no --sent-at, so clicks are not judged by how soon they come (with it, a "
                     f"click within {CLICK_TOO_FAST:g} s of the send is a link scanner's: no hand-off)")
    else:
        wait = sent_at + CLICK_TOO_FAST - time.time()
        later = f"; wait {wait:.0f} s before trying it" if wait > 0 else ""
        lines.append(f"timing: a click within {CLICK_TOO_FAST:g} s of --sent-at is a link scanner's "
                     f"(too_fast): no hand-off{later}")
    lines.append("to try it: open the link in a browser (curl, wget and HEAD requests count as "
                 "machines) and look for _odn= in the address you land on")
    return lines


def run_link(args: argparse.Namespace) -> int:
    codec, base = _codec_and_base()
    link_id = args.link_id or hashlib.sha256(args.url.encode()).hexdigest()[:6]
    sent_at = _send_time(args.sent_at)
    token = codec.click(contact_id_for(args.email), _campaign(args.campaign), link_id, args.url,
                        sent_at=sent_at)
    for line in _how_clicks_count(args.url, sent_at):
        print(line)
    print(f"{base}/c/{token}")
    return 0


def run_pixel(args: argparse.Namespace) -> int:
    codec, base = _codec_and_base()
    token = codec.open(contact_id_for(args.email), _campaign(args.campaign), sent_at=_send_time(args.sent_at))
    print(f"{base}/o/{token}")
    return 0

