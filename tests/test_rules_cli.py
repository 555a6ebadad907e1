"""`odnos rules ...` as a user types it: the whole life of a rule, and every mistake as one line
``odnos: error: ...`` with exit code 2 (nothing stored)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fixtures.collector import NEW_KEY
from tests.fixtures.processes import odnos_env, run_odnos
from tests.test_mailer_smtp import SmtpCapture
from tests.test_rules_world import FROM, zone_at
from tracker.contacts import contact_id_for
from tracker.control.consent import suppress
from tracker.control.db import ControlPlane
from tracker.control.models import Rule
from tracker.crm.contacts import ContactUpdate, upsert_contacts
from tracker.crm.segments import add_segment
from tracker.crm.templates import save_template
from tracker.runtime import Runtime
from tracker.settings import load_settings

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def env(clickhouse_server, tmp_path_factory) -> dict[str, str]:
    """A data folder on the ClickHouse server with a segment ``vip`` of three people and a template."""
    data = tmp_path_factory.mktemp("rules-cli")
    environ = odnos_env(data, ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for("rules_cli"),
                        ODNOS_SECRET_KEYS=NEW_KEY, ODNOS_MAIL_FROM=FROM, ODNOS_PUBLIC_URL="http://t.example.test")
    runtime = Runtime.open(load_settings(environ=environ))
    try:
        upsert_contacts(runtime.store, runtime.control, runtime.keys, [
            ContactUpdate(f"{name}@example.org", first_name=name.title(), tags=("vip",))
            for name in ("ann", "bob", "cy")])
        suppress(runtime.control.sessions, contact_id_for("cy@example.org"), "", "page")
        with runtime.control.session() as session:
            add_segment(session, "vip", {"all": [{"type": "tag", "tag": "vip"}]})
        save_template(runtime.control, "hello", "Hello {{ contact.first_name }}", "<p>Hi!</p>")
    finally:
        runtime.close()
    return environ


def _rules(env: dict[str, str]) -> int:
    control = ControlPlane(f"sqlite:///{Path(env['ODNOS_DATA_DIR']) / 'odnos.sqlite3'}")
    try:
        with control.sessions() as session:
            return session.scalar(select(func.count()).select_from(Rule))
    finally:
        control.dispose()


BASE = ["rules", "add", "r", "--segment", "vip", "--template", "hello"]


@pytest.mark.parametrize(("args", "expected"), [
    ([*BASE[:4], "nope", *BASE[5:], "--trigger", "enter"], "no segment 'nope'"),
    ([*BASE[:6], "nope", "--trigger", "enter"], "no template 'nope'"),
    ([*BASE, "--trigger", "sometimes"], "--trigger 'sometimes' must be enter, event:NAME"),
    ([*BASE, "--trigger", "event:"], "must be enter, event:NAME"),
    ([*BASE, "--trigger", "cron:0 9 * *"], "has 4 fields, not 5"),
    ([*BASE, "--trigger", "cron:61 9 * * 1"], "higher than the maximum value (59)"),
    ([*BASE, "--trigger", "cron:0 9 1 * 1"], "restricts both the day of the month and the day of the week"),
    ([*BASE, "--trigger", "cron:0 9 * * funday"], "'funday' is not a day of the week"),
    ([*BASE, "--trigger", "enter", "--quiet", "21"], "--quiet '21' must be two hours START-END"),
    ([*BASE, "--trigger", "enter", "--quiet", "25-3"], "hours are 0 to 23"),
    ([*BASE, "--trigger", "enter", "--quiet", "8-8"], "starts and ends at the same hour"),
    ([*BASE, "--trigger", "enter", "--cap", "many"], "--cap 'many' is not a number"),
    ([*BASE, "--trigger", "enter", "--cap", "0"], "--cap 0: give at least 1"),
    ([*BASE, "--trigger", "enter", "--delay", "-5"], "--delay -5: give minutes from 0"),
    ([*BASE, "--trigger", "enter", "--every", "0"], "--every 0: give a number of days"),
    ([*BASE, "--trigger", "enter", "--once", "--every", "7"], "give --once or --every DAYS, not both"),
    ([*BASE, "--trigger", "enter", "--tz", "Mars/Olympus"], "time zone 'Mars/Olympus' is not an IANA name"),
    ([*BASE, "--trigger", "event:signup", "--existing", "mail"], "--existing applies to enter rules only"),
])
def test_mistakes_are_one_line_and_exit_2_and_store_nothing(env: dict[str, str], args: list[str],
                                                           expected: str) -> None:
    before = _rules(env)
    result = run_odnos(*args, env=env)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("odnos: error: ") and expected in lines[0], result.stderr
    assert result.stdout == ""
    assert _rules(env) == before


@pytest.mark.parametrize("args", [["enable", "ghost"], ["dry-run", "ghost"], ["history", "ghost"],
                                  ["run", "ghost"], ["disable", "ghost"]])
def test_unknown_rules_are_named(env: dict[str, str], args: list[str]) -> None:
    result = run_odnos("rules", *args, env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == ("odnos: error: no rule 'ghost'; `odnos rules list` shows them, "
                                     "`odnos rules add` adds one")


def test_a_rule_from_add_to_history(env: dict[str, str]) -> None:
    with SmtpCapture() as smtp:
        env = {**env, "ODNOS_SMTP_URL": smtp.url}
        zone = zone_at(12, datetime.now(UTC))  # quiet 21-8 there: not now
        added = run_odnos("rules", "add", "welcome vip", "--segment", "vip", "--template", "hello",
                          "--trigger", "enter", "--existing", "mail", "--quiet", "21-8", "--cap", "100",
                          "--tz", zone, env=env)
        assert added.returncode == 0, added.stderr
        *_, rule_id = added.stdout.strip().splitlines()
        assert rule_id.isdigit()
        assert "disabled until `odnos rules enable welcome vip`" in added.stdout

        listed = run_odnos("rules", "list", env=env).stdout
        assert (f"{rule_id}\twelcome vip\tdisabled\tsegment vip\ttemplate hello\tenter (existing members "
                f"too), once per contact, quiet 21-8, cap 100/h, tz {zone}\tnever run") in listed

        refused = run_odnos("rules", "run", "welcome vip", env=env)
        assert refused.returncode == 2 and "is disabled; enable it" in refused.stderr

        preview = run_odnos("rules", "dry-run", "welcome vip", env=env)
        assert preview.returncode == 0, preview.stderr
        lines = preview.stdout.strip().splitlines()
        assert "would mail 2, not 1" in lines[0] and "the rule is disabled" in lines[1]
        verdicts = {"ann@example.org": "mail\tann@example.org", "bob@example.org": "mail\tbob@example.org",
                    "cy@example.org": "not\tcy@example.org\tunsubscribed"}
        in_order = [verdicts[email] for email in sorted(verdicts, key=contact_id_for)]  # contact id order
        assert lines[2:] == [*in_order, "not mailed: unsubscribed 1"]
        assert smtp.messages == []

        enabled = run_odnos("rules", "enable", "welcome vip", env=env)
        assert enabled.returncode == 0 and "is enabled" in enabled.stdout

        ran = run_odnos("rules", "run", env=env)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "welcome vip: sent 2, skipped 1 (unsubscribed 1), already 0"
        assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == ["ann@example.org", "bob@example.org"]
        again = run_odnos("rules", "run", "welcome vip", env=env)
        assert again.stdout.strip() == ("welcome vip: sent 0, already 2, "
                                        "not mailed 1 (unsubscribed 1)")

        past = run_odnos("rules", "history", rule_id, env=env)
        assert past.returncode == 0
        rows = [row.split("\t") for row in past.stdout.splitlines()]
        assert sorted((row[1], row[2], row[3], row[4]) for row in rows) == [
            ("ann@example.org", "sent", "once", ""), ("bob@example.org", "sent", "once", ""),
            ("cy@example.org", "skipped", "once", "unsubscribed")]

        assert run_odnos("rules", "disable", "welcome vip", env=env).returncode == 0
        listed = run_odnos("rules", "list", env=env).stdout
        assert f"{rule_id}\twelcome vip\tdisabled" in listed and "last run " in listed
