"""`odnos contacts import|show|list|erase|export`: thin wrappers over tracker.crm (contacts, importer,
erase, export).

Each command opens the runtime's parts, calls one function of tracker.crm with them and prints
what it returns; the HTTP API and a running server call the same functions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tracker import audit
from tracker.cli.common import open_runtime
from tracker.crm.consent import erasure_hash
from tracker.crm.contacts import Profile, profile
from tracker.crm.erase import erase_contact
from tracker.crm.export import export_contact, export_visitor
from tracker.crm.importer import import_csv
from tracker.crm.model import Contact
from tracker.crm.segments import get_segment, segment_members
from tracker.errors import OdnosError
from tracker.queries.contacts.contact_timeline import TimelineEntry


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("contacts", help="import, show, list, erase and export contacts",
                            description="Contacts are people odnos can email, one per address.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import", help="import or update contacts from a CSV file",
        description="Import a CSV file with a header row: email (required), first_name, last_name, "
                    "status (subscribed, unsubscribed, bounced, complained); every other column is an "
                    "attribute. Idempotent by email: a known address is updated, empty cells keep what "
                    "is stored, and an unsubscribed or erased address is never made mailable again. "
                    "Exit 0 when the file was read (rejected rows are listed), 2 when it could not be.")
    imp.add_argument("file", type=Path, help="the CSV file (UTF-8)")
    imp.add_argument("--tag", action="append", default=[], help="add this tag to every imported contact "
                                                                "(repeat for more)")
    imp.set_defaults(run=run_import)
    show = actions.add_parser("show", help="a contact's profile and timeline",
                              description="Profile (name, consent, attributes, tags, linked visitors) and "
                                          "timeline: emails sent, opened and clicked (people and machines "
                                          "marked), visits, custom events and consent changes.")
    show.add_argument("email")
    show.add_argument("--limit", type=int, default=200, help="newest timeline entries to show (default 200)")
    show.set_defaults(run=run_show)
    listing = actions.add_parser("list", help="list contacts, of a segment or with a tag",
                                 description="Contacts as tab-separated lines: id, email, first name, last "
                                             "name, consent, tags; in contact id order.")
    listing.add_argument("--segment", help="only members of this segment (name or id)")
    listing.add_argument("--tag", help="only contacts with this tag")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.set_defaults(run=run_list)
    erase = actions.add_parser("erase", help="erase a person everywhere (cannot be undone)",
                               description="Delete the contact and every event tied to it (its email "
                                           "events and its linked visitors' visits) from the event store "
                                           "and the control database; only a keyed hash of the address "
                                           "stays, so it is never imported or mailed again.")
    erase.add_argument("email")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.set_defaults(run=run_erase)
    export = actions.add_parser("export", help="everything stored about a person, as one JSON document",
                                description="A data access request: the contact, its consent history, "
                                            "every event tied to it and every message sent to it, as JSON "
                                            "on standard output; with --visitor, the events and identity "
                                            "links of a site visitor id instead.")
    export.add_argument("email", nargs="?", help="the contact's address")
    export.add_argument("--visitor", help="a site visitor id instead of an address")
    export.add_argument("--site", default="", help="with --visitor: only this site's events")
    export.set_defaults(run=run_export)


def run_import(args: argparse.Namespace) -> int:
    def progress(rows: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{rows:,} rows read", end="", file=sys.stderr, flush=True)

    with open_runtime() as runtime:
        report = import_csv(runtime.store, runtime.control, runtime.keys, args.file, tags=args.tag,
                            progress=progress)
        audit.record_command(runtime.control, "contacts_imported", str(args.file),
                             {"rows": report.rows, "created": report.created, "updated": report.updated,
                              "rejected": len(report.rejected), "tags": list(args.tag or [])})
    if sys.stderr.isatty():
        print(file=sys.stderr)
    notes = sorted([(n.line, "rejected", n.text) for n in report.rejected]
                   + [(n.line, "note", n.text) for n in report.notes])
    for line, kind, text in notes:
        print(f"line {line}: {kind}: {text}")
    print(f"{args.file}: {report.rows:,} rows: taken {report.taken:,} ({report.created:,} new, "
          f"{report.updated:,} updated, {report.unchanged:,} unchanged), rejected {len(report.rejected):,}")
    return 0


def _name(contact: Contact) -> str:
    return " ".join(part for part in (contact.first_name, contact.last_name) if part)


def _when(entry: TimelineEntry) -> str:
    return entry.ts.strftime("%Y-%m-%d %H:%M:%S")


def _describe(entry: TimelineEntry) -> str:
    props = {k: v for k, v in entry.props.items() if k != "email"}
    if entry.name in ("email_sent", "email_open", "email_click"):
        text = f"campaign {entry.campaign_id} message {entry.message_id}"
        if entry.name == "email_click":
            text += f" link {entry.link_id} -> {entry.target_url}"
        verdict = f"machine: {entry.machine_reason or 'flagged'}" if entry.is_machine else "person"
        return text if entry.name == "email_sent" else f"{text}  [{verdict}]"
    if entry.name == "consent":
        return f"{props.get('previous') or 'new'} -> {props.get('status')} ({props.get('how')})"
    if entry.name == "unsubscribe":
        return f"list {props.get('list') or '(every list)'} ({props.get('how', '')})"
    text = f"{entry.hostname}{entry.pathname}" if entry.hostname else entry.site_id
    if props:
        text += "  " + json.dumps(props, ensure_ascii=False)
    return text + (f"  [bot: {entry.bot_reason}]" if entry.is_bot else "")


def _print_profile(found: Profile) -> None:
    contact = found.contact
    print(f"{contact.email}  (contact {contact.contact_id})")
    print(f"name: {_name(contact) or '-'}")
    left = ", ".join(f"{lst or 'every list'} ({how})" for lst, how in sorted(found.suppressed.items()))
    print(f"consent: {contact.status}" + (f"; suppressed: {left}" if left else ""))
    print(f"tags: {', '.join(contact.tags) or '-'}")
    print(f"source: {contact.source or '-'}; created {contact.created_at:%Y-%m-%d %H:%M:%S}, "
          f"updated {contact.updated_at:%Y-%m-%d %H:%M:%S} (UTC)")
    print("attributes:" + ("" if contact.attrs else " -"))
    for key, value in sorted(contact.attrs.items()):
        print(f"  {key}: {value}")
    print(f"visitors: {len(found.visitors)}" + ("" if found.visitors else " (never identified on a site)"))
    for v in found.visitors:
        moved = "" if v.current else "  (since identified as someone else)"
        print(f"  site {v.site_id} visitor {v.visitor_id}: {v.method} {v.linked_at:%Y-%m-%d %H:%M:%S}{moved}")
    shown = len(found.timeline.entries)
    print(f"timeline: {found.timeline.total:,} events" +
          (f", the newest {shown:,} shown" if shown < found.timeline.total else ""))
    for entry in found.timeline.entries:
        print(f"  {_when(entry)}  {entry.name:<12} {_describe(entry)}")


def run_show(args: argparse.Namespace) -> int:
    with open_runtime() as runtime:
        found = profile(runtime.store, runtime.control, args.email, limit=args.limit)
    _print_profile(found)
    return 0


def run_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise OdnosError("--limit must be at least 1")
    with open_runtime() as runtime:
        conditions = []
        if args.segment:
            with runtime.control.session() as db:
                conditions.append(get_segment(db, args.segment).definition)
        if args.tag:
            conditions.append({"type": "tag", "tag": args.tag})
        members = segment_members(runtime.store, {"all": conditions}, limit=args.limit)
    for c in members:
        print("\t".join([c.contact_id, c.email, c.first_name, c.last_name, c.status, ",".join(c.tags)]))
    return 0


def run_export(args: argparse.Namespace) -> int:
    if (args.email is None) == (args.visitor is None):
        raise OdnosError("give an address or --visitor ID (one of the two), e.g. "
                         "`odnos contacts export ann@example.com`")
    if args.site and args.visitor is None:
        raise OdnosError("--site goes with --visitor; leave it out to export a contact")
    with open_runtime() as runtime:
        if args.visitor is None:
            document = export_contact(runtime.store, runtime.control, args.email)
            target = document["subject"]["contact_id"]
        else:
            document = export_visitor(runtime.store, args.visitor, args.site)
            target = f"visitor {args.site}/{args.visitor}" if args.site else f"visitor {args.visitor}"
        audit.record_command(runtime.control, "contact_exported", target, {"events": len(document["events"])})
    print(json.dumps(document, ensure_ascii=False, indent=2))
    return 0


def run_erase(args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise OdnosError(f"erasing {args.email} cannot be undone; add --yes to confirm")
        answer = input(f"Erase {args.email} and every event tied to it? This cannot be undone. Type yes: ")
        if answer.strip().lower() != "yes":
            print("nothing erased")
            return 1
    with open_runtime() as runtime:
        report = erase_contact(runtime.store, runtime.control, runtime.keys, args.email)
        audit.record_command(runtime.control, "contact_erased", erasure_hash(runtime.keys[0], report.email),
                             {"rows": sum(report.rows.values())})
    for table, rows in report.rows.items():
        print(f"{table}: {rows:,} rows deleted")
    print(f"send ledger: {report.ledger_rows:,} rows kept without the address; suppressions replaced: "
          f"{report.suppressions}")
    print(f"erased {report.email}; only a keyed hash stays, so it is never imported or mailed again")
    return 0
