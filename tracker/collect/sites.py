"""The registered sites, cached in each collector worker: a hit never waits on the database.

All sites are reloaded every ``ttl`` seconds (they are few rows), and an unknown site id triggers
an early reload at most once every ``miss_interval`` seconds, so a site added with `odnos site add`
is accepted within a couple of seconds without letting junk ids hammer the database.

Reloads run in the background (``BackgroundReload``), so a control database that is slow or down
costs the hot path nothing while a copy is cached: hits go on with the last good copy, a failed
reload is retried every few seconds by one thread, and the outage is logged once. Only a worker
that never loaded the sites waits for them, and answers 503 if they cannot be read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tracker.control.db import ControlPlane
from tracker.control.models import Site
from tracker.control.sites import list_sites, site_allows_host
from tracker.errors import StoreUnavailable

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0  # while the control database is down, one reload is tried this often
MISS_WAIT_SECONDS = 1.0  # an unknown site id waits this long for a reload that might know it
FIRST_LOAD_SECONDS = 5.0  # a worker with nothing cached waits this long for the first load


class BackgroundReload:
    """Runs ``reload`` (control-plane data the hot path caches) in a background thread, one at a time.

    ``request`` starts a run unless one is running or the last one failed under ``retry`` seconds
    ago, and returns the running thread for a caller that may wait on it. The first failure of an
    outage is logged as a warning, the recovery once as info.
    """

    def __init__(self, reload: Callable[[], None], what: str, retry: float = RETRY_SECONDS) -> None:
        self._reload = reload
        self._what = what
        self._retry = retry
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failed_at: float | None = None

    def _backing_off(self) -> bool:
        failed_at = self._failed_at
        return failed_at is not None and time.monotonic() - failed_at < self._retry

    def request(self) -> threading.Thread | None:
        """The reload running now (started by this call if none was and one may be); None if none."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            return thread
        if self._backing_off():
            return None
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self._thread
            if self._backing_off():
                return None
            self._thread = threading.Thread(target=self._run, name=f"odnos-reload {self._what}", daemon=True)
            self._thread.start()
            return self._thread

    def _run(self) -> None:
        try:
            self._reload()
        except Exception as exc:  # noqa: BLE001 - whatever it is, the hot path goes on with its copy
            if self._failed_at is None:
                log.warning("cannot reload %s from the control database (%s); going on with what this "
                            "worker has and retrying every %g s", self._what, str(exc).strip(), self._retry)
            self._failed_at = time.monotonic()
            return
        if self._failed_at is not None:
            log.info("reloaded %s: the control database answers again", self._what)
        self._failed_at = None


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


# Hosts as ``split_url`` gives them (lower case, no port, no brackets around IPv6) that are this machine.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class SiteCache:
    def __init__(self, control: ControlPlane, ttl: float = 30.0, miss_interval: float = 2.0,
                 retry: float = RETRY_SECONDS, miss_wait: float = MISS_WAIT_SECONDS) -> None:
        self._control = control
        self._ttl = ttl
        self._miss_interval = miss_interval
        self._miss_wait = miss_wait
        self._sites: dict[str, SiteView] = {}
        self._hosts: dict[tuple[str, str], bool] = {}
        self._loaded_at = float("-inf")
        self._reloads = BackgroundReload(self._reload, "the sites", retry)

    def _reload(self) -> None:
        with self._control.session() as db:
            sites = {s.id: SiteView.of(s) for s in list_sites(db)}
        self._sites = sites
        self._hosts = {}
        self._loaded_at = time.monotonic()

    def _refresh(self, older_than: float, wait: float) -> None:
        """Have a reload run when the cache is older than ``older_than`` seconds.

        Waits up to ``wait`` seconds for it; a worker that never loaded the sites waits for the first
        load and raises ``StoreUnavailable`` (503) if there is none.
        """
        if time.monotonic() - self._loaded_at <= older_than:
            return
        loaded = self._loaded_at != float("-inf")
        running = self._reloads.request()
        if running is not None and (wait or not loaded):
            running.join(wait if loaded else FIRST_LOAD_SECONDS)
        if self._loaded_at == float("-inf"):
            raise StoreUnavailable("the collector cannot read the registered sites: the control database "
                                   "does not answer; check ODNOS_DATABASE_URL and that the database runs")

    def get(self, site_id: str) -> SiteView | None:
        """The site with this id, or None once a fresh reload does not know it either."""
        self._refresh(self._ttl, 0.0)
        site = self._sites.get(site_id)
        if site is None:
            self._refresh(self._miss_interval, self._miss_wait)
            site = self._sites.get(site_id)
        return site

    def allows(self, site: SiteView, host: str) -> bool:
        """May a page on ``host`` (as ``split_url`` gives it) send hits for ``site``?

        Local hosts only with the allow_local option.
        """
        key = (site.id, host)
        allowed = self._hosts.get(key)
        if allowed is None:
            allowed = site.option("allow_local") if host in LOCAL_HOSTS else site_allows_host(site.site, host)
            if len(self._hosts) < 100_000:
                self._hosts[key] = allowed
        return allowed

    def site_for_host(self, host: str) -> SiteView | None:
        """The registered site a URL's host belongs to (for the hand-off on tracked links)."""
        self._refresh(self._ttl, 0.0)
        for site in self._sites.values():
            if host and self.allows(site, host):
                return site
        return None

    def any_allows(self, host: str) -> bool:
        """Does any registered site accept pages from ``host`` (a CORS preflight has no site id)?"""
        return self.site_for_host(host) is not None
