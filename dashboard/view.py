"""What a dashboard URL asks for: the site, the date range and the filters, read from its query string.

The filter bar writes these parameters and every page reads them, so a view is a URL that can be
shared and reloaded. Ranges are whole UTC days (``period=7d`` is today and the six days before it),
which is also what lets the queries answer from the daily rollups. A parameter edited by hand into
something invalid is an ``OdnosError`` the page shows as a message, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from tracker.errors import OdnosError
from tracker.queries.filters import DIMENSIONS, Filters
from tracker.queries.period import Period

PRESETS = {"today": 1, "7d": 7, "30d": 30, "90d": 90, "12mo": 365}
PRESET_LABELS = {"today": "Today", "7d": "7 days", "30d": "30 days", "90d": "90 days", "12mo": "12 months",
                 "custom": "Custom"}
DEFAULT_PRESET = "30d"
_KEPT = ("goals", "funnel", "window")
"""Parameters of one page (the behaviour page's goals and funnel) that a view carries along as they are."""
_OWN = {"site", "period", "from", "to", *_KEPT}


@dataclass(frozen=True)
class View:
    site_id: str
    preset: str
    period: Period
    filters: Filters
    kept: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, query: Mapping[str, str], default_site: str, today: date | None = None) -> View:
        """The view a URL's query asks for; unknown parameters and bad values are ``OdnosError``s."""
        today = today or datetime.now(UTC).date()
        site_id = query.get("site") or default_site
        preset = query.get("period") or DEFAULT_PRESET
        if preset == "custom":
            period = Period.days(_day(query.get("from"), "from"), _day(query.get("to"), "to"))
        elif preset in PRESETS:
            period = Period.days(today - timedelta(days=PRESETS[preset] - 1), today)
        else:
            raise OdnosError(f"unknown period {preset[:20]!r}; use one of {', '.join(PRESET_LABELS)}",
                             code="bad_period")
        filters = Filters.parse({k: v for k, v in query.items() if k not in _OWN and v != ""})
        kept = tuple((name, query[name]) for name in _KEPT if query.get(name))
        return cls(site_id, preset, period, filters, kept)

    @property
    def last_day(self) -> date:
        return (self.period.end - timedelta(days=1)).date()

    def query(self, **changes: str | None) -> str:
        """This view's query string with ``changes`` (``None`` removes a filter)."""
        params: dict[str, str] = {"site": self.site_id, "period": self.preset}
        if self.preset == "custom":
            params.update({"from": f"{self.period.start:%Y-%m-%d}", "to": f"{self.last_day:%Y-%m-%d}"})
        params.update(self.filters.active())
        params.update(self.kept)
        for name, value in changes.items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = value
        return "?" + urlencode(params)

    def without(self, dimension: str) -> View:
        return replace(self, filters=Filters(**{k: v for k, v in self.filters.active().items()
                                                 if k != dimension}))


def _day(value: str | None, name: str) -> date:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        raise OdnosError(f"the {name} date must look like 2026-01-31", code="bad_period") from None


FILTER_LABELS = {"page": "Page", "country": "Country", "device": "Device", "browser": "Browser", "os": "OS",
                 "referrer_source": "Source", "referrer_domain": "Referrer", "utm_source": "UTM source",
                 "utm_medium": "UTM medium", "utm_campaign": "UTM campaign"}
assert set(FILTER_LABELS) == set(DIMENSIONS)
