"""The campaigns and mailing rules the control plane knows, under the campaign ids their events carry.

Events name a campaign only by ``campaign_id`` (``tracker.queries.campaigns``): a campaign's sends
carry its id (``7``), a rule's ``r`` and its id (``r3``), as ``tracker.crm.sending.Owner`` makes
them. This gives each id its name, kind, site, template and state, so reports can show names and
draw a campaign's email; ids that only events know (links made for another mail tool with
``odnos link --campaign``) have no entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from tracker.control.db import ControlPlane
from tracker.control.models import Campaign, Rule
from tracker.crm.sending import Owner


@dataclass(frozen=True)
class Mailing:
    campaign_id: str  # as events carry it: "7" for campaign 7, "r3" for rule 3
    kind: str  # "campaign" or "rule"
    name: str
    site_id: str | None  # a rule belongs to no site
    template_id: int | None
    state: str  # a campaign's status (draft, sending, sent...), or "enabled" / "disabled" for a rule
    sent_at: datetime | None  # a campaign's send; a rule's last evaluation


def mailings(control: ControlPlane) -> list[Mailing]:
    """Every campaign (newest first), then every rule (by name)."""
    with control.sessions() as session:
        campaigns = session.scalars(select(Campaign).order_by(Campaign.id.desc())).all()
        rules = session.scalars(select(Rule).order_by(Rule.name)).all()
        return [
            *(Mailing(Owner.campaign(c.id).prefix, "campaign", c.name, c.site_id, c.template_id,
                      str(c.status), c.sent_at) for c in campaigns),
            *(Mailing(Owner.rule(r.id).prefix, "rule", r.name, None, r.template_id,
                      "enabled" if r.enabled else "disabled", r.last_run_at) for r in rules),
        ]
