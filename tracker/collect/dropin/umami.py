"""Umami's collect API (``POST /api/send``) mapped onto odnos beacon events.

Umami's script sends ``{"type": "event" | "identify", "payload": {...}}``; the payload has
``website`` (Umami's website id), ``hostname`` (the page's host), ``url`` (the page's path and query,
or a full URL), ``referrer``, ``name`` and ``data`` (a custom event and its properties; no name is a
pageview), and ``title``, ``screen``, ``language``, which odnos does not keep (it reads the device
and language-free facts from the request itself). ``identify`` (properties of the visitor's
session) becomes a ``session_data`` event carrying ``data`` as props. Other keys are ignored.

The site is the registered site whose domain the page's ``hostname`` belongs to; when none has it
(a page on ``localhost``, say), ``website`` may be the odnos site id. Umami's own website ids are
not kept: a site is found by its domain. A path-only ``url`` is made absolute on ``hostname`` with
``https``. The answer is JSON, ``200 {"ok": true}``; the script sends it back in the
``x-umami-cache`` header, which the CORS preflight therefore allows.
"""

from __future__ import annotations

from typing import Any

from tracker.collect.beacon import BadBeacon
from tracker.collect.dropin.mapping import Dropin, flat_props, site_by_host, text, unknown_site
from tracker.collect.sites import LOCAL_HOSTS, SiteCache, SiteView

TYPES = ("event", "identify")


def to_events(data: dict[str, Any], sites: SiteCache) -> list[dict[str, Any]]:
    """The one odnos event an Umami request stands for; BadBeacon (naming the field) otherwise."""
    kind = text(data, "type", default="event")
    if kind not in TYPES:
        raise BadBeacon(f"type: must be one of {', '.join(TYPES)}, not {kind[:40]!r}", code="bad_event",
                        field="type")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise BadBeacon("payload: required, an object", code="bad_event", field="payload")
    hostname = text(payload, "hostname", where="payload").strip().lower()
    site = _site(sites, hostname, text(payload, "website", where="payload"))
    url = text(payload, "url", required=True, where="payload")
    if not url.startswith(("http://", "https://")):
        if not hostname or not url.startswith("/"):
            raise BadBeacon("payload.url: a path needs payload.hostname, or send the full URL",
                            code="bad_event", field="payload.url")
        url = f"https://{hostname}{url}"
    event: dict[str, Any] = {"site": site.id, "url": url}
    referrer = text(payload, "referrer", where="payload")
    if referrer:
        event["referrer"] = referrer
    props = flat_props(payload.get("data"), "payload.data")
    if kind == "identify":
        event["name"] = "session_data"
    else:
        event["name"] = text(payload, "name", where="payload").strip() or "pageview"
    if props:
        event["props"] = props
    return [event]


def _site(sites: SiteCache, hostname: str, website: str) -> SiteView:
    """By the page's host, or by ``website`` as an odnos site id when the host is local or unknown."""
    by_host = site_by_host(sites, hostname) if hostname else None
    if website and (by_host is None or hostname in LOCAL_HOSTS):
        by_id = sites.get(website)
        if by_id is not None:
            return by_id
    if by_host is None:
        if not hostname:
            raise BadBeacon("payload.hostname: required (the page's host name)", code="bad_event",
                            field="payload.hostname")
        raise unknown_site(hostname, "payload.hostname")
    return by_host


DROPIN = Dropin(to_events, status=200, body=b'{"ok":true}', content_type="application/json",
                allow_headers="Content-Type, x-umami-cache")
