"""What the send ledger says about one rule: its rows per contact, its sends of the last hour, history.

The rows themselves are written by tracker.crm.sending (the protocol lives there); the rule runner
only reads them, plus two bulk writes of its own that never mail anyone: the ``skipped`` rows of
the members already in the segment when an enter rule is enabled, and the ``rule_waits`` that
start an enter rule's delay. Both are plain INSERTs that leave existing rows alone (``ON CONFLICT
DO NOTHING``, which SQLite and PostgreSQL both have), so two processes doing it at once agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tracker.control.db import ControlPlane
from tracker.control.models import RuleWait, SendLedger, SendStatus, utcnow
from tracker.crm.sending import DEFERRED

CHUNK = 500  # ids per IN (...) and rows per INSERT


@dataclass(frozen=True, slots=True)
class LedgerRow:
    contact_id: str
    trigger_key: str
    status: SendStatus
    error: str
    created_at: datetime
    sent_at: datetime | None

    @property
    def retryable(self) -> bool:
        """Failed for a reason that may pass (sending.send_batch claims such a row back and retries)."""
        return self.status == SendStatus.failed and self.error.startswith(DEFERRED)

    @property
    def counts_as_mailing(self) -> bool:
        """Starts the clock of ``--every N days``: everything but a failure (the message did not leave)."""
        return self.status != SendStatus.failed


def rows_by_contact(session: Session, rule_id: int, contact_ids: Sequence[str]) -> dict[str, list[LedgerRow]]:
    """contact id -> the rule's ledger rows for it, oldest first."""
    found: dict[str, list[LedgerRow]] = defaultdict(list)
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(select(
            SendLedger.contact_id, SendLedger.trigger_key, SendLedger.status, SendLedger.error,
            SendLedger.created_at, SendLedger.sent_at,
        ).where(SendLedger.rule_id == rule_id, SendLedger.contact_id.in_(ids[start:start + CHUNK]))
         .order_by(SendLedger.created_at, SendLedger.id))
        for cid, key, status, error, created, sent in rows:
            found[cid].append(LedgerRow(cid, key, SendStatus(status), error or "", created, sent))
    return found


def sends_since(session: Session, rule_id: int, since: datetime) -> int:
    """Messages the rule handed to SMTP (or may have: pending) since ``since``: what the hourly cap counts."""
    return session.scalar(select(func.count()).select_from(SendLedger).where(
        SendLedger.rule_id == rule_id, SendLedger.status.in_((SendStatus.sent, SendStatus.pending)),
        SendLedger.created_at >= since)) or 0


def _insert_ignoring(control: ControlPlane, model: type, rows: list[dict]) -> None:
    insert = postgresql.insert if control.dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), CHUNK):
        with control.session() as session:
            session.execute(insert(model).values(rows[start:start + CHUNK]).on_conflict_do_nothing())


def skip_existing(control: ControlPlane, rule_id: int, contact_ids: Sequence[str], trigger_key: str,
                  reason: str) -> None:
    """``skipped`` rows for ``trigger_key``, for the contacts that have none: their trigger is consumed."""
    now = utcnow()
    _insert_ignoring(control, SendLedger, [
        {"rule_id": rule_id, "contact_id": cid, "trigger_key": trigger_key,
         "status": SendStatus.skipped.value, "error": reason, "created_at": now} for cid in contact_ids])


def waits(control: ControlPlane, rule_id: int, contact_ids: Sequence[str], now: datetime, *,
          record: bool) -> dict[str, datetime]:
    """contact id -> when the rule first saw it as a member; ``record`` stores ``now`` for the unseen."""
    found: dict[str, datetime] = {}
    ids = sorted(set(contact_ids))
    with control.sessions() as session:
        for start in range(0, len(ids), CHUNK):
            rows = session.execute(select(RuleWait.contact_id, RuleWait.since).where(
                RuleWait.rule_id == rule_id, RuleWait.contact_id.in_(ids[start:start + CHUNK])))
            found.update({cid: since for cid, since in rows})
    unseen = [cid for cid in ids if cid not in found]
    if record and unseen:
        _insert_ignoring(control, RuleWait, [{"rule_id": rule_id, "contact_id": cid, "since": now}
                                             for cid in unseen])
        return waits(control, rule_id, contact_ids, now, record=False)
    return found


def history(session: Session, rule_id: int, *, limit: int) -> list[SendLedger]:
    """The rule's newest ledger rows, newest first (``limit`` 0: all of them)."""
    query = select(SendLedger).where(SendLedger.rule_id == rule_id).order_by(
        SendLedger.created_at.desc(), SendLedger.id.desc())
    return list(session.scalars(query.limit(limit) if limit else query))


def sent_per_rule(session: Session) -> dict[int, int]:
    """rule id -> messages it sent (``sent`` rows), for the rules that sent any."""
    rows = session.execute(select(SendLedger.rule_id, func.count()).where(
        SendLedger.rule_id.is_not(None), SendLedger.status == SendStatus.sent).group_by(SendLedger.rule_id))
    return {rule_id: count for rule_id, count in rows}
