"""The real rule runner (`odnos rules run`, a child process) killed with SIGKILL half way through a
batch of thousands, then run again: the SMTP server got each due contact exactly once.

A real SMTP server (aiosmtpd) in this process counts what it accepts and, when it has accepted
``KILL_AT`` messages, kills the runner from inside the DATA command, before answering it: the
worst moment, the message is with the server and the runner never hears so. Contacts whose ledger
row was ``pending`` at the kill (the message on the wire, the ones composed ahead) may or may not
have been mailed: they get at most one message and are never retried. Everyone else due gets
exactly one; nobody unsubscribed, bounced or suppressed gets any. The figures are printed (run
with ``-s`` to see them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fixtures.collector import NEW_KEY
from tests.fixtures.processes import ODNOS, odnos_env, run_odnos
from tests.test_mailer_smtp import SmtpCapture
from tests.test_rules_world import FROM
from tracker.contacts import contact_id_for
from tracker.control.consent import suppress
from tracker.control.models import SendLedger, SendStatus
from tracker.crm.contacts import ContactUpdate, upsert_contacts
from tracker.crm.segments import add_segment
from tracker.crm.sending import MAX_PENDING
from tracker.crm.templates import save_template
from tracker.runtime import Runtime
from tracker.settings import load_settings

pytestmark = pytest.mark.server

DUE = 3000
KILL_AT = DUE // 2
NOT_MAILABLE = {"unsubscribed": 50, "bounced": 50, "suppressed": 50}


def _people(data: Path, env: dict[str, str]) -> tuple[list[str], list[str]]:
    """The due addresses and the addresses that must never be mailed, all in one segment."""
    runtime = Runtime.open(load_settings(environ=env))
    try:
        due = [f"k{n:05d}@example.org" for n in range(DUE)]
        updates = [ContactUpdate(email, first_name=f"K{n}", tags=("kill",)) for n, email in enumerate(due)]
        never = []
        for status, count in NOT_MAILABLE.items():
            for n in range(count):
                email = f"{status}{n:03d}@example.org"
                never.append(email)
                updates.append(ContactUpdate(email, tags=("kill",),
                                             status=None if status == "suppressed" else status))
        upsert_contacts(runtime.store, runtime.control, runtime.keys, updates)
        for email in never[-NOT_MAILABLE["suppressed"]:]:
            suppress(runtime.control.sessions, contact_id_for(email), "", "page")
        with runtime.control.session() as session:
            add_segment(session, "kill", {"all": [{"type": "tag", "tag": "kill"}]})
        save_template(runtime.control, "kill", "Hi {{ contact.first_name }}",
                      '<p>Hello {{ contact.first_name }}, <a href="https://shop.example.com/">shop</a></p>')
    finally:
        runtime.close()
    return due, never


def _ledger(env: dict[str, str]) -> Counter[str]:
    runtime = Runtime.open(load_settings(environ=env), migrate_schema=False)
    try:
        with runtime.control.sessions() as session:
            rows = session.execute(select(SendLedger.status, func.count()).group_by(SendLedger.status))
            return Counter({status: n for status, n in rows})
    finally:
        runtime.close()


def _pending(env: dict[str, str]) -> set[str]:
    runtime = Runtime.open(load_settings(environ=env), migrate_schema=False)
    try:
        with runtime.control.sessions() as session:
            return set(session.scalars(select(SendLedger.contact_id).where(
                SendLedger.status == SendStatus.pending)))
    finally:
        runtime.close()


def test_kill_9_in_the_middle_of_a_batch_mails_each_due_contact_exactly_once(clickhouse_server,
                                                                               tmp_path: Path) -> None:
    with SmtpCapture() as smtp:
        env = odnos_env(tmp_path, ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for("kill_test"),
                        ODNOS_SECRET_KEYS=NEW_KEY, ODNOS_MAIL_FROM=FROM, ODNOS_SMTP_URL=smtp.url,
                        ODNOS_PUBLIC_URL="http://t.example.test")
        due, never = _people(tmp_path, env)
        added = run_odnos("rules", "add", "kill", "--segment", "kill", "--template", "kill", "--trigger",
                          "enter", "--existing", "mail", env=env)
        assert added.returncode == 0, added.stderr
        enabled = run_odnos("rules", "enable", "kill", env=env)
        assert enabled.returncode == 0, enabled.stderr

        runner: subprocess.Popen | None = None
        accept = smtp.handler.handle_DATA

        async def handle_data_then_kill(server, session, envelope):  # noqa: ANN001 - aiosmtpd's hook
            reply = await accept(server, session, envelope)
            if len(smtp.messages) == KILL_AT and runner is not None:
                os.kill(runner.pid, signal.SIGKILL)  # before the runner reads the 250
            return reply

        smtp.handler.handle_DATA = handle_data_then_kill
        started = time.monotonic()
        runner = subprocess.Popen([*ODNOS, "rules", "run"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        out, err = runner.communicate(timeout=600)
        first_run = time.monotonic() - started
        assert runner.returncode == -signal.SIGKILL, (out, err)
        received_at_kill = len(smtp.messages)
        pending = _pending(env)
        at_kill = _ledger(env)

        started = time.monotonic()
        again = run_odnos("rules", "run", env=env, timeout=600)
        second_run = time.monotonic() - started
        assert again.returncode == 0, again.stderr
        received = Counter(rcpt for message in smtp.messages for rcpt in message.rcpt_tos)

    pending_emails = {email for email in due if contact_id_for(email) in pending}
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    print(f"\nkill test: {DUE} contacts due, {len(never)} not mailable; killed with {received_at_kill} "
          f"received; ledger at the kill {dict(at_kill)}; pending at the kill {len(pending)} "
          f"(received {sum(received[e] for e in pending_emails)} of them); after the rerun "
          f"{sum(received.values())} messages to {len(received)} addresses, {duplicates} duplicates; "
          f"runner killed after {first_run:.1f} s, rerun {second_run:.1f} s")
    assert KILL_AT <= received_at_kill < DUE  # killed half way, not after the end
    assert 1 <= len(pending) <= MAX_PENDING  # the claim on the wire and the one claimed after it
    assert duplicates == 0
    assert not set(received) & set(never)
    assert set(received) <= set(due)
    for email in due:
        if email in pending_emails:
            assert received[email] <= 1, email  # may have left: at most once, never retried
        else:
            assert received[email] == 1, email
    after = _ledger(env)
    assert after[SendStatus.pending] == len(pending)  # never retried on their own
    assert after[SendStatus.sent] == DUE - len(pending)
    assert after[SendStatus.skipped] == len(never)
    assert "sent" in again.stdout
