"""The registered sites, cached in each collector worker: a hit never waits on the database.

All sites are reloaded every ``ttl`` seconds (they are few rows), and an unknown site id triggers
an early reload at most once every ``miss_interval`` seconds, so a site added with `odnos site add`
is accepted within a couple of seconds without letting junk ids hammer the database.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from tracker.control.db import ControlPlane
from tracker.control.models import Site
from tracker.control.sites import list_sites, site_allows_host


@dataclass(frozen=True)
class SiteView:
    """What the hot path reads of a site, copied out of the ORM row once per reload."""

    site: Site
    id: str
    domains: tuple[str, ...]
    identify_secret: str
    options: dict

    @classmethod
    def of(cls, site: Site) -> SiteView:
        return cls(site, site.id, tuple(d.domain for d in site.domains), site.identify_secret,
                   dict(site.options or {}))

    def option(self, name: str) -> bool:
        return bool(self.options.get(name))


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


class SiteCache:
    def __init__(self, control: ControlPlane, ttl: float = 30.0, miss_interval: float = 2.0) -> None:
        self._control = control
        self._ttl = ttl
        self._miss_interval = miss_interval
        self._lock = threading.Lock()
        self._sites: dict[str, SiteView] = {}
        self._hosts: dict[tuple[str, str], bool] = {}
        self._loaded_at = float("-inf")

    def _reload(self) -> None:
        with self._control.session() as db:
            sites = {s.id: SiteView.of(s) for s in list_sites(db)}
        self._sites = sites
        self._hosts = {}
        self._loaded_at = time.monotonic()

    def _refresh(self, older_than: float) -> None:
        """Reload when the cache is older than ``older_than`` seconds; one thread reloads, others wait."""
        if time.monotonic() - self._loaded_at > older_than:
            with self._lock:
                if time.monotonic() - self._loaded_at > older_than:
                    self._reload()

    def get(self, site_id: str) -> SiteView | None:
        """The site with this id, or None once a fresh reload does not know it either."""
        self._refresh(self._ttl)
        site = self._sites.get(site_id)
        if site is None:
            self._refresh(self._miss_interval)
            site = self._sites.get(site_id)
        return site

    def allows(self, site: SiteView, host: str) -> bool:
        """May a page on ``host`` send hits for ``site``? Local hosts only with the allow_local option."""
        key = (site.id, host)
        allowed = self._hosts.get(key)
        if allowed is None:
            if host.split(":")[0] in LOCAL_HOSTS:
                allowed = site.option("allow_local")
            else:
                allowed = site_allows_host(site.site, host)
            if len(self._hosts) < 100_000:
                self._hosts[key] = allowed
        return allowed

    def site_for_host(self, host: str) -> SiteView | None:
        """The registered site a URL's host belongs to (for the hand-off on tracked links)."""
        self._refresh(self._ttl)
        for site in self._sites.values():
            if host and self.allows(site, host):
                return site
        return None

    def any_allows(self, host: str) -> bool:
        """Does any registered site accept pages from ``host`` (a CORS preflight has no site id)?"""
        return self.site_for_host(host) is not None
