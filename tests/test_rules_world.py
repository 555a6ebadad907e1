"""A small world for the mailing-rule tests (no tests here): a runtime on a real store and control
database, a real SMTP server, and helpers to add contacts, segments, templates, rules and events.

Expected figures in the tests are written out from the data each test makes, never read back from
the code under test. Test modules import ``world_fixture`` and ``smtp_fixture`` to get the
``world`` and ``smtp`` fixtures.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fixtures.collector import NEW_KEY
from tests.test_mailer_smtp import SmtpCapture
from tracker.contacts import contact_id_for
from tracker.control.db import ControlPlane
from tracker.control.models import SendLedger
from tracker.crm.contacts import ContactUpdate, upsert_contacts
from tracker.crm.rules.define import RuleSpec, add_rule, enable_rule, get_rule
from tracker.crm.segments import add_segment
from tracker.crm.templates import save_template
from tracker.events import event_row
from tracker.runtime import Runtime
from tracker.settings import load_settings
from tracker.store.migrate import migrate

FROM = "Fernwood Coffee <news@fernwood.example.com>"
SITE = "s_testsite01"


class World:
    """One test's runtime, SMTP server and names; everything it adds is unique to the test."""

    def __init__(self, runtime: Runtime, smtp: SmtpCapture) -> None:
        self.runtime = runtime
        self.smtp = smtp
        self.tag = "t" + uuid.uuid4().hex[:8]

    # -- data -------------------------------------------------------------------------------------

    def email(self, name: str) -> str:
        return f"{name}.{self.tag}@example.org"

    def people(self, *names: str, **fields) -> list[str]:
        """Contacts tagged with this world's tag (the default segment); their addresses."""
        updates = [ContactUpdate(self.email(n), first_name=n.title(), tags=(self.tag,), **fields)
                   for n in names]
        results = upsert_contacts(self.runtime.store, self.runtime.control, self.runtime.keys, updates)
        assert all(r.outcome == "created" for r in results), results
        return [u.email for u in updates]

    def segment(self, definition: dict | None = None) -> str:
        name = "seg-" + uuid.uuid4().hex[:8]
        with self.runtime.control.session() as session:
            add_segment(session, name, definition or {"all": [{"type": "tag", "tag": self.tag}]})
        return name

    def template(self, subject: str = "Hello {{ contact.first_name }}") -> str:
        name = "tpl-" + uuid.uuid4().hex[:8]
        save_template(self.runtime.control, name, subject, "<p>Hi {{ contact.first_name }}</p>")
        return name

    def rule(self, trigger: str = "enter", *, enable_at: datetime | None = None, enable: bool = True,
             segment: str | None = None, **options) -> str:
        name = "rule-" + uuid.uuid4().hex[:8]
        add_rule(self.runtime.control, RuleSpec(name=name, segment=segment or self.segment(),
                                                template=self.template(), trigger=trigger, **options))
        if enable:
            enable_rule(self.runtime.control, name, store=self.runtime.store, now=enable_at)
        return name

    def event(self, name: str, ts: float, *, email: str | None = None, visitor: str = "", **fields) -> dict:
        row = event_row(name, ts, contact_id=contact_id_for(email) if email else "", visitor_id=visitor,
                        received_at=int(ts), **{"site_id": SITE, **fields})
        self.runtime.store.insert("events", [row])
        return row

    def link(self, visitor: str, email: str, ts: float) -> None:
        self.runtime.store.insert("identities", [{"site_id": SITE, "visitor_id": visitor,
                                                  "contact_id": contact_id_for(email), "method": "identify",
                                                  "ts": int(ts)}])

    # -- what happened ----------------------------------------------------------------------------

    def received(self) -> Counter[str]:
        """Address -> messages the SMTP server took for it, for this world's addresses."""
        return Counter(rcpt for m in self.smtp.messages for rcpt in m.rcpt_tos if self.tag in rcpt)

    def ledger(self, rule: str) -> list[SendLedger]:
        rule_id = get_rule(self.runtime.control, rule).id
        with self.runtime.control.sessions() as session:
            return list(session.scalars(select(SendLedger).where(SendLedger.rule_id == rule_id)
                                        .order_by(SendLedger.id)))


def zone_at(hour: int, now: datetime) -> str:
    """A fixed-offset IANA zone where it is ``hour`` o'clock at ``now`` (Etc/GMT-9 is UTC+9)."""
    offset = (hour - now.hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return "Etc/GMT" + ("" if offset == 0 else f"{-offset:+d}")


def make_runtime(store, data: Path, smtp_url: str, control_url: str | None = None) -> Runtime:
    settings = load_settings({"data_dir": str(data), "public_url": "http://t.example.test",
                              "secret_keys": NEW_KEY, "mail_from": FROM, "smtp_url": smtp_url,
                              "database_url": control_url or f"sqlite:///{data / 'control.db'}"},
                             environ={})
    control = ControlPlane(settings.sqlalchemy_url)
    control.migrate()
    migrate(store)
    return Runtime(settings=settings, store=store, reader=store, control=control, keys=(NEW_KEY,))


@pytest.fixture(name="smtp")
def smtp_fixture() -> Iterator[SmtpCapture]:
    with SmtpCapture() as server:
        yield server


@pytest.fixture(name="world")
def world_fixture(store, tmp_path: Path, smtp: SmtpCapture) -> Iterator[World]:
    """A world on the parametrised store (chDB and the ClickHouse server), SQLite control database."""
    runtime = make_runtime(store, tmp_path, smtp.url)
    yield World(runtime, smtp)
    runtime.control.dispose()
