"""`odnos send`: a one-off campaign of one template to a segment or a tag, each contact mailed once.

A thin wrapper over ``tracker.crm.campaigns.send_campaign``: it prints what the send did (sent,
skipped grouped by why, failed, what is left), and the campaign id alone on the last line. Exit
0 when every contact of the audience was handled, 1 when sending stopped (the SMTP server gone or
deferring: run the same command again), 130 after Ctrl+C (the same command continues); an
unknown template, segment, tag or site is one ``odnos: error:`` line and exit 2, with nothing
written. A compose worker that dies mid-send (killed, out of memory) is one ``odnos: error:`` line
and exit 2 too: what was sent is recorded, the rest waits, and the same command continues.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from tracker import audit
from tracker.cli.common import open_runtime
from tracker.crm.campaigns import CampaignReport, audience_of, send_campaign
from tracker.remote import stopping


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "send", help="send a one-off campaign to a segment or a tag",
        description="Mail a template once to each member of a segment, or to each contact with a tag. The "
                    "campaign is known by its name: sending the same name again mails nobody twice (a send "
                    "that stopped continues with the contacts not mailed yet; a campaign already sent "
                    "mails only new members). Unsubscribed, bounced, complained, suppressed and erased "
                    "contacts are skipped. Needs ODNOS_SMTP_URL and ODNOS_MAIL_FROM.")
    parser.add_argument("--template", required=True,
                        help="the template (name or id, see `odnos templates list`)")
    audience = parser.add_mutually_exclusive_group(required=True)
    audience.add_argument("--segment", help="mail the members of this segment (name or id)")
    audience.add_argument("--tag", help="mail the contacts with this tag")
    parser.add_argument("--name", help="the campaign's name (default: the template's name)")
    parser.add_argument("--site", help="the site id whose reports the campaign's clicks belong to")
    parser.set_defaults(run=run_send)


@contextmanager
def _first_ctrl_c_stops() -> Iterator[threading.Event]:
    """An event the first Ctrl+C sets (the send stops after the message on the wire); a second one
    interrupts at once. Only the main thread takes signals: a command forwarded to a running server
    gets the event its interruption sets (``tracker.remote.stopping``)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopping.stop_event() or stop
        return

    def first(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)
        print("\nstopping after the message being sent (Ctrl+C again to quit at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{why} {n:,}" for why, n in counter.most_common())


def summary(report: CampaignReport) -> list[str]:
    """The lines `odnos send` prints before the campaign id."""
    lines = [f"campaign {report.name!r} to the {report.audience}: {report.to_mail:,} to mail"]
    if report.note:
        lines.append(report.note)
    parts = [f"sent {report.sent:,}"]
    skipped = sum(report.skipped.values())
    parts.append(f"skipped {skipped:,}" + (f" ({_counts(report.skipped)})" if skipped else ""))
    failed = sum(report.failed.values())
    parts.append(f"failed {failed:,}" + (f" ({_counts(report.failed)})" if failed else ""))
    if report.already:
        parts.append(f"already mailed {report.already:,}")
    if report.deferred:
        parts.append(f"deferred {report.deferred:,} (not sent; the next send retries them)")
    if report.unknown:
        parts.append(f"unknown {report.unknown:,} (may have been delivered; never retried)")
    lines.append(", ".join(parts))
    if report.stopped:
        lines.append(f"stopped: {report.stopped}; run the same command again to continue")
    lines.append(f"campaign status: {report.status}")
    return lines


def run_send(args: argparse.Namespace) -> int:
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\r{done:,} of {total:,} handled", end="", file=sys.stderr, flush=True)

    with open_runtime() as runtime, _first_ctrl_c_stops() as stop:
        audience = audience_of(runtime, segment=args.segment, tag=args.tag)
        report = send_campaign(runtime, args.template, audience, name=args.name, site=args.site,
                               progress=progress, stop=stop)
        audit.record_command(runtime.control, "campaign_sent", report.name,
                             {"id": report.campaign_id, "audience": report.audience, "sent": report.sent,
                              "failed": sum(report.failed.values()), "status": str(report.status)})
    if tty and report.to_mail:
        print(file=sys.stderr)
    for line in summary(report):
        print(line)
    print(report.campaign_id)
    if report.interrupted:
        return 130
    return 1 if report.stopped else 0
