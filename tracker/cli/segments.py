"""`odnos segments add|preview|list`: thin wrappers over tracker.crm.segments."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tracker import audit
from tracker.cli.common import open_control, open_runtime
from tracker.crm.segments import add_segment, get_segment, list_segments, segment_members, segment_size
from tracker.errors import OdnosError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("segments", help="define and preview segments of contacts",
                            description="A segment is a JSON definition of contacts by attributes and "
                                        "behaviour (schemas/segment.schema.json; examples in "
                                        "schemas/examples/segments/), computed live when asked.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="store a segment (prints its id last)")
    add.add_argument("name")
    add.add_argument("--file", type=Path, required=True, help="the definition, a JSON file")
    add.add_argument("--replace", action="store_true", help="give an existing segment this definition")
    add.set_defaults(run=run_add)
    preview = actions.add_parser("preview", help="size of a segment now, then a sample of its members")
    preview.add_argument("name", help="segment name or id")
    preview.add_argument("--limit", type=int, default=20, help="members to show (default 20)")
    preview.set_defaults(run=run_preview)
    listing = actions.add_parser("list", help="list segments: id, name, last change")
    listing.set_defaults(run=run_list)


def read_definition(path: Path) -> Any:
    """The JSON in ``path``; OdnosError saying what is wrong with the file otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OdnosError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OdnosError(f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise OdnosError(f"{path} is not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def run_add(args: argparse.Namespace) -> int:
    definition = read_definition(args.file)
    control = open_control()  # the control database only: works beside a running server
    try:
        with control.session() as db:
            segment = add_segment(db, args.name, definition, replace=args.replace)
            segment_id, name = segment.id, segment.name
            audit.record(db, audit.cli_actor(), "segment_saved", name, {"id": segment_id})
    finally:
        control.dispose()
    print(f"segment {name!r} stored; preview it with `odnos segments preview {name}`")
    print(segment_id)
    return 0


def run_preview(args: argparse.Namespace) -> int:
    with open_runtime() as runtime:
        with runtime.control.session() as db:
            segment = get_segment(db, args.name)
            name, definition = segment.name, segment.definition
        size = segment_size(runtime.store, definition)
        sample = segment_members(runtime.store, definition, limit=args.limit) if args.limit > 0 else []
    print(f"segment {name!r}: {size:,} contacts")
    for c in sample:
        print("\t".join([c.contact_id, c.email, c.first_name, c.last_name, c.status]))
    return 0


def run_list(args: argparse.Namespace) -> int:
    control = open_control()
    try:
        with control.session() as db:
            rows = [(s.id, s.name, s.updated_at) for s in list_segments(db)]
    finally:
        control.dispose()
    for segment_id, name, updated in rows:
        print(f"{segment_id}\t{name}\t{updated:%Y-%m-%d %H:%M:%S}")
    return 0
