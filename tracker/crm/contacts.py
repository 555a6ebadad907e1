"""Contacts: one per normalised email; upsert (merge onto what is stored), status, profile, lists.

Every change reads the stored row, merges what the caller gives onto it and writes a whole new
row with a higher version (``contacts`` is a ReplacingMergeTree): fields the caller does not give
are kept, attributes merge key by key, tags are the union. Versions are microseconds since the
epoch, far above the versions of rows the collector's view writes for identified visitors
(schemas/clickhouse/0006), so an identify never overrides an import. Consent only ever moves
away from subscribed here (see tracker.crm.consent). Functions take the runtime's parts (event
store, control plane, signing keys) so the CLI, the HTTP API and the server call the same code.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tracker.contacts import contact_id_for, normalize_email
from tracker.control.db import ControlPlane
from tracker.crm import consent
from tracker.crm.model import ConsentStatus, Contact
from tracker.errors import NotFound, OdnosError
from tracker.queries.contacts.contact_profile import LinkedVisitor, contact_profile, linked_visitors
from tracker.queries.contacts.contact_timeline import Timeline, contact_timeline
from tracker.queries.contacts.current_contacts import current_contacts
from tracker.store.base import EventStore

STATUSES = tuple(s.value for s in ConsentStatus)
MAX_TAG = 128


@dataclass(frozen=True)
class ContactUpdate:
    """What one import row or API call says about a person; None / empty means "not given"."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    status: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


class Outcome(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    refused = "refused"


@dataclass(frozen=True)
class UpsertResult:
    outcome: Outcome
    contact_id: str = ""
    reason: str = ""  # why refused, or a note (consent kept) on an accepted row


def check_status(status: str) -> str:
    """``status`` if it is a consent state; else an OdnosError naming the states."""
    if status not in STATUSES:
        raise OdnosError(f"status {status!r} is not one of {', '.join(STATUSES)}", code="bad_status")
    return status


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags stripped and deduplicated; OdnosError for an empty or over-long one."""
    clean = []
    for tag in tags:
        tag = tag.strip()
        if not tag or len(tag) > MAX_TAG:
            raise OdnosError(f"a tag must be 1 to {MAX_TAG} characters, not {tag[:40]!r}", code="bad_tag")
        clean.append(tag)
    return tuple(dict.fromkeys(clean))


def _merge(base: Contact, update: ContactUpdate, suppressed_as: str | None) -> tuple[Contact, str]:
    """``update`` merged onto ``base``; the note says when a re-subscription was refused."""
    status, note = base.status, ""
    if suppressed_as is not None and status == ConsentStatus.subscribed:
        status = suppressed_as  # the suppression list is the authority; bring the row in line
    if update.status is not None:
        if status != ConsentStatus.subscribed and update.status == ConsentStatus.subscribed:
            note = f"consent kept: the address is {status}, an import cannot subscribe it again"
        else:
            status = update.status
    merged = replace(
        base, email=update.email,
        first_name=base.first_name if update.first_name is None else update.first_name,
        last_name=base.last_name if update.last_name is None else update.last_name,
        status=status, attrs={**base.attrs, **update.attrs},
        tags=tuple(dict.fromkeys((*base.tags, *update.tags))))
    return merged, note


def _same(a: Contact, b: Contact) -> bool:
    return (a.email, a.first_name, a.last_name, a.status, a.attrs, a.tags) == (
        b.email, b.first_name, b.last_name, b.status, b.attrs, b.tags)


def contact_row(contact: Contact) -> dict[str, Any]:
    """The ``contacts`` row of a contact, as the store's insert takes it."""
    def epoch(value: datetime | None) -> int:
        return int(value.timestamp()) if value else int(time.time())

    return {"contact_id": contact.contact_id, "email": contact.email, "first_name": contact.first_name,
            "last_name": contact.last_name, "status": contact.status, "source": contact.source,
            "created_at": epoch(contact.created_at), "updated_at": epoch(contact.updated_at),
            "version": contact.version, "deleted": 0, "attrs.key": list(contact.attrs),
            "attrs.value": list(contact.attrs.values()), "tags": list(contact.tags)}


def upsert_contacts(store: EventStore, control: ControlPlane, keys: Sequence[str],
                    updates: Sequence[ContactUpdate], *, source: str = "import") -> list[UpsertResult]:
    """Create or update contacts by email, in bulk; one result per update, in order.

    Reads the stored rows and the suppressions for the whole batch at once, merges, and writes
    the changed rows in one insert, the consent changes as ``consent`` events and, for every move
    away from subscribed, a suppression. An address that was erased is refused: it is never
    stored, nor mailed, again. Several updates of one address in a batch apply in order.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    version = time.time_ns() // 1000
    results: list[UpsertResult | None] = [None] * len(updates)
    normalised: list[tuple[int, str, ContactUpdate]] = []
    for index, update in enumerate(updates):
        try:
            email = normalize_email(update.email)
            if update.status is not None:
                check_status(update.status)
            update = replace(update, email=email, tags=clean_tags(update.tags))
        except OdnosError as exc:
            results[index] = UpsertResult(Outcome.refused, reason=exc.message)
            continue
        normalised.append((index, contact_id_for(email), update))
    ids = {cid for _, cid, _ in normalised}
    stored = current_contacts(store, ids)
    with control.sessions() as session:
        suppressed = consent.suppressions(session, ids)
        gone = consent.erased(session, keys, {u.email for _, _, u in normalised})
    working: dict[str, Contact] = {}
    seen: set[str] = set()
    asked: dict[str, str] = {}  # contact id -> the status its updates asked for, if any
    for index, cid, update in normalised:
        if update.email in gone:
            results[index] = UpsertResult(Outcome.refused, cid, "the address was erased at the person's "
                                          "request; it is not stored or mailed again")
            continue
        base = working.get(cid) or stored.get(cid) or Contact(
            contact_id=cid, email=update.email, source=source, created_at=now, updated_at=now)
        how = suppressed.get(cid)
        merged, note = _merge(base, update, None if how is None else consent.status_of_suppression(how))
        working[cid] = merged
        if update.status is not None:
            asked[cid] = update.status
        # What the row did is judged by the contact's state after the whole batch: a file imported
        # twice is unchanged the second time even if two of its rows disagree with each other.
        outcome = Outcome.created if cid not in stored and cid not in seen else Outcome.updated
        seen.add(cid)
        results[index] = UpsertResult(outcome, cid, note)
    for index, result in enumerate(results):
        if result and result.outcome is Outcome.updated and result.contact_id in stored and _same(
                stored[result.contact_id], working[result.contact_id]):
            results[index] = replace(result, outcome=Outcome.unchanged)
    changed = []
    changes = []
    for cid, contact in working.items():
        first = stored.get(cid)
        if first is not None and _same(first, contact):
            continue
        floor = first.version + 1 if first else 0
        changed.append(replace(contact, updated_at=now, version=max(version, floor)))
        previous = first.status if first else ""
        if contact.status != (previous or ConsentStatus.subscribed):
            # Not asked for: the row is brought in line with the suppression list (the unsubscribe
            # page wrote it); say so rather than crediting this import.
            how = source if asked.get(cid) == contact.status else "suppression"
            changes.append(consent.ConsentChange(cid, contact.status, previous, how))
    consent.suppress_many(control.sessions, changes)  # the mailer's authority first
    store.insert("contacts", [contact_row(c) for c in changed])
    store.insert("events", consent.consent_events(changes))
    return [r for r in results if r is not None]


def set_status(store: EventStore, control: ControlPlane, keys: Sequence[str], email: str, status: str,
               *, how: str) -> UpsertResult:
    """Record a consent change for one address (a bounce or a complaint from the mailer, an API call).

    Moving back to subscribed is refused with the reason; the contact is created if unknown.
    """
    [result] = upsert_contacts(store, control, keys, [ContactUpdate(email, status=check_status(status))],
                               source=how)
    return result


@dataclass(frozen=True)
class Profile:
    contact: Contact
    visitors: list[LinkedVisitor]
    suppressed: dict[str, str]  # list id ('' = every list) -> how
    timeline: Timeline


def find_contact(store: EventStore, email: str) -> Contact:
    """The contact of an address; NotFound (exit 2 in the CLI) when there is none."""
    contact = contact_profile(store, contact_id_for(email))
    if contact is None:
        raise NotFound(f"no contact {normalize_email(email)}; import it with "
                       "`odnos contacts import FILE.csv`")
    return contact


def profile(store: EventStore, control: ControlPlane, email: str, *, limit: int = 200) -> Profile:
    """Everything known about one contact: the row, linked visitors, suppressions and the timeline."""
    contact = find_contact(store, email)
    with control.sessions() as session:
        suppressed = consent.lists_left(session, contact.contact_id)
    if "" in suppressed and contact.status == ConsentStatus.subscribed:
        contact = replace(contact, status=consent.status_of_suppression(suppressed[""]))
    return Profile(contact, linked_visitors(store, contact.contact_id), suppressed,
                   contact_timeline(store, contact.contact_id, limit=limit))
