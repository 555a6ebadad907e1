"""`odnos send` as a user runs it: the real command in a child process, a real SMTP server (aiosmtpd),
the ClickHouse server, the control database on disk.

A campaign to a tag and to a segment, each mailable contact mailed once and the others skipped
with their reason; a second send of the same name mails nobody twice, and on a campaign already
sent only the contacts new to the audience; a `kill -9` mid-send then a rerun mails everyone once
but the ledger's pending rows (at most ``MAX_PENDING``, counted from the ledger), and never the
contacts who joined the audience after the first start; Ctrl+C stops between messages with no
pending row, and the rerun completes it; a compose worker killed mid-send is one ``odnos: error:``
line, exit 2, with nothing pending or lost, and the rerun completes it; every mistake is one
``odnos: error:`` line, exit 2, nothing written. The expected figures come from the contacts the
tests make, not from the code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fixtures.collector import NEW_KEY
from tests.fixtures.processes import ODNOS, kill_a_compose_worker, odnos_env, run_odnos
from tests.test_mailer_smtp import SmtpCapture
from tests.test_rules_world import FROM
from tracker.contacts import contact_id_for
from tracker.control.consent import suppress
from tracker.control.db import ControlPlane
from tracker.control.models import Campaign, SendLedger
from tracker.crm.contacts import ContactUpdate, upsert_contacts
from tracker.crm.segments import add_segment
from tracker.crm.sending import MAX_PENDING
from tracker.crm.templates import save_template
from tracker.runtime import Runtime
from tracker.settings import load_settings

pytestmark = pytest.mark.server

BULK = ("send", "--template", "hello", "--tag", "bulk", "--name", "bulk")
HTML = '<p>Hello {{ contact.first_name }}, <a href="https://shop.example.com/sale?a=1">the sale</a></p>'


def _environment(clickhouse_server, data: Path, database: str, smtp: SmtpCapture) -> dict[str, str]:
    return odnos_env(data, ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for(database),
                     ODNOS_SECRET_KEYS=NEW_KEY, ODNOS_MAIL_FROM=FROM, ODNOS_SMTP_URL=smtp.url,
                     ODNOS_PUBLIC_URL="http://t.example.test")


def _setup(env: dict[str, str], updates: list[ContactUpdate], *, suppressed: tuple[str, ...] = (),
           segments: dict[str, str] | None = None) -> None:
    """Contacts (some suppressed), tag segments (name -> tag) and the template ``hello``."""
    runtime = Runtime.open(load_settings(environ=env))
    try:
        upsert_contacts(runtime.store, runtime.control, runtime.keys, updates)
        for email in suppressed:
            suppress(runtime.control.sessions, contact_id_for(email), "", "page")
        with runtime.control.session() as session:
            for name, tag in (segments or {}).items():
                add_segment(session, name, {"all": [{"type": "tag", "tag": tag}]})
        if not any(t.name == "hello" for t in _templates(runtime)):
            save_template(runtime.control, "hello", "Hello {{ contact.first_name }}", HTML)
    finally:
        runtime.close()


def _templates(runtime: Runtime) -> list:
    from tracker.crm.templates import list_templates

    return list_templates(runtime.control)


def _control(env: dict[str, str]) -> ControlPlane:
    return ControlPlane(f"sqlite:///{Path(env['ODNOS_DATA_DIR']) / 'odnos.sqlite3'}")


def _ledger(env: dict[str, str], campaign_id: int) -> dict[str, tuple[str, str]]:
    """contact id -> (status, error) of the campaign's rows, read straight from the control database."""
    control = _control(env)
    try:
        with control.sessions() as session:
            rows = session.execute(select(SendLedger.contact_id, SendLedger.status, SendLedger.error)
                                   .where(SendLedger.campaign_id == campaign_id))
            return {cid: (str(status), error or "") for cid, status, error in rows}
    finally:
        control.dispose()


def _campaigns(env: dict[str, str]) -> list[tuple[int, str, str, bool]]:
    control = _control(env)
    try:
        with control.sessions() as session:
            return [(c.id, c.name, str(c.status), c.sent_at is not None)
                    for c in session.scalars(select(Campaign).order_by(Campaign.id))]
    finally:
        control.dispose()


def _received(smtp: SmtpCapture) -> Counter[str]:
    return Counter(rcpt for message in smtp.messages for rcpt in message.rcpt_tos)


def _send(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, int]:
    done = run_odnos("send", "--template", "hello", *args, env=env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done, int(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def smtp() -> SmtpCapture:
    with SmtpCapture() as server:
        yield server


@pytest.fixture(scope="module")
def env(clickhouse_server, tmp_path_factory, smtp: SmtpCapture) -> dict[str, str]:
    """Tag ``spring``: ann and bob mailable, cy suppressed, dee bounced; segment ``vips``: tag vip."""
    environ = _environment(clickhouse_server, tmp_path_factory.mktemp("send-cli"), "send_cli", smtp)
    _setup(environ, [ContactUpdate("ann@example.org", first_name="Ann", tags=("spring",)),
                     ContactUpdate("bob@example.org", first_name="Bob", tags=("spring",)),
                     ContactUpdate("cy@example.org", first_name="Cy", tags=("spring",)),
                     ContactUpdate("dee@example.org", first_name="Dee", tags=("spring",), status="bounced"),
                     ContactUpdate("eve@example.org", first_name="Eve", tags=("vip",)),
                     ContactUpdate("fay@example.org", first_name="Fay", tags=("vip",))],
           suppressed=("cy@example.org",), segments={"vips": "vip"})
    return environ


def test_send_to_a_tag_mails_the_mailable_once_and_a_second_send_mails_nobody(env, smtp) -> None:
    first, campaign = _send(env, "--tag", "spring", "--name", "spring sale")
    assert "to the tag 'spring': 4 to mail" in first.stdout
    assert "sent 2, skipped 2 (" in first.stdout and "bounced 1" in first.stdout
    assert "unsubscribed 1" in first.stdout and "failed 0" in first.stdout
    received = _received(smtp)
    assert [received[f"{n}@example.org"] for n in ("ann", "bob", "cy", "dee")] == [1, 1, 0, 0]
    [message] = [m.message for m in smtp.messages if m.rcpt_tos == ["ann@example.org"]]
    assert message["Subject"] == "Hello Ann"
    assert "http://t.example.test/c/" in message.get_body(("html",)).get_content()  # links tracked
    ledger = _ledger(env, campaign)
    assert {cid: status for cid, (status, _) in ledger.items()} == {
        contact_id_for("ann@example.org"): "sent", contact_id_for("bob@example.org"): "sent",
        contact_id_for("cy@example.org"): "skipped", contact_id_for("dee@example.org"): "skipped"}
    assert ledger[contact_id_for("dee@example.org")][1] == "bounced"
    assert (campaign, "spring sale", "sent", True) in _campaigns(env)

    again, same = _send(env, "--tag", "spring", "--name", "spring sale")
    assert same == campaign
    assert "campaign already sent on" in again.stdout and "sent 0, skipped 0" in again.stdout
    assert "already mailed 4" in again.stdout and "has a ledger row, nobody is mailed again" in again.stdout
    assert _received(smtp) == received and _ledger(env, campaign) == ledger


def test_send_to_a_segment_then_again_mails_only_the_new_member(env, smtp) -> None:
    before = _received(smtp)
    first, campaign = _send(env, "--segment", "vips")  # named after the template
    assert "campaign 'hello' to the segment 'vips': 2 to mail" in first.stdout and "sent 2," in first.stdout
    _setup(env, [ContactUpdate("gus@example.org", first_name="Gus", tags=("vip",))])
    again, same = _send(env, "--segment", "vips")
    assert same == campaign
    assert "mailing only the 1 contacts of the segment 'vips' without a ledger row" in again.stdout
    assert "sent 1," in again.stdout and "already mailed 2" in again.stdout
    new = _received(smtp) - before
    assert new == Counter({"eve@example.org": 1, "fay@example.org": 1, "gus@example.org": 1})
    assert sorted(status for status, _ in _ledger(env, campaign).values()) == ["sent"] * 3


@pytest.mark.parametrize(("args", "says"), [
    (["--template", "nope", "--tag", "spring"], "no template 'nope'"),
    (["--template", "hello", "--segment", "nope"], "no segment 'nope'"),
    (["--template", "hello", "--tag", "nope"], "no contact has the tag 'nope'"),
    (["--template", "hello", "--tag", "spring", "--name", "new one", "--site", "nope"], "no site"),
    (["--template", "hello", "--tag", "spring", "--name", "spring sale", "--site", "x"], "no site"),
])
def test_mistakes_are_one_line_exit_2_and_write_nothing(env, smtp, args, says) -> None:
    campaigns, received = _campaigns(env), _received(smtp)
    done = run_odnos("send", *args, env=env)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("odnos: error: ") and says in line
    assert _campaigns(env) == campaigns and _received(smtp) == received


def test_another_template_under_a_campaign_name_is_refused(env, smtp, tmp_path) -> None:
    runtime = Runtime.open(load_settings(environ=env))
    try:
        save_template(runtime.control, "other", "Other", "<p>other</p>")
    finally:
        runtime.close()
    campaigns = _campaigns(env)
    done = run_odnos("send", "--template", "other", "--tag", "spring", "--name", "spring sale", env=env)
    assert done.returncode == 2 and "give this send its own --name" in done.stderr
    assert _campaigns(env) == campaigns


def test_no_smtp_url_is_one_line_and_nothing_written(env) -> None:
    campaigns = _campaigns(env)
    done = run_odnos("send", "--template", "hello", "--tag", "spring", "--name", "no smtp",
                     env={k: v for k, v in env.items() if k != "ODNOS_SMTP_URL"})
    assert done.returncode == 2 and done.stderr.startswith("odnos: error: ODNOS_SMTP_URL is not set")
    assert _campaigns(env) == campaigns


def _bulk(clickhouse_server, tmp_path: Path, database: str, smtp: SmtpCapture, due: int,
          never: int) -> tuple[dict[str, str], list[str], list[str]]:
    env = _environment(clickhouse_server, tmp_path, database, smtp)
    mailable = [f"b{n:05d}@example.org" for n in range(due)]
    unsubscribed = [f"u{n:03d}@example.org" for n in range(never)]
    _setup(env, [ContactUpdate(e, first_name="B", tags=("bulk",)) for e in mailable]
           + [ContactUpdate(e, tags=("bulk",), status="unsubscribed") for e in unsubscribed])
    return env, mailable, unsubscribed


def _statuses(env: dict[str, str], campaign_id: int) -> Counter[str]:
    return Counter(status for status, _ in _ledger(env, campaign_id).values())


def _run_until(smtp: SmtpCapture, env: dict[str, str], at: int, sig: int) -> subprocess.CompletedProcess:
    """`odnos send --tag bulk --name bulk`, sent ``sig`` from inside the ``at``-th DATA, before its 250.

    SIGINT goes to the process group, as Ctrl+C in a terminal does (the compose workers get it too);
    SIGKILL to the process alone, as ``kill -9 PID`` does: its compose workers must then end by
    themselves, and ``communicate`` waits for them, since they hold the child's stdout.
    """
    child: subprocess.Popen | None = None
    accept = smtp.handler.handle_DATA
    workers: list[int] = []

    async def handle_data_then_signal(server, session, envelope):  # noqa: ANN001 - aiosmtpd's hook
        reply = await accept(server, session, envelope)
        if len(smtp.messages) == at and child is not None:
            workers.extend(_children(child.pid))
            if sig == signal.SIGINT:
                os.killpg(child.pid, sig)
            else:
                os.kill(child.pid, sig)
        return reply

    smtp.handler.handle_DATA = handle_data_then_signal
    try:
        child = subprocess.Popen([*ODNOS, *BULK], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, start_new_session=True)
        out, err = child.communicate(timeout=600)
    finally:
        smtp.handler.handle_DATA = accept
    assert len(workers) >= 2, workers  # the batch was composed in worker processes
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in workers if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"compose workers {alive} outlived the send"
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def _children(pid: int) -> list[int]:
    return [int(n) for n in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_kill_9_mid_send_then_rerun_mails_each_once_but_the_pending_and_not_the_newcomers(
        clickhouse_server, tmp_path: Path) -> None:
    due, kill_at = 1200, 500
    with SmtpCapture() as smtp:
        env, mailable, never = _bulk(clickhouse_server, tmp_path, "send_kill", smtp, due, 30)
        killed = _run_until(smtp, env, kill_at, signal.SIGKILL)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        [(campaign, _, status, _)] = _campaigns(env)
        assert status == "sending"
        at_kill = _ledger(env, campaign)
        pending = {cid for cid, (status, _) in at_kill.items() if status == "pending"}
        received_at_kill = len(smtp.messages)
        newcomer = "late@example.org"
        _setup(env, [ContactUpdate(newcomer, first_name="Late", tags=("bulk",))])

        rerun = run_odnos(*BULK, env=env, timeout=600)
        assert rerun.returncode == 0, rerun.stderr
        assert "resuming a send that did not finish" in rerun.stdout
        received = _received(smtp)
        after = _statuses(env, campaign)
        third = run_odnos(*BULK, env=env)
        assert third.returncode == 0 and "sent 1," in third.stdout
        late = _received(smtp)[newcomer]

    print(f"\nsend kill test: {due} due, {len(never)} unsubscribed; killed with {received_at_kill} "
          f"received; {len(pending)} pending at the kill (bound {MAX_PENDING}); after the rerun "
          f"{sum(received.values())} messages to {len(received)} addresses; ledger {dict(after)}")
    assert kill_at <= received_at_kill < due
    assert 1 <= len(pending) <= MAX_PENDING
    assert sum(n - 1 for n in received.values() if n > 1) == 0  # nobody twice
    assert not set(received) & set(never) and newcomer not in received  # the audience of the first start
    for email in mailable:
        if contact_id_for(email) in pending:
            assert received[email] <= 1, email  # may have left: at most once, never retried
        else:
            assert received[email] == 1, email
    assert after == Counter({"sent": due - len(pending), "pending": len(pending), "skipped": len(never)})
    assert late == 1  # the campaign was sent: a later send mails only who has no row


def test_ctrl_c_stops_between_messages_with_nothing_pending_and_the_rerun_completes(
        clickhouse_server, tmp_path: Path) -> None:
    due, stop_at = 400, 150
    with SmtpCapture() as smtp:
        env, mailable, never = _bulk(clickhouse_server, tmp_path, "send_ctrl_c", smtp, due, 5)
        stopped = _run_until(smtp, env, stop_at, signal.SIGINT)
        assert stopped.returncode == 130, stopped.stderr
        assert "Traceback" not in stopped.stderr  # nor from the compose workers, which ignore it
        lines = stopped.stdout.splitlines()
        campaign = int(lines[-1])
        assert any(line.startswith("stopped: interrupted") for line in lines)
        at_stop = _statuses(env, campaign)
        sent_at_stop = len(smtp.messages)
        rerun = run_odnos(*BULK, env=env, timeout=600)
        assert rerun.returncode == 0, rerun.stderr
        received = _received(smtp)
        after = _statuses(env, campaign)
    assert stop_at <= sent_at_stop < due
    # the message on the wire was answered and recorded; nothing was left "may have left"
    assert at_stop["pending"] == 0 and at_stop["sent"] == sent_at_stop
    assert f"sent {due - sent_at_stop:,}," in rerun.stdout
    assert received == Counter(dict.fromkeys(mailable, 1))
    assert after == Counter({"sent": due, "skipped": len(never)})
    assert (campaign, "bulk", "sent", True) in _campaigns(env)


def _compose_workers(pid: int) -> list[int]:
    """The compose workers among ``pid``'s children (not multiprocessing's resource tracker)."""
    workers = []
    for child in _children(pid):
        try:
            if b"--multiprocessing-fork" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except FileNotFoundError:
            pass
    return workers


def _run_killing_a_worker(smtp: SmtpCapture, env: dict[str, str], at: int) -> subprocess.CompletedProcess:
    """`odnos send --tag bulk --name bulk` with one compose worker SIGKILLed once ``at`` messages arrived,
    while the send waits for the messages it composes (``kill_a_compose_worker``)."""
    child = subprocess.Popen([*ODNOS, *BULK], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    workers: list[int] = []

    def kill_one() -> None:
        while len(smtp.messages) < at and child.poll() is None:
            time.sleep(0.01)
        workers.extend(_compose_workers(child.pid))
        [(campaign, *_)] = _campaigns(env)
        kill_a_compose_worker(workers, lambda: len(smtp.messages),
                              lambda: _statuses(env, campaign)["pending"], lambda: child.poll() is None)

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    out, err = child.communicate(timeout=600)
    killer.join(timeout=10)
    assert len(workers) >= 2, workers  # the batch was composed in worker processes
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in workers if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"compose workers {alive} outlived the send"
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def test_a_compose_worker_killed_mid_send_is_one_error_line_and_the_rerun_sends_the_rest(
        clickhouse_server, tmp_path: Path) -> None:
    due, kill_at = 400, 150
    with SmtpCapture() as smtp:
        env, mailable, never = _bulk(clickhouse_server, tmp_path, "send_worker_killed", smtp, due, 5)
        broken = _run_killing_a_worker(smtp, env, kill_at)
        [(campaign, _, status, _)] = _campaigns(env)
        at_error = _ledger(env, campaign)
        received_at_error = _received(smtp)
        rerun = run_odnos(*BULK, env=env, timeout=600)
        received = _received(smtp)
        after = _statuses(env, campaign)

    assert broken.returncode == 2, broken.stderr
    assert "Traceback" not in broken.stderr and broken.stdout == ""
    [line] = broken.stderr.splitlines()
    assert line.startswith("odnos: error: a mail compose worker stopped"), line
    assert "deferred" in line and "ODNOS_MAIL_WORKERS=1" in line
    assert status == "sending"
    # nothing lost: each received message is recorded sent, each other contact waits (deferred) for
    # the next send, none is left "may have left"
    statuses = Counter(status for status, _ in at_error.values())
    assert kill_at <= statuses["sent"] == sum(received_at_error.values()) < due
    assert {at_error[contact_id_for(e)][0] for e in mailable} == {"sent", "failed"}
    assert {at_error[contact_id_for(e)][0] for e in never} <= {"skipped", "failed"}  # failed: not reached
    assert all(error.startswith("deferred: ") for status, error in at_error.values() if status == "failed")
    assert any("compose worker" in error for _, error in at_error.values())  # the claim it was composing
    assert set(received_at_error.values()) == {1}

    assert rerun.returncode == 0, rerun.stderr
    assert "resuming a send that did not finish" in rerun.stdout
    assert f"sent {due - statuses['sent']:,}," in rerun.stdout
    assert received == Counter(dict.fromkeys(mailable, 1))  # everyone once, nobody twice
    assert after == Counter({"sent": due, "skipped": len(never)})
