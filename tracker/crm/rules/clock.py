"""Time zones and quiet hours: whose clock a rule reads, and whether it is night there.

A contact's ``timezone`` attribute (an IANA name such as ``Europe/Paris``) wins when it names a
real zone; otherwise the rule's own zone (UTC unless given) applies. Quiet hours ``start-end`` are
whole local hours: ``21-8`` is quiet from 21:00 to 07:59, ``1-5`` from 01:00 to 04:59.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tracker.crm.model import Contact
from tracker.errors import OdnosError

TIMEZONE_ATTRIBUTE = "timezone"


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def check_zone(name: str) -> str:
    """``name`` if it is an IANA time zone; an OdnosError naming an example otherwise."""
    if not name or _zone(name) is None:
        raise OdnosError(f"time zone {name!r} is not an IANA name such as UTC, Europe/Paris or "
                         "America/New_York", code="bad_timezone")
    return name


def zone_of(contact: Contact, default: str) -> tuple[str, tzinfo]:
    """The name and zone of the contact's clock: its ``timezone`` attribute if valid, else ``default``."""
    own = contact.attrs.get(TIMEZONE_ATTRIBUTE, "").strip()
    if own and (zone := _zone(own)) is not None:
        return own, zone
    return default, _zone(default) or ZoneInfo("UTC")


def is_quiet(local: datetime, start: int, end: int) -> bool:
    """Whether the local time falls in the quiet hours ``start`` to ``end`` (end hour not included)."""
    hour = local.hour
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def quiet_reason(contact: Contact, default_zone: str, start: int | None, end: int | None,
                now: datetime) -> str | None:
    """None when the contact may be mailed now; else why not, e.g. ``quiet hours (23:10 Europe/Paris)``."""
    if start is None or end is None:
        return None
    name, zone = zone_of(contact, default_zone)
    local = now.astimezone(zone)
    if not is_quiet(local, start, end):
        return None
    return f"quiet hours ({local:%H:%M} {name}, until {end:02d}:00)"
