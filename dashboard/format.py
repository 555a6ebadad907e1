"""How numbers read on the dashboard: separators, percentages, durations."""

from __future__ import annotations


def number(value: float) -> str:
    """1234567 -> '1.2M', 12345 -> '12.3k', 999 -> '999' (as the KPI cards show them)."""
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:,.0f}"


def percent(value: float) -> str:
    return f"{value:.0f}%"


def duration(seconds: float) -> str:
    """Seconds as '42s', '3m 05s' or '1h 02m'."""
    total = int(round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
