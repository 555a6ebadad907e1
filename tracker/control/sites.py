"""Sites and their domains: add, find and list sites; normalise domains; match a request's host.

Domains are kept in one canonical form (``tracker.hosts.normalize_host``: lower-case ASCII, punycode
for international names, no port, trailing dot or leading ``www.``; here also no scheme or path),
and hosts are matched by ``tracker.hosts.host_in_domains``, so ``https://WWW.Example.com:443/`` and
``example.com`` are the same site.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.control.fields import clean_name
from tracker.control.models import DEFAULT_SITE_OPTIONS, Site, SiteDomain
from tracker.errors import NotFound, OdnosError
from tracker.hosts import host_in_domains, normalize_host

MAX_DOMAIN_LENGTH = 253  # DNS limit on a whole name
_SCHEME = re.compile(r"^(?:https?:)?//")
_AFTER_HOST = re.compile(r"[/?#]")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def normalize_domain(value: str) -> str:
    """The canonical form of a domain, host or site URL; ``OdnosError`` (``bad_domain``) for garbage.

    Accepts ``example.com``, ``https://www.example.com/``, ``Example.com:8080/path``,
    ``bücher.de``. Refuses other schemes, credentials, single labels (``localhost``: local
    traffic is the site option ``allow_local``), IPv6 literals and anything not made of DNS labels.
    """
    if not isinstance(value, str):
        raise OdnosError(f"A domain must be a text, not {type(value).__name__}.", code="bad_domain")
    authority = _AFTER_HOST.split(_SCHEME.sub("", value.strip().lower(), count=1), maxsplit=1)[0]
    port = authority.partition(":")[2]
    host = normalize_host(authority)  # names IDNA cannot encode stay non-ASCII and are refused below
    labels = host.split(".")
    if (
        (port and not port.isdigit())
        or len(host) > MAX_DOMAIN_LENGTH
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
    ):
        shown = value.strip()[:80]
        raise OdnosError(
            f"{shown!r} is not a domain; give the site's host name, like example.com or https://www.example.com/.",
            code="bad_domain",
        )
    return host


def add_site(
    session: Session, name: str, domains: Iterable[str], options: Mapping[str, bool] | None = None
) -> Site:
    """Add a site with at least one domain (normalised, duplicates merged) and flush it.

    ``options`` overrides keys of ``DEFAULT_SITE_OPTIONS``. Raises ``OdnosError`` with code
    ``bad_name``, ``bad_domain`` or ``bad_option``.
    """
    name = clean_name(name, what="site name", max_length=200)
    if isinstance(domains, str):  # one string would otherwise be read as a list of characters
        raise OdnosError("Give the site's domains as a list, e.g. ['example.com'].", code="bad_domain")
    unique = sorted({normalize_domain(domain) for domain in domains})
    if not unique:
        raise OdnosError("A site needs at least one domain, e.g. example.com.", code="bad_domain")
    site = Site(
        name=name,
        options={**DEFAULT_SITE_OPTIONS, **_check_options(options or {})},
        domains=[SiteDomain(domain=domain) for domain in unique],
    )
    session.add(site)
    session.flush()
    return site


def get_site(session: Session, site_id: str) -> Site:
    """The site with this id; ``NotFound`` (``unknown_site``) otherwise."""
    site = session.get(Site, site_id) if isinstance(site_id, str) else None
    if site is None:
        raise NotFound(f"There is no site with id {str(site_id)[:40]!r}.", code="unknown_site")
    return site


def list_sites(session: Session) -> list[Site]:
    """All sites, oldest first (the order they were added in)."""
    return list(session.scalars(select(Site).order_by(Site.created_at, Site.id)))


def site_allows_host(site: Site, host: str) -> bool:
    """Whether hits from ``host`` (a Host, Origin or Referer value) belong to ``site``.

    True when the host is one of the site's domains or a subdomain of one (``www.`` included);
    False for anything malformed. ``evil-example.com`` does not match ``example.com``.
    """
    try:
        host = normalize_domain(host)
    except OdnosError:
        return False
    return host_in_domains(host, (item.domain for item in site.domains))


def _check_options(options: Mapping[str, bool]) -> dict[str, bool]:
    for key, value in options.items():
        if key not in DEFAULT_SITE_OPTIONS or not isinstance(value, bool):
            known = ", ".join(DEFAULT_SITE_OPTIONS)
            raise OdnosError(
                f"Site option {key!r}={value!r} is not valid; options are {known}, each true or false.",
                code="bad_option",
            )
    return dict(options)
