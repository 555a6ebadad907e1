"""Find contacts by what a person types: part of an address or a name, an attribute value, a tag.

The dashboard's contact search. The text matches, ignoring case, anywhere in the email, the
first or last name (or both: "ana smith"), any attribute value or any tag; ``plan:pro`` looks in
the ``plan`` attribute only. A tag and a consent state (the effective one, as profiles show it)
narrow the result. The text is a bound parameter compared with ``position``, never a LIKE
pattern, so ``%``, ``_``, quotes and backslashes are only characters. Results come newest
contact first, one page at a time, with the total the pager needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tracker.crm.model import ConsentStatus, Contact
from tracker.queries.contacts.columns import CONSENT_SQL, CONTACT_COLUMNS, contact_from_row
from tracker.queries.filters import check_choice, check_limit
from tracker.store.base import EventStore

_ANYWHERE = """(
    position(lowerUTF8(email), lowerUTF8(%(text)s)) > 0
    OR position(lowerUTF8(concat(first_name, ' ', last_name)), lowerUTF8(%(text)s)) > 0
    OR arrayExists(v -> position(lowerUTF8(v), lowerUTF8(%(text)s)) > 0, attrs.value)
    OR arrayExists(t -> position(lowerUTF8(t), lowerUTF8(%(text)s)) > 0, tags))"""
_IN_ATTRIBUTE = """(has(attrs.key, %(key)s)
    AND position(lowerUTF8(attrs.value[indexOf(attrs.key, %(key)s)]), lowerUTF8(%(text)s)) > 0)"""
_TAG = "has(tags, %(tag)s)"
_CONSENT = f"{CONSENT_SQL} = %(consent)s"

COUNT_SQL = "SELECT count() FROM contacts FINAL WHERE {where}"
PAGE_SQL = f"""
SELECT {CONTACT_COLUMNS}
FROM contacts FINAL
WHERE {{where}}
ORDER BY created_at DESC, contact_id
LIMIT %(offset)s, %(limit)s
"""  # noqa: S608 - our SQL fragments only; values are bound parameters

# ``name:value``: an attribute name (as an import's column header) before the colon, no '@' in it.
_ATTRIBUTE_QUERY = re.compile(r"^([A-Za-z0-9_.-]{1,128}):(.*)$", re.DOTALL)
MAX_TEXT = 512


@dataclass(frozen=True)
class ContactPage:
    total: int  # every contact that matches
    contacts: list[Contact]  # this page of them


def search_contacts(store: EventStore, text: str = "", *, tag: str = "", consent: str = "",
                    offset: int = 0, limit: int = 50) -> ContactPage:
    """The contacts matching ``text`` (and having ``tag``, in ``consent``), ``limit`` after ``offset``."""
    text = text.strip()[:MAX_TEXT]
    terms = ["deleted = 0", "email != ''"]
    params: dict[str, Any] = {"offset": max(0, int(offset)), "limit": check_limit(limit)}
    if text:
        found = _ATTRIBUTE_QUERY.match(text)
        if found and found.group(2).strip():
            params.update(key=found.group(1), text=found.group(2).strip())
            terms.append(_IN_ATTRIBUTE)
        else:
            params["text"] = text
            terms.append(_ANYWHERE)
    if tag:
        params["tag"] = tag
        terms.append(_TAG)
    if consent:
        params["consent"] = check_choice(consent, tuple(ConsentStatus), "consent")
        terms.append(_CONSENT)
    where = " AND ".join(terms)
    total = store.query(COUNT_SQL.format(where=where), params, name="contact search count").scalar() or 0
    rows = store.query(PAGE_SQL.format(where=where), params, name="contact search").rows if total else []
    return ContactPage(total=int(total), contacts=[contact_from_row(row) for row in rows])
