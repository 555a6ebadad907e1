"""The audit log holds, in order, the actions of a scripted admin session (commands, then the
dashboard through real HTTP); it shows on the admin's Settings page only; it cannot be changed."""

from __future__ import annotations

import getpass
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fixtures.dashboard import page, texts
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tests.fixtures.web import WebClient, component
from tracker import audit
from tracker.control.db import ControlPlane
from tracker.control.models import AuditEntry

PASSWORD = "correct horse battery"
ADMIN, VIEWER = "admin@example.com", "viewer@example.com"
SEGMENTS = Path(__file__).resolve().parents[1] / "schemas" / "examples" / "segments"


def _cli_actor() -> str:
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _ok(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    done = run_odnos(*args, env=env, stdin=stdin)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.server
def test_the_log_holds_a_scripted_admin_session(tmp_path: Path, clickhouse_server) -> None:
    env = odnos_env(tmp_path / "data", ODNOS_LOG_LEVEL="WARNING",
                    ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for("audit_" + uuid.uuid4().hex[:8]))
    html = tmp_path / "hello.html"
    html.write_text("<p>Hello {{ contact.first_name }}</p>")
    people = tmp_path / "people.csv"
    people.write_text("email,first_name\nzoe@example.com,Zoe\nyan@example.com,Yan\n")
    cli = _cli_actor()
    _ok("user", "add", "--email", ADMIN, "--password", PASSWORD, "--role", "admin", env=env)
    _ok("user", "add", "--email", VIEWER, "--password", PASSWORD, env=env)
    _ok("user", "add", "--email", VIEWER, "--password", "-", "--reset", env=env, stdin=PASSWORD + "\n")
    _ok("segments", "add", "win back", "--file", str(SEGMENTS / "win_back.json"), env=env)
    _ok("templates", "add", "hello", "--subject", "Hello", "--html", str(html), env=env)
    _ok("rules", "add", "welcome", "--segment", "win back", "--template", "hello", "--trigger", "enter",
        "--existing", "mail", env=env)
    _ok("rules", "enable", "welcome", env=env)
    _ok("rules", "disable", "welcome", env=env)
    _ok("contacts", "import", str(people), "--tag", "fair", env=env)
    _ok("contacts", "erase", "yan@example.com", "--yes", env=env)
    made = _ok("apikey", "create", "--name", "crm sync", "--scope", "contacts:read", env=env)
    prefix = made.splitlines()[-1].split("_")[1]
    _ok("apikey", "revoke", prefix, env=env)
    expected = [
        (cli, "user_added", ADMIN), (cli, "user_added", VIEWER), (cli, "password_reset", VIEWER),
        (cli, "segment_saved", "win back"), (cli, "template_saved", "hello"), (cli, "rule_added", "welcome"),
        (cli, "rule_enabled", "welcome"), (cli, "rule_disabled", "welcome"),
        (cli, "contacts_imported", str(people)), (cli, "api_key_created", "crm sync"),
        (cli, "api_key_revoked", "crm sync"),
    ]

    with OdnosServer(env, command="dashboard") as server:
        admin = WebClient(server.port)
        assert admin.sign_in(ADMIN, "not the password").status == 401
        admin.log_in(ADMIN, PASSWORD)
        created = admin.callback("apikey-created.children", [
            {"id": "apikey-create", "property": "n_clicks", "value": 1}],
            [{"id": "apikey-name", "property": "value", "value": "newsletter tool"},
             {"id": "apikey-scopes", "property": "value", "value": ["send", "reports:read"]}])
        assert created.status == 200, created.body
        plaintext = component(json.loads(created.body), "apikey-plaintext")["children"]
        # the key holds the scopes chosen, and only those
        assert admin.request("GET", "/api/v1/reports/campaigns", headers={
            "Authorization": f"Bearer {plaintext}"}).status == 200
        assert admin.request("GET", "/api/v1/contacts", headers={
            "Authorization": f"Bearer {plaintext}"}).status == 403
        settings = page(admin, "/settings")
        viewer = WebClient(server.port)
        viewer.log_in(VIEWER, PASSWORD)
        assert component(page(viewer, "/settings"), "table-audit") is None, "a viewer sees the audit log"
        assert admin.request("POST", "/logout", {"csrf": admin.csrf()}).status == 302
    expected += [(ADMIN, "signin_failed", ADMIN), (ADMIN, "signin", ADMIN),
                 (ADMIN, "api_key_created", "newsletter tool"), (VIEWER, "signin", VIEWER),
                 (ADMIN, "signout", ADMIN)]

    control = ControlPlane(f"sqlite:///{tmp_path / 'data' / 'odnos.sqlite3'}")
    try:
        with control.sessions() as db:  # a plain session: this test rolls back on purpose
            rows = db.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
            found = [(r.actor, r.action, r.target) for r in rows]
            erased = [r for r in rows if r.action == "contact_erased"]
            details = " ".join(r.detail + r.target for r in rows)
            assert [(r.actor, r.action) for r in erased] == [(cli, "contact_erased")]
            assert [f for f in found if f[1] != "contact_erased"] == expected
            assert found.index((cli, "contact_erased", erased[0].target)) == 9  # right after the import
            assert json.loads(rows[8].detail) == {"rows": 2, "created": 2, "updated": 0, "rejected": 0,
                                                  "tags": ["fair"]}
            assert "yan@example.com" not in details, "the erased address stays in the audit log"
            for key in (plaintext, made.splitlines()[-1]):
                assert key not in details and key.split("_", 2)[2] not in details, "an API key is logged"
            assert PASSWORD not in details
            assert all(r.at is not None for r in rows)
            # The admin's Settings page showed the log as it was then: newest first.
            shown = texts(component(settings, "table-audit"))
            assert shown.index("api_key_created") < shown.index("signin") < shown.index("signin_failed")

            rows[0].target = "someone else"
            with pytest.raises(PermissionError, match="append-only"):
                db.flush()
            db.rollback()
            with pytest.raises(PermissionError, match="append-only"):
                db.delete(db.scalars(select(AuditEntry)).first())
                db.flush()
            db.rollback()
    finally:
        control.dispose()


def test_an_unknown_action_is_refused(control: ControlPlane) -> None:
    with control.session() as db, pytest.raises(ValueError, match="unknown audit action"):
        audit.record(db, "ann@example.com", "signed_in")
