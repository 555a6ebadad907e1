"""The shape of one row of the ``events`` table, shared by the collector, the demo and imports.

``EVENT_DEFAULTS`` mirrors ``schemas/clickhouse/0001_events.sql``; ``event_row`` fills every column
so a batch always carries the same keys (both store backends insert whole rows), and gives the
event a fresh id, which is what makes a replayed spool batch detectable as already written.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

EVENT_DEFAULTS: dict[str, Any] = {
    "event_id": "", "site_id": "", "name": "", "ts": 0, "ts_ms": 0, "received_at": 0, "source": "",
    "visitor_id": "", "session_id": "", "contact_id": "", "url": "", "hostname": "", "pathname": "",
    "referrer": "", "referrer_domain": "", "referrer_source": "", "utm_source": "", "utm_medium": "",
    "utm_campaign": "", "utm_term": "", "utm_content": "", "browser": "", "browser_version": "",
    "os": "", "os_version": "", "device": "", "country": "", "is_bot": 0, "bot_reason": "",
    "is_machine": 0, "machine_reason": "", "campaign_id": "", "message_id": "", "link_id": "",
    "target_url": "", "engaged_ms": 0, "scroll": 0, "props.key": [], "props.value": [],
}


def event_row(name: str, ts: float | None = None, props: dict[str, str] | None = None,
              **fields: Any) -> dict[str, Any]:
    """A complete events row: defaults, then ``fields``; ``ts`` in epoch seconds (float keeps ms)."""
    now = time.time()
    when = now if ts is None else ts
    unknown = fields.keys() - EVENT_DEFAULTS.keys()
    if unknown:
        raise KeyError(f"not columns of events: {sorted(unknown)}")
    row = {**EVENT_DEFAULTS, **fields, "name": name, "ts": int(when), "ts_ms": int(when * 1000) % 1000}
    row["event_id"] = fields.get("event_id") or str(uuid.uuid4())
    row["received_at"] = fields.get("received_at") or int(now)
    if props:
        row["props.key"] = list(props)
        row["props.value"] = [str(v) for v in props.values()]
    return row
