"""`odnos apikey create|list|revoke`: keys for the HTTP API, each with the scopes it may use."""

from __future__ import annotations

import argparse

from tracker import audit
from tracker.cli.common import open_control
from tracker.control.api_keys import (
    SCOPES,
    create_api_key,
    key_by_prefix,
    key_owner,
    list_api_keys,
    parse_scopes,
    revoke_api_key,
)
from tracker.errors import OdnosError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("apikey", help="create, list and revoke HTTP API keys",
                            description="An API key acts as its user on /api/v1, within its scopes: "
                                        f"{', '.join(SCOPES)}.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="make a key (prints it once, last line)")
    create.add_argument("--name", required=True, help="what the key is for, e.g. 'newsletter tool'")
    create.add_argument("--scope", action="append", required=True,
                        help=f"comma-separated scopes, or repeat the option: {', '.join(SCOPES)}")
    create.add_argument("--user", metavar="EMAIL", help="the user the key acts as (default: the first admin)")
    create.set_defaults(run=run_create)
    listing = actions.add_parser("list", help="list keys: prefix, name, user, scopes, state, last use")
    listing.set_defaults(run=run_list)
    revoke = actions.add_parser("revoke", help="revoke a key for good")
    revoke.add_argument("prefix", help="the key's prefix, as `odnos apikey list` shows it")
    revoke.set_defaults(run=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    scopes = parse_scopes(",".join(args.scope))
    if not scopes:
        raise OdnosError(f"Give --scope with at least one of {', '.join(SCOPES)}.", code="bad_scope")
    control = open_control()
    try:
        with control.session() as db:
            user = key_owner(db, args.user)
            key, plaintext = create_api_key(db, user.id, args.name, scopes)
            audit.record(db, audit.cli_actor(), "api_key_created", key.name,
                         {"id": key.id, "prefix": key.prefix, "user": user.email, "scopes": key.scopes})
            print(f"created API key {key.prefix} {key.name!r} for {user.email} with scopes {key.scopes}; "
                  "it is shown only now:")
    finally:
        control.dispose()
    print(plaintext)
    return 0


def run_list(args: argparse.Namespace) -> int:
    control = open_control()
    try:
        with control.session() as db:
            for key in list_api_keys(db):
                state = "revoked" if key.revoked_at is not None else "active"
                used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
                print(f"{key.prefix}\t{key.name}\t{key.user.email}\t{key.scopes or '-'}\t{state}\t{used}")
    finally:
        control.dispose()
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    control = open_control()
    try:
        with control.session() as db:
            key = revoke_api_key(db, key_by_prefix(db, args.prefix).id)
            audit.record(db, audit.cli_actor(), "api_key_revoked", key.name,
                         {"id": key.id, "prefix": key.prefix})
            print(f"revoked API key {key.prefix} {key.name!r}")
    finally:
        control.dispose()
    return 0
