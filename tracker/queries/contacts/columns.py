"""The columns every contact reader selects, the effective consent, and the row -> ``Contact`` step.

Consent lives in two places and the effective state combines them: the row's ``status`` (written by
imports, the API and the mailer through tracker.crm) and the ``unsubscribe`` events the collector
writes when a person leaves every list (props.list = ''), which never touch the row. Nobody is
re-subscribed by either path, so "subscribed but unsubscribed since" is simply unsubscribed.
The suppression list in the control database stays the mailer's authority; this is what segments,
profiles and lists show.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tracker.crm.model import Contact

UNSUBSCRIBED_SQL = """
    SELECT contact_id FROM events
    WHERE name = 'unsubscribe' AND contact_id != '' AND props.value[indexOf(props.key, 'list')] = ''
"""

CONSENT_SQL = f"if(status = 'subscribed' AND contact_id IN ({UNSUBSCRIBED_SQL}), 'unsubscribed', status)"

# Over `contacts FINAL`; `consent` is the effective state, `status` what the row itself says.
CONTACT_COLUMNS = f"""
    contact_id, email, first_name, last_name, {CONSENT_SQL} AS consent, source, created_at, updated_at,
    version, attrs.key, attrs.value, tags
"""

# The same without the events look-up, for writers that merge onto the row as stored.
STORED_COLUMNS = """
    contact_id, email, first_name, last_name, status AS consent, source, created_at, updated_at,
    version, attrs.key, attrs.value, tags
"""


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def contact_from_row(row: tuple[Any, ...]) -> Contact:
    """A ``Contact`` from one row of ``CONTACT_COLUMNS`` or ``STORED_COLUMNS``."""
    (contact_id, email, first_name, last_name, consent, source, created_at, updated_at, version,
     attr_keys, attr_values, tags) = row
    return Contact(contact_id=contact_id, email=email, first_name=first_name, last_name=last_name,
                   status=consent, attrs=dict(zip(attr_keys, attr_values, strict=True)), tags=tuple(tags),
                   created_at=_utc(created_at), updated_at=_utc(updated_at), source=source,
                   version=int(version))
