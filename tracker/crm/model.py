"""The contact as the CRM's parts pass it around: what the mailer renders and segments return."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ConsentStatus(StrEnum):
    """A contact's consent; only ``subscribed`` contacts are ever mailed."""

    subscribed = "subscribed"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"


@dataclass(frozen=True, slots=True)
class Contact:
    """One person, one normalised email; ``contact_id`` is ``tracker.contacts.contact_id_for(email)``."""

    contact_id: str
    email: str
    first_name: str = ""
    last_name: str = ""
    status: str = ConsentStatus.subscribed.value
    attrs: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # How the contact first arrived (import, api, identify, email_link) and the row's version in
    # ClickHouse (an upsert writes a higher one; see schemas/clickhouse/0006).
    source: str = ""
    version: int = 0
