"""The dashboard's filters: a whitelist of dimensions, values checked, and the SQL each one becomes.

Every filter is a dimension from ``DIMENSIONS`` and a value. Column names come only from that
table, values only as ``%(f_<name>)s`` parameters rendered by ``tracker.store.sql``, so a hostile
value (quotes, ``'); DROP TABLE events; --``, backslashes, NUL) matches nothing and breaks nothing.
An unknown dimension or a value that is not a short string is an ``OdnosError`` (code ``bad_filter``
or ``bad_dimension``, status 400).

Two kinds of dimension, because of what an event row carries:

- **hit** dimensions (``page``, ``country``, ``device``, ``browser``, ``os``) are on every event, so
  page-level numbers (visitors, pageviews, top pages, events, goals) filter each event by its own
  value; sessions are filtered by their entry pageview's value, except ``page``, which keeps the
  sessions that viewed a matching page anywhere.
- **landing** dimensions (``referrer_source``, ``referrer_domain``, ``utm_source``, ``utm_medium``,
  ``utm_campaign``) are only on the pageview a visit arrived with (later pageviews have the site
  itself as referrer), so they select sessions by their entry pageview, and turn every number into
  one about those visits (``tracker.queries.scope`` says how).

``page`` takes a pattern: ``*`` stands for any characters (``/blog/*``); everything else is literal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from tracker.errors import OdnosError

MAX_VALUE = 2048
# dimension -> (events column, kind)
DIMENSIONS: dict[str, tuple[str, str]] = {
    "page": ("pathname", "hit"),
    "country": ("country", "hit"),
    "device": ("device", "hit"),
    "browser": ("browser", "hit"),
    "os": ("os", "hit"),
    "referrer_source": ("referrer_source", "landing"),
    "referrer_domain": ("referrer_domain", "landing"),
    "utm_source": ("utm_source", "landing"),
    "utm_medium": ("utm_medium", "landing"),
    "utm_campaign": ("utm_campaign", "landing"),
}
# Dimensions a session carries from its entry pageview (the sessions rollup keeps each of them).
SESSION_DIMENSIONS = ("referrer_source", "referrer_domain", "utm_source", "utm_medium", "utm_campaign",
                      "country", "device", "browser", "os")


def check_choice(value: Any, allowed: tuple[str, ...], what: str = "dimension") -> str:
    """``value`` if it is one of ``allowed``, else a 400 (code ``bad_<what>``) naming the choices."""
    if not isinstance(value, str) or value not in allowed:
        raise OdnosError(f"unknown {what} {str(value)[:60]!r}; use one of {', '.join(allowed)}",
                         code=f"bad_{what}")
    return value


def check_limit(limit: Any, most: int = 1000) -> int:
    """A row limit between 1 and ``most``, else a 400 (code ``bad_limit``)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
        raise OdnosError(f"the row limit must be a whole number from 1 to {most}", code="bad_limit")
    return limit


def like_pattern(pattern: str) -> str:
    """A ``page`` pattern as a LIKE pattern: ``*`` is any text; ``%``, ``_`` and ``\\`` are literal."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


@dataclass(frozen=True)
class Filters:
    """The filters of one dashboard view; ``None`` means "not filtered by this dimension"."""

    page: str | None = None
    country: str | None = None
    device: str | None = None
    browser: str | None = None
    os: str | None = None
    referrer_source: str | None = None
    referrer_domain: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise OdnosError(f"filter {field.name} must be text, not {type(value).__name__}",
                                 code="bad_filter")
            if len(value) > MAX_VALUE:
                raise OdnosError(f"filter {field.name} is longer than {MAX_VALUE} characters",
                                 code="bad_filter")

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> Filters:
        """Filters from a mapping such as a URL's query string; unknown names are refused."""
        unknown = sorted(set(values) - set(DIMENSIONS))
        if unknown:
            shown = ", ".join(repr(str(name)[:40]) for name in unknown[:3])
            raise OdnosError(f"unknown filter {shown}; filters are {', '.join(DIMENSIONS)}",
                             code="bad_filter")
        return cls(**{name: value for name, value in values.items() if value is not None})

    def active(self) -> dict[str, str]:
        """The dimensions that are set, with their values."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def of_kind(self, kind: str) -> dict[str, str]:
        return {name: value for name, value in self.active().items() if DIMENSIONS[name][1] == kind}

    def only(self, *names: str) -> bool:
        """True when no filter outside ``names`` is set."""
        return set(self.active()) <= set(names)

    def params(self) -> dict[str, str]:
        """Each set filter as the parameter ``f_<name>`` (the page pattern as a LIKE pattern)."""
        return {f"f_{name}": like_pattern(value) if name == "page" else value
                for name, value in self.active().items()}


NO_FILTERS = Filters()


def condition(name: str, column: str | None = None) -> str:
    """The SQL test of filter ``name`` on ``column`` (default: its events column)."""
    column = column or DIMENSIONS[name][0]
    return f"{column} LIKE %(f_{name})s" if name == "page" else f"{column} = %(f_{name})s"


def conditions(names: Mapping[str, Any] | list[str]) -> str:
    """``AND``-joined tests of several filters, each on its events column."""
    return " AND ".join(condition(name) for name in names)
