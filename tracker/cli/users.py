"""`odnos user add`: create a person who can log in to the dashboard."""

from __future__ import annotations

import argparse
import sys

from tracker.cli.common import open_control
from tracker.control.models import Role
from tracker.control.users import add_user


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("user", help="manage dashboard users",
                            description="Manage the people who can log in to the dashboard.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a user (prints the user id)",
                             description="Add a user. Roles: admin (everything), marketer (segments, "
                                         "rules, campaigns), viewer (reads reports).")
    add.add_argument("--email", required=True)
    add.add_argument("--password", required=True,
                     help="the password, or - to read it from standard input (keeps it out of `ps`)")
    add.add_argument("--role", choices=[r.value for r in Role], default="viewer")
    add.set_defaults(run=run_add)


def run_add(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password == "-" else args.password  # noqa: S105
    control = open_control()
    with control.session() as db:
        user = add_user(db, args.email, password, args.role)
        user_id = user.id
    control.dispose()
    print(f"added {args.role} {args.email}")
    print(user_id)
    return 0
