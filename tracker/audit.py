"""The audit log: who did what, and when, to the things that matter in a CRM; written, never changed.

``record`` adds one row to ``audit_log`` in the caller's control-database transaction, so an action
and its record commit (or roll back) together. The product has no path that changes or deletes a
row: the ORM refuses it outright (``_append_only``), and no function here offers one. ``actor`` is
the signed-in user's email, ``cli:<login>`` for a command, or ``api-key:<prefix>`` for the API.
``detail`` holds names and counts, never a password, key or token; a person is named by contact id
(or, once erased, the keyed hash), never by address, so an erasure leaves no address here.
"""

from __future__ import annotations

import getpass
import json
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tracker.control.db import ControlPlane
from tracker.control.models import AuditEntry

MAX_TARGET = 500
ACTIONS = frozenset({
    "signin", "signin_failed", "signin_code_failed", "signout", "two_factor_on", "two_factor_off",
    "user_added", "password_reset", "api_key_created", "api_key_revoked",
    "segment_saved", "template_saved", "rule_added", "rule_changed", "rule_enabled", "rule_disabled",
    "campaign_sent", "contacts_imported", "consent_changed", "contact_exported", "contact_erased",
})
"""Every action the log knows; ``record`` refuses another, so a typo cannot hide an entry."""


def record(session: Session, actor: str, action: str, target: str = "",
           detail: dict[str, Any] | None = None) -> None:
    """Add one entry (flushed with the caller's transaction)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    session.add(AuditEntry(actor=actor[:254], action=action, target=target[:MAX_TARGET],
                           detail=json.dumps(detail or {}, sort_keys=True, default=str)))
    session.flush()


def record_done(control: ControlPlane, actor: str, action: str, target: str = "",
                detail: dict[str, Any] | None = None) -> None:
    """``record`` for an action that is done (it ran in the event store or its own transaction)."""
    with control.session() as db:
        record(db, actor, action, target, detail)


def record_command(control: ControlPlane, action: str, target: str = "",
                   detail: dict[str, Any] | None = None) -> None:
    """``record_done`` with the command's user as the actor."""
    record_done(control, cli_actor(), action, target, detail)


def recent(session: Session, limit: int = 200) -> list[AuditEntry]:
    """The newest entries first."""
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))


def cli_actor() -> str:
    """Who runs this command, as the log names them: ``cli:<login name>``."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no login name in this container
        return "cli"


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _append_only(mapper: Any, connection: Any, target: AuditEntry) -> None:
    raise PermissionError("the audit log is append-only")
