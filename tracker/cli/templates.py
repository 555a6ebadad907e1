"""`odnos templates add|list`: the email templates mailing rules and campaigns send.

``add`` checks the template the way the mailer will (syntax, names, sandbox, a trial render) and
refuses a bad one with the reason and line; it prints the template's id alone on the last line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tracker import audit
from tracker.cli.common import open_control
from tracker.crm.templates import list_templates, save_template
from tracker.errors import OdnosError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("templates", help="add and list email templates",
                            description="Email templates: a subject, an HTML body and an optional text "
                                        "body, in Jinja2 (sandboxed). Names: contact (first_name, "
                                        "last_name, email, attrs.NAME, tags), unsubscribe_url, "
                                        "recommended(n), survey(question).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="check and save a template (prints its id)")
    add.add_argument("name")
    add.add_argument("--subject", required=True, help="the subject line (may use {{ contact.first_name }})")
    add.add_argument("--html", required=True, type=Path, help="file with the HTML body (UTF-8)")
    add.add_argument("--text", type=Path, help="file with the plain-text body (default: made from the HTML)")
    add.add_argument("--replace", action="store_true", help="replace a template of the same name")
    add.set_defaults(run=run_add)
    listing = actions.add_parser("list", help="list templates: id, name, subject, updated")
    listing.set_defaults(run=run_list)


def _read(path: Path | None, what: str) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise OdnosError(f"{what} file {path} is not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise OdnosError(f"cannot read the {what} file {path}: {exc.strerror}") from None


def run_add(args: argparse.Namespace) -> int:
    html, text = _read(args.html, "--html"), _read(args.text, "--text")
    control = open_control()
    try:
        saved = save_template(control, args.name, args.subject, html, text, replace=args.replace)
        audit.record_command(control, "template_saved", saved.name, {"id": saved.id})
    finally:
        control.dispose()
    print(f"saved template {saved.name!r}")
    print(saved.id)
    return 0


def run_list(args: argparse.Namespace) -> int:
    control = open_control()
    try:
        for template in list_templates(control):
            print(f"{template.id}\t{template.name}\t{template.subject}\t{template.updated_at:%Y-%m-%d %H:%M}")
    finally:
        control.dispose()
    return 0
