"""What the drop-in mappings share: the ``Dropin`` description of an endpoint and the field readers.

Each foreign payload becomes odnos beacon events (``schemas/event.schema.json``); ``Dropin.parse``
checks them with the same schema as ``POST /e``, so limits and messages are the beacon's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tracker.collect.beacon import BadBeacon, check_event
from tracker.collect.sites import SiteCache, SiteView


@dataclass(frozen=True)
class Dropin:
    """One foreign tracker's endpoint: its mapping, its answer, the headers its script sends."""

    to_events: Callable[[Any, SiteCache], list[dict[str, Any]]]
    status: int
    body: bytes
    content_type: str
    allow_headers: str = "Content-Type"

    def parse(self, body: bytes, sites: SiteCache) -> list[dict[str, Any]]:
        """The odnos events a request body stands for, each checked against the beacon schema."""
        if not body.strip():
            raise BadBeacon("the body is empty; send the tracker's JSON payload", code="empty_body")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadBeacon(f"the body is not valid JSON (UTF-8): {exc}", code="bad_json") from None
        if not isinstance(data, dict):
            raise BadBeacon("the body must be a JSON object", code="bad_event", field="body")
        events = self.to_events(data, sites)
        for index, event in enumerate(events):
            check_event(event, index)
        return events


def text(data: dict[str, Any], key: str, *, required: bool = False, default: str = "",
         where: str = "") -> str:
    """A string field of the payload (``None`` counts as absent); BadBeacon naming it otherwise.

    ``where`` is the object the field sits in, for the message and ``field`` (``payload.url``).
    """
    name = f"{where}.{key}" if where else key
    value = data.get(key)
    if value is None:
        if required:
            raise BadBeacon(f"{name}: required", code="bad_event", field=name)
        return default
    if not isinstance(value, str):
        raise BadBeacon(f"{name}: must be a string, not {type(value).__name__}", code="bad_event", field=name)
    return value


def site_by_host(sites: SiteCache, host: str) -> SiteView | None:
    """The registered site a tracker's domain or host name (``example.com``, ``WWW.example.com``,
    ``localhost`` for a site with ``allow_local``) belongs to; None when no site has it."""
    return sites.site_for_host(host.strip().lower().rstrip("."))


def unknown_site(domain: str, field: str) -> BadBeacon:
    return BadBeacon(f"{field}: no site has the domain {domain[:80]!r}; register it with "
                     f"`odnos site add NAME --domain {domain[:80]}`", code="unknown_site", field=field)


def flat_props(value: Any, field: str) -> dict[str, str]:
    """Custom properties as odnos keeps them: text keys and values.

    Numbers and booleans become their JSON text (``true``, ``15.99``), nested objects and arrays
    their compact JSON; ``null`` values are left out. Their number and lengths are the beacon
    schema's to check (``Dropin.parse``).
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadBeacon(f"{field}: must be an object", code="bad_event", field=field)
    props: dict[str, str] = {}
    for key, item in value.items():
        if item is None:
            continue
        props[str(key)] = item if isinstance(item, str) else orjson.dumps(item).decode()
    return props
