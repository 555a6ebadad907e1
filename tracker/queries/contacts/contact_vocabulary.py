"""The tags and attribute names contacts carry, with how many contacts carry each: for pickers.

The contact search's tag filter and the segment builder's attribute and tag fields offer what is
really there rather than a blank box. Counted over contacts as they are now (``FINAL``, not
erased, with an address), most used first.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.store.base import EventStore

TAGS_SQL = """
SELECT tag, count() AS contacts
FROM contacts FINAL
ARRAY JOIN tags AS tag
WHERE deleted = 0 AND email != ''
GROUP BY tag
ORDER BY contacts DESC, tag
LIMIT %(limit)s
"""

ATTRIBUTES_SQL = """
SELECT name, count() AS contacts
FROM contacts FINAL
ARRAY JOIN attrs.key AS name
WHERE deleted = 0 AND email != ''
GROUP BY name
ORDER BY contacts DESC, name
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Vocabulary:
    tags: list[tuple[str, int]]  # (tag, contacts with it)
    attributes: list[tuple[str, int]]  # (attribute name, contacts with it)


def contact_vocabulary(store: EventStore, *, limit: int = 500) -> Vocabulary:
    """The ``limit`` most used tags and attribute names."""
    params = {"limit": limit}
    tags = store.query(TAGS_SQL, params, name="contact tags").rows
    attributes = store.query(ATTRIBUTES_SQL, params, name="contact attribute names").rows
    return Vocabulary(tags=[(t, int(n)) for t, n in tags], attributes=[(a, int(n)) for a, n in attributes])
