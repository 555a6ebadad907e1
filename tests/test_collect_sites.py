"""The collector's site cache on a real control database: local hosts, and reloads in the background.

The outage through the real server (PostgreSQL frozen and stopped under load) is in
``test_control_down.py``; these pin the rules it relies on, one at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.processes import wait_until
from tracker.collect.sites import BackgroundReload, SiteCache
from tracker.control.db import ControlPlane
from tracker.control.sites import add_site
from tracker.enrich.referrer import split_url
from tracker.errors import StoreUnavailable


@pytest.fixture
def plane(tmp_path: Path) -> ControlPlane:
    control = ControlPlane(f"sqlite:///{tmp_path / 'control.db'}")
    control.migrate()
    yield control
    control.dispose()


def _add(plane: ControlPlane, name: str, **options: bool) -> str:
    with plane.session() as db:
        return add_site(db, name, ["shop.example.com"], options).id


@pytest.mark.parametrize("url", ["http://[::1]:8080/", "http://[::1]/p", "http://localhost:3000/",
                                 "http://LOCALHOST./", "http://127.0.0.1:8000/x"])
def test_loopback_pages_are_local(plane: ControlPlane, url: str) -> None:
    local, strict = _add(plane, "Dev", allow_local=True), _add(plane, "Prod")
    cache = SiteCache(plane)
    host, _ = split_url(url)
    assert cache.allows(cache.get(local), host), f"{url} ({host!r}) is not treated as local"
    assert not cache.allows(cache.get(strict), host)  # without allow_local, local pages are refused


def test_a_failing_reload_serves_the_last_copy_and_retries_sparingly(plane: ControlPlane, caplog) -> None:
    site = _add(plane, "Shop")
    cache = SiteCache(plane, ttl=0.0, miss_interval=0.0, retry=0.5, miss_wait=0.3)
    assert cache.get(site).id == site
    calls = []

    def broken() -> None:
        calls.append(time.monotonic())
        raise StoreUnavailable("the control database is down")

    cache._reloads._reload = broken  # noqa: SLF001 - the database "goes down"
    with caplog.at_level(logging.INFO, logger="tracker.collect.sites"):
        started = time.monotonic()
        while time.monotonic() - started < 1.6:
            assert cache.get(site).id == site  # every hit, at once, from the last good copy
            assert cache.get("s_unknown") is None
            time.sleep(0.01)
        cache._reloads._reload = cache._reload  # noqa: SLF001 - and comes back
        added = _add(plane, "Later")
        # The reload thread logs its recovery just after it has swapped the new copy in.
        wait_until(lambda: cache.get(added) is not None
                   and any("answers again" in r.getMessage() for r in caplog.records), timeout=3, every=0.05)
    assert cache.get(added) is not None, "a site added after the outage is not seen"
    assert 2 <= len(calls) <= 5, f"{len(calls)} reloads tried in 1.6 s with a 0.5 s retry interval"
    assert all(b - a >= 0.5 for a, b in zip(calls, calls[1:], strict=False))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "the sites" in warnings[0].getMessage()  # once per outage
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_a_slow_reload_holds_up_no_hit(plane: ControlPlane) -> None:
    site = _add(plane, "Shop")
    cache = SiteCache(plane, ttl=0.0, miss_wait=0.2)
    assert cache.get(site).id == site
    release = threading.Event()
    cache._reloads._reload = lambda: release.wait(10)  # noqa: SLF001 - a database that hangs
    try:
        started = time.monotonic()
        for _ in range(50):
            assert cache.get(site).id == site
            assert cache.site_for_host("shop.example.com").id == site
            assert cache.any_allows("www.shop.example.com")
        assert time.monotonic() - started < 0.5
        started = time.monotonic()
        assert cache.get("s_unknown") is None  # an unknown id waits for the running reload, briefly
        assert time.monotonic() - started < 1.0
    finally:
        release.set()


def test_a_worker_that_never_loaded_the_sites_answers_503(tmp_path: Path) -> None:
    plane = ControlPlane(f"sqlite:///{tmp_path / 'control.db'}")  # never migrated: no tables
    try:
        with pytest.raises(StoreUnavailable, match="cannot read the registered sites"):
            SiteCache(plane).get("s_anything")
    finally:
        plane.dispose()


def test_background_reload_runs_one_at_a_time() -> None:
    running, release = threading.Event(), threading.Event()
    runs = []

    def reload() -> None:
        runs.append(1)
        running.set()
        release.wait(5)

    reloads = BackgroundReload(reload, "test data")
    first = reloads.request()
    running.wait(5)
    assert all(reloads.request() is first for _ in range(20))
    release.set()
    first.join(5)
    second = reloads.request()
    assert second is not first
    second.join(5)
    assert len(runs) == 2
