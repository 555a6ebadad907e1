"""`odnos site add|list`: register the websites whose hits the collector accepts."""

from __future__ import annotations

import argparse

from tracker.cli.common import open_control
from tracker.control.sites import add_site, list_sites
from tracker.settings import load_settings
from tracker.snippet import snippet_tag


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("site", help="register and list sites",
                            description="A site is registered with its domains; the collector refuses "
                                        "hits for unknown sites or from other domains.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="register a site (prints the site id)")
    add.add_argument("name")
    add.add_argument("--domain", action="append", required=True,
                     help="a domain the site's pages are served from (repeat for more)")
    add.set_defaults(run=run_add)
    listing = actions.add_parser("list", help="list sites: id, name, domains")
    listing.set_defaults(run=run_list)


def run_add(args: argparse.Namespace) -> int:
    control = open_control()
    with control.session() as db:
        site = add_site(db, args.name, args.domain)
        site_id, domains = site.id, [d.domain for d in site.domains]
    control.dispose()
    public = load_settings().effective_public_url()
    print(f"added site {args.name!r} for {', '.join(domains)}; put this on its pages:")
    print(f"  {snippet_tag(site_id, public)}")
    print(site_id)
    return 0


def run_list(args: argparse.Namespace) -> int:
    control = open_control()
    with control.session() as db:
        for site in list_sites(db):
            print(f"{site.id}\t{site.name}\t{','.join(d.domain for d in site.domains)}")
    control.dispose()
    return 0
