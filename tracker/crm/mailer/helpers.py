"""What a template can call besides the contact's fields: ``recommended(n)`` and ``survey(question)``.

Both are built per message, because each result belongs to one contact (their recommendations) or
carries signed links for one contact and message (the survey's answers). Recommendations are
fetched for a whole batch of contacts at the first call and kept, so a batch costs one query per
distinct ``recommended`` call, not one per message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup

from tracker.crm.model import Contact
from tracker.errors import OdnosError
from tracker.queries.crm.recommended import KINDS, MAX_RECOMMENDED, Recommendation, recommended
from tracker.store.base import EventStore
from tracker.tokens import MAX_SURVEY_QUESTION, SentAt, TokenCodec

SURVEY_SCORES = range(11)


class HelperError(OdnosError):
    """A template called a helper wrongly (``recommended(0)``, an empty survey question)."""

    code = "bad_helper_call"
    status = 422


class Recommender:
    """Recommendations for the contacts of one batch, fetched a chunk at a time on first use, and kept.

    A chunk (``chunk`` contacts around the one being rendered) keeps each query's size bounded on
    large campaigns; a contact outside the batch is asked for alone.
    """

    def __init__(self, store: EventStore | None, contact_ids: Sequence[str], *, site_id: str = "",
                 chunk: int = 500) -> None:
        self._store = store
        self._ids = list(dict.fromkeys(contact_ids))
        self._size = chunk
        self._chunk_of = {cid: n // chunk for n, cid in enumerate(self._ids)}
        self._site_id = site_id
        self._cache: dict[tuple[str, str], dict[str, list[Recommendation]]] = {}

    def helper(self, contact_id: str) -> Callable[..., list[Recommendation]]:
        """The ``recommended(n, kind='any', path_prefix='')`` a template calls for ``contact_id``."""

        def recommended_for(n: int = 3, kind: str = "any", path_prefix: str = "") -> list[Recommendation]:
            _check_recommended(n, kind, path_prefix)
            if self._store is None:
                raise HelperError("recommended() needs the event store, which this render was not given")
            known = self._cache.setdefault((kind, path_prefix), {})
            if contact_id not in known:
                chunk = self._chunk_of.get(contact_id)
                ids = [contact_id] if chunk is None else \
                    self._ids[chunk * self._size:(chunk + 1) * self._size]
                known.update(recommended(self._store, ids, MAX_RECOMMENDED, kind=kind,
                                         path_prefix=path_prefix, site_id=self._site_id))
            return known[contact_id][:n]

        return recommended_for


def _check_recommended(n: Any, kind: Any, path_prefix: Any) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_RECOMMENDED:
        raise HelperError(f"recommended(n): n must be a whole number from 1 to {MAX_RECOMMENDED}, got {n!r}")
    if kind not in KINDS:
        raise HelperError(f"recommended(kind=...): kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(path_prefix, str):
        raise HelperError("recommended(path_prefix=...) must be text such as '/products/'")


SURVEY_CELL = Markup(
    '<td style="padding:2px"><a href="{url}" style="display:inline-block;min-width:28px;padding:6px 4px;'
    'border:1px solid #c8ccd4;border-radius:4px;color:#222222;text-decoration:none;text-align:center;'
    'font-family:Arial,sans-serif;font-size:14px">{score}</a></td>')
SURVEY_TABLE = Markup(
    '<table role="presentation" cellpadding="0" cellspacing="0" border="0" class="odnos-survey">'
    '<tr><td colspan="11" style="padding:4px 2px;font-family:Arial,sans-serif;font-size:15px">'
    '{question}</td></tr><tr>{cells}</tr><tr><td colspan="11" style="padding:2px;'
    'font-family:Arial,sans-serif;font-size:12px;color:#666666">0 = {low}, 10 = {high}</td></tr></table>')


def survey_helper(codec: TokenCodec, base_url: str, contact_id: str, message_id: str,
                  sent_at: SentAt) -> Callable[..., Markup]:
    """The ``survey(question, low=..., high=...)`` a template calls: a 0-10 row of answer links."""

    def survey(question: str, low: str = "Not likely", high: str = "Very likely") -> Markup:
        if not isinstance(question, str) or not question.strip() or len(question) > MAX_SURVEY_QUESTION:
            raise HelperError(f"survey(question): the question must be text of 1 to {MAX_SURVEY_QUESTION} "
                              "characters")
        question = " ".join(question.split())

        def answer_url(score: int) -> str:
            return f"{base_url}/r/{codec.survey(contact_id, message_id, question, score, sent_at=sent_at)}"

        cells = Markup("").join(
            SURVEY_CELL.format(url=answer_url(score), score=score) for score in SURVEY_SCORES)
        return SURVEY_TABLE.format(question=question, cells=cells, low=low, high=high)

    return survey


def context(contact: Contact, unsubscribe_url: str, recommended_for: Callable[..., Any],
            survey: Callable[..., Markup]) -> dict[str, Any]:
    """The names a template sees (``render.NAMES``)."""
    return {"contact": contact, "unsubscribe_url": unsubscribe_url, "recommended": recommended_for,
            "survey": survey}


class _AnyAttrs(dict):
    """A sample contact's attributes: every name has a value, so a trial render takes every branch."""

    def __missing__(self, key: str) -> str:
        return f"sample {key}"


def sample_context(codec: TokenCodec, base_url: str) -> dict[str, Any]:
    """A context for the trial render at save time: a sample contact, sample recommendations."""
    contact = Contact(contact_id="0000000000000000", email="sample@example.com", first_name="Sample",
                      last_name="Contact", attrs=_AnyAttrs())

    def sample_recommended(n: int = 3, kind: str = "any", path_prefix: str = "") -> list[Recommendation]:
        _check_recommended(n, kind, path_prefix)
        return [Recommendation(f"sample item {i + 1}", "item", "", 0, 0) for i in range(n)]

    survey = survey_helper(codec, base_url, contact.contact_id, "0", None)
    return context(contact, f"{base_url}/u/sample", sample_recommended, survey)
