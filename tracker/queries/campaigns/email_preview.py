"""A campaign's email as its recipients got it, with each tracked link marked by its link id.

The click map draws each link's clicks on the email itself, so the links must carry the ids the sent
messages' links carried. The saved template is rendered for a sample contact and its links are found
and numbered by the mailer's own code (``tracker.crm.mailer.links.rewrite``, the same scan, targets
and ``-2`` suffixes); each tracked ``href`` becomes ``#odnos-link-<link id>``, a fragment, so a click
inside the preview goes nowhere and a stylesheet can address every link. A link whose target depends
on the contact (an attribute, a recommendation) gets the sample contact's id, which no sent message
had, and so shows no clicks.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.control.db import ControlPlane
from tracker.crm.mailer.helpers import sample_context
from tracker.crm.mailer.links import TrackedLink, rewrite, splice
from tracker.crm.mailer.scan import scan
from tracker.crm.templates import compile_saved, get_template
from tracker.errors import NotFound
from tracker.tokens import TokenCodec

ANCHOR = "odnos-link-"
# The sample render signs survey links nobody receives; any key will do, and none is a real one.
_PREVIEW_CODEC = TokenCodec(["odnos-click-map-preview-only"])


@dataclass(frozen=True)
class EmailPreview:
    subject: str
    html: str  # the rendered email, each tracked link's href replaced by "#" + ANCHOR + its id
    links: list[TrackedLink]  # in document order; ``url`` is the fragment put in the href


def email_preview(control: ControlPlane, template_id: int, base_url: str) -> EmailPreview | None:
    """The email of template ``template_id`` for a sample contact, or None when the template is gone.

    ``base_url`` is the collector's public URL, as the mailer had it: links into odnos itself
    (unsubscribe, survey answers) stay untracked there, so they stay unmarked here. A template that no
    longer renders raises ``TemplateError`` saying why.
    """
    try:
        template = get_template(control, template_id)
    except NotFound:
        return None
    base_url = base_url.rstrip("/")
    rendered = compile_saved(template).render(sample_context(_PREVIEW_CODEC, base_url))
    splices, links = rewrite(rendered.html, scan(rendered.html), base_url,
                             lambda link_id, _target: f"#{ANCHOR}{link_id}")
    return EmailPreview(rendered.subject, splice(rendered.html, splices), links)
