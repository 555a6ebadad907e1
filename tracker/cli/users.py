"""`odnos user add`: create a person who can log in to the dashboard, or give one a new password."""

from __future__ import annotations

import argparse
import sys

from tracker import audit
from tracker.auth import end_sessions
from tracker.cli.common import open_control
from tracker.control.models import Role
from tracker.control.users import add_user, set_password
from tracker.errors import OdnosError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("user", help="manage dashboard users",
                            description="Manage the people who can log in to the dashboard.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a user, or reset a password with --reset (prints the user id)",
                             description="Add a user. Roles: admin (everything), marketer (segments, "
                                         "rules, campaigns), viewer (reads reports). With --reset, give "
                                         "an existing user this password instead (and this role, if "
                                         "--role is given) and end their open sessions. Prints the "
                                         "user id last.")
    add.add_argument("--email", required=True)
    add.add_argument("--password", required=True,
                     help="the password, or - to read it from standard input (keeps it out of `ps`)")
    add.add_argument("--role", choices=[r.value for r in Role],
                     help="admin, marketer or viewer (default viewer; with --reset: unchanged)")
    add.add_argument("--reset", action="store_true",
                     help="the user exists: set this password (a forgotten or lost login)")
    add.set_defaults(run=run_add)


def run_add(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password == "-" else args.password  # noqa: S105
    control = open_control()
    try:
        with control.session() as db:
            if args.reset:
                user = set_password(db, args.email, password, args.role)
                end_sessions(db, user.id)  # a lost or stolen password: whoever holds a session is out
                audit.record(db, audit.cli_actor(), "password_reset", user.email, {"role": str(user.role)})
                done = f"set a new password for {user.role} {user.email}"
            else:
                user = add_user(db, args.email, password, args.role or Role.viewer.value)
                audit.record(db, audit.cli_actor(), "user_added", user.email, {"role": str(user.role)})
                done = f"added {user.role} {user.email}"
            user_id = user.id
    except OdnosError as exc:
        if exc.code == "duplicate_email":
            raise OdnosError(f"{exc.message.rstrip('.')}; to give it a new password, add --reset",
                             code=exc.code) from None
        if exc.code == "unknown_user":
            raise OdnosError(f"{exc.message.rstrip('.')}; leave out --reset to add it",
                             code=exc.code) from None
        raise
    finally:
        control.dispose()
    print(done)
    print(user_id)
    return 0
