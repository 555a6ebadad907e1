"""A person's data on request (GDPR access and portability): one JSON-ready document.

``export_contact`` gathers what odnos holds about one address: the contact as profiles show it
(effective consent included), the visitors linked to it, its consent history (the suppression
list, and the consent and unsubscribe events), every stored event tied to it, and every message
the send ledger records for it. ``export_visitor`` does the same for a site visitor id: its events
and identity links. Both read through ``tracker.queries.contacts.person_events``, on either engine;
the CLI (``odnos contacts export``) and the HTTP API call these functions.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.control.db import ControlPlane
from tracker.control.models import Campaign, Rule, SendLedger, Suppression
from tracker.crm.contacts import profile
from tracker.queries.contacts.person_events import contact_events, visitor_events, visitor_links
from tracker.store.base import EventStore

FORMAT = "odnos-export/1"
CONSENT_EVENTS = ("consent", "unsubscribe")


def export_contact(store: EventStore, control: ControlPlane, email: str) -> dict[str, Any]:
    """Everything stored about the contact with this address; ``NotFound`` when there is none."""
    found = profile(store, control, email, limit=1)
    contact_id = found.contact.contact_id
    events = contact_events(store, contact_id)
    with control.sessions() as session:
        found_suppressions = session.scalars(select(Suppression).where(Suppression.contact_id == contact_id)
                                             .order_by(Suppression.created_at, Suppression.list_id))
        suppressions = [{"list_id": s.list_id, "how": s.how, "at": _iso(s.created_at)}
                        for s in found_suppressions]
        messages = _messages(session, contact_id)
    return {
        "format": FORMAT,
        "exported_at": _iso(datetime.now(UTC)),
        "subject": {"email": found.contact.email, "contact_id": contact_id},
        "contact": {key: _plain(value) for key, value in dataclasses.asdict(found.contact).items()},
        "visitors": [{**dataclasses.asdict(v), "linked_at": _iso(v.linked_at)} for v in found.visitors],
        "consent": {"status": found.contact.status, "suppressions": suppressions,
                    "history": [e for e in events if e["name"] in CONSENT_EVENTS]},
        "events": events,
        "messages": messages,
    }


def export_visitor(store: EventStore, visitor_id: str, site_id: str = "") -> dict[str, Any]:
    """Everything stored about one site visitor id (on ``site_id``, or every site when '')."""
    return {
        "format": FORMAT,
        "exported_at": _iso(datetime.now(UTC)),
        "subject": {"visitor_id": visitor_id, "site_id": site_id or None},
        "identities": visitor_links(store, visitor_id, site_id),
        "events": visitor_events(store, visitor_id, site_id),
    }


def _messages(session: Session, contact_id: str) -> list[dict[str, Any]]:
    """The send ledger's rows for the contact, with the rule or campaign by name."""
    rows = session.execute(
        select(SendLedger, Rule.name, Campaign.name)
        .outerjoin(Rule, Rule.id == SendLedger.rule_id)
        .outerjoin(Campaign, Campaign.id == SendLedger.campaign_id)
        .where(SendLedger.contact_id == contact_id)
        .order_by(SendLedger.created_at, SendLedger.id))
    return [{"rule": rule, "campaign": campaign, "trigger": sent.trigger_key, "status": str(sent.status),
             "created_at": _iso(sent.created_at), "sent_at": _iso(sent.sent_at),
             "smtp_message_id": sent.smtp_message_id, "error": sent.error}
            for sent, rule, campaign in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    return list(value) if isinstance(value, tuple) else value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()
