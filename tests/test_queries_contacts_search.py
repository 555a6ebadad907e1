"""Contact search and the contact vocabulary on both engines, against what Python finds in the rows.

Contacts go in through the CRM's own upsert (and one unsubscribe event, as the collector writes
it), on chDB and on the ClickHouse server; the expected matches are computed here from the same
inputs with plain string operations, never by the SQL under test.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tracker.contacts import contact_id_for
from tracker.control.db import ControlPlane
from tracker.crm.contacts import ContactUpdate, upsert_contacts
from tracker.events import event_row
from tracker.queries.contacts.contact_vocabulary import contact_vocabulary
from tracker.queries.contacts.search_contacts import search_contacts
from tracker.store.migrate import migrate

KEYS = ("test-key-" + "s" * 24,)
FIRST = ["Ana", "Marko", "Émile", "Sara", "O'Neil", "Zoë"]
LAST = ["Petrović", "Smith", "Müller", "100% Cotton", "Under_score"]
CITIES = ["Belgrade", "Berlin", "São Paulo", "Paris"]
HOSTILE = ["'", "\\", "%", "_", "%%", "' OR 1=1 --", "'); DROP TABLE contacts; --", "%(text)s", "\x00",
           "*", "\"", "plan:' OR ''='"]


@pytest.fixture
def people(store, tmp_path: Path):
    """60 contacts with names, attributes and tags; #7 unsubscribed by event, #8 by import."""
    migrate(store)
    control = ControlPlane(f"sqlite:///{tmp_path / 'control.db'}")
    control.migrate()
    rng = random.Random(11)
    updates = []
    for n in range(60):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        tags = tuple(t for t in ("vip", "newsletter", "Beta Tester") if rng.random() < 0.3)
        attrs = {"plan": rng.choice(["free", "pro"]), "city": rng.choice(CITIES)}
        if n % 5 == 0:
            attrs["company"] = f"Acme {n}"
        updates.append(ContactUpdate(f"user{n}.{last.split()[0].lower()}@Example.org", first_name=first,
                                     last_name=last, attrs=attrs, tags=tags,
                                     status="unsubscribed" if n == 8 else None))
    upsert_contacts(store, control, KEYS, updates)
    store.insert("events", [event_row("unsubscribe", time.time(), {"list": "", "how": "page"},
                                      contact_id=contact_id_for(updates[7].email))])
    yield updates
    control.dispose()


def _expected(updates, text: str = "", tag: str = "", consent: str = "") -> set[str]:
    text = text.strip()
    found = set()
    for n, u in enumerate(updates):
        email = u.email.strip().lower()
        state = "unsubscribed" if n in (7, 8) else "subscribed"
        if tag and tag not in u.tags or consent and consent != state:
            continue
        if text:
            key, colon, value = text.partition(":")
            if colon and value.strip() and "@" not in key:
                if key not in u.attrs or value.strip().lower() not in u.attrs[key].lower():
                    continue
            else:
                needle = text.lower()
                haystacks = [email, f"{u.first_name} {u.last_name}".lower(),
                             *(v.lower() for v in u.attrs.values()), *(t.lower() for t in u.tags)]
                if not any(needle in h for h in haystacks):
                    continue
        found.add(email)
    return found


def _emails(store, text: str = "", **kwargs) -> set[str]:
    page = search_contacts(store, text, limit=1000, **kwargs)
    emails = {c.email for c in page.contacts}
    assert page.total == len(emails)
    return emails


@pytest.mark.parametrize(("text", "tag", "consent"), [
    ("", "", ""), ("smith", "", ""), ("SMITH", "", ""), ("ana petrović", "", ""), ("müller", "", ""),
    ("user1", "", ""), ("example.org", "", ""), ("berlin", "", ""), ("são", "", ""), ("acme", "", ""),
    ("beta", "", ""), ("100%", "", ""), ("under_score", "", ""), ("o'neil", "", ""),
    ("plan:pro", "", ""), ("city:PARIS", "", ""), ("company:acme 1", "", ""), ("nosuch:x", "", ""),
    ("", "vip", ""), ("", "Beta Tester", ""), ("smith", "newsletter", ""), ("", "", "unsubscribed"),
    ("", "", "subscribed"), ("plan:free", "vip", "subscribed"), ("zzz-nobody", "", ""),
])
def test_search_finds_what_python_finds(store, people, text: str, tag: str, consent: str) -> None:
    expected = _expected(people, text, tag, consent)
    assert _emails(store, text, tag=tag, consent=consent) == expected
    if text == "" and tag == "" and consent == "":
        assert len(expected) == 60


def test_pages_are_newest_first_and_cover_every_match_once(store, people) -> None:
    pages = [search_contacts(store, "example", offset=offset, limit=25) for offset in (0, 25, 50)]
    assert [p.total for p in pages] == [60, 60, 60]
    assert [len(p.contacts) for p in pages] == [25, 25, 10]
    seen = [c for p in pages for c in p.contacts]
    assert len({c.contact_id for c in seen}) == 60
    keys = [(-c.created_at.timestamp(), c.contact_id) for c in seen]
    assert keys == sorted(keys)


def test_hostile_text_finds_nothing_and_breaks_nothing(store, people) -> None:
    for text in HOSTILE:
        assert _emails(store, text) == _expected(people, text), text
    # Taken literally: % and _ find the names that hold them, not every contact (as LIKE would).
    percent, underscore = _expected(people, "%"), _expected(people, "_")
    assert 0 < len(percent) < 60 and 0 < len(underscore) < 60
    assert not _expected(people, "'); DROP TABLE contacts; --")
    assert _emails(store) == _expected(people)  # the table is still there, whole


def test_a_bad_consent_or_limit_is_refused(store, people) -> None:
    from tracker.errors import OdnosError

    with pytest.raises(OdnosError, match="unknown consent"):
        search_contacts(store, consent="maybe")
    with pytest.raises(OdnosError, match="row limit"):
        search_contacts(store, limit=0)


def test_vocabulary_counts_tags_and_attribute_names(store, people) -> None:
    vocabulary = contact_vocabulary(store)
    tags: dict[str, int] = {}
    names: dict[str, int] = {}
    for u in people:
        for t in u.tags:
            tags[t] = tags.get(t, 0) + 1
        for a in u.attrs:
            names[a] = names.get(a, 0) + 1
    assert dict(vocabulary.tags) == tags
    assert dict(vocabulary.attributes) == names
    counts = [n for _, n in vocabulary.tags]
    assert counts == sorted(counts, reverse=True)
