"""Plausible's event API (``POST /api/event``) mapped onto odnos beacon events.

What Plausible's scripts and its documented server-side API send, short or long keys:
``n``/``name`` (``pageview``, ``engagement`` or a custom event), ``u``/``url`` (the page's full
URL), ``d``/``domain`` (the site's domain as registered, or several, comma-separated: one event per
site, as Plausible's rollups do), ``r``/``referrer`` (text or null), ``p``/``props`` (an object, or
the JSON text of one, as older scripts sent it), ``$``/``revenue`` (``{"amount", "currency"}``),
``i``/``interactive`` (false for events that do not count against bounce), ``h``/``hash`` (hash
routing: the fragment is part of the page), and on ``engagement`` ``e`` (engaged milliseconds) and
``sd`` (scroll depth in percent). Other keys (the script's version ``v``) are ignored, as
Plausible does.

odnos keeps revenue as the props ``revenue_amount`` and ``revenue_currency``, a non-interactive
event as ``interactive=false`` and, with hash routing, the fragment as ``hash`` (its pathname is
the URL's path, as for every event). The answer is Plausible's: ``202`` with the text ``ok``.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from tracker.collect.beacon import BadBeacon
from tracker.collect.dropin.mapping import Dropin, flat_props, site_by_host, text, unknown_site
from tracker.collect.sites import SiteCache

ENGAGED_MS_MAX = 86_400_000  # schemas/event.schema.json: engaged_ms.maximum


def to_events(data: dict[str, Any], sites: SiteCache) -> list[dict[str, Any]]:
    """One odnos event per site named in ``d``; BadBeacon (naming the field) for a malformed payload."""
    name = _first(data, "n", "name", required=True)
    url = _first(data, "u", "url", required=True)
    event: dict[str, Any] = {"name": name, "url": url}
    referrer = _first(data, "r", "referrer")
    if referrer:
        event["referrer"] = referrer
    props = _props(data)
    revenue = data.get("$", data.get("revenue"))
    if revenue is not None:
        props.update(_revenue(revenue))
    interactive = data.get("i", data.get("interactive"))
    if interactive is not None and not isinstance(interactive, bool):
        raise BadBeacon("i: must be true or false", code="bad_event", field="i")
    if interactive is False:
        props["interactive"] = "false"
    if data.get("h", data.get("hash")) and "#" in url:
        props["hash"] = "#" + url.partition("#")[2]
    if props:
        event["props"] = props
    if name == "engagement":
        event["engaged_ms"] = min(_whole(data, "e"), ENGAGED_MS_MAX)
        event["scroll"] = min(_whole(data, "sd"), 100)
    domains = _first(data, "d", "domain", required=True)
    return [{"site": site_id, **event} for site_id in _sites(domains, sites)]


def _first(data: dict[str, Any], short: str, long: str, required: bool = False) -> str:
    key = short if data.get(short) is not None else long
    value = text(data, key)
    if required and not value:
        raise BadBeacon(f"{short}: required (or {long})", code="bad_event", field=short)
    return value


def _sites(domains: str, sites: SiteCache) -> list[str]:
    found: list[str] = []
    for domain in filter(None, (d.strip() for d in domains.split(","))):
        site = site_by_host(sites, domain)
        if site is None:
            raise unknown_site(domain, "d")
        if site.id not in found:
            found.append(site.id)
    if not found:
        raise BadBeacon("d: required: the site's domain", code="bad_event", field="d")
    return found


def _props(data: dict[str, Any]) -> dict[str, str]:
    key = "p" if data.get("p") is not None else "props"
    value = data.get(key)
    if isinstance(value, str):  # older scripts sent the props as the JSON text of an object
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadBeacon(f"{key}: must be an object or the JSON text of one", code="bad_event",
                            field=key) from None
    return flat_props(value, key)


def _revenue(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadBeacon('revenue: must be {"amount": ..., "currency": "EUR"}', code="bad_event",
                        field="revenue")
    amount, currency = value.get("amount"), value.get("currency")
    if not _is_number(amount):
        raise BadBeacon("revenue.amount: must be a number or its text", code="bad_event",
                        field="revenue.amount")
    if not isinstance(currency, str) or not currency.strip():
        raise BadBeacon("revenue.currency: must be a currency code such as EUR", code="bad_event",
                        field="revenue.currency")
    return {"revenue_amount": str(amount).strip(), "revenue_currency": currency.strip().upper()}


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _whole(data: dict[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BadBeacon(f"{key}: must be a number at least 0", code="bad_event", field=key)
    return round(value)


DROPIN = Dropin(to_events, status=202, body=b"ok", content_type="text/plain; charset=utf-8")
