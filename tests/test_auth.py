"""Sign-in through the real dashboard server: a disabled user is logged out at their next request;
and the login's `next` parameter can only lead back into odnos, never to another site."""

from __future__ import annotations

import urllib.parse
import uuid
from pathlib import Path

import pytest

from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tests.fixtures.web import WebClient
from tracker.auth import _safe_next
from tracker.control.db import ControlPlane
from tracker.control.users import active_user, add_user, list_users, set_disabled
from tracker.errors import NotFound

PASSWORD = "correct horse battery"


@pytest.mark.parametrize(("target", "expected"), [
    ("/", "/"), ("/sites?x=1", "/sites?x=1"), (None, "/"), ("", "/"),
    ("//evil.example.org/", "/"), ("https://evil.example.org/", "/"), ("/\\evil.example.org", "/"),
    ("javascript:alert(1)", "/"), ("evil", "/"),
])
def test_next_stays_on_this_site(target: str | None, expected: str) -> None:
    assert _safe_next(target) == expected


@pytest.fixture
def dashboard(tmp_path: Path, clickhouse_server) -> tuple[OdnosServer, ControlPlane, list[str]]:
    env = odnos_env(tmp_path / "data", ODNOS_LOG_LEVEL="WARNING",
                    ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for("auth_" + uuid.uuid4().hex[:8]))
    emails = [f"{who}@example.com" for who in ("ann", "bob")]
    for email in emails:
        added = run_odnos("user", "add", "--email", email, "--password", PASSWORD, "--role", "viewer",
                          env=env)
        assert added.returncode == 0, added.stdout + added.stderr
    control = ControlPlane(f"sqlite:///{tmp_path / 'data' / 'odnos.sqlite3'}")
    with OdnosServer(env, command="dashboard") as server:
        yield server, control, emails
    control.dispose()


@pytest.mark.server
def test_a_disabled_users_session_stops_at_the_next_request(dashboard) -> None:
    server, control, (ann, bob) = dashboard
    ann_browser, bob_browser = WebClient(server.port), WebClient(server.port)
    assert bob_browser.request("GET", "/").status == 302  # anonymous: to the login form
    ann_browser.log_in(ann, PASSWORD)
    bob_browser.log_in(bob, PASSWORD)
    for browser in (ann_browser, bob_browser):
        page = browser.request("GET", "/")
        assert page.status == 200 and b'id="react-entry-point"' in page.body  # the dashboard

    with control.session() as db:
        set_disabled(db, bob)

    refused = bob_browser.request("GET", "/")
    assert refused.status == 302
    assert urllib.parse.urlsplit(refused.getheader("Location")).path == "/login"
    assert bob_browser.cookie == "", "the disabled user's session cookie was not cleared"
    again = bob_browser.sign_in(bob, PASSWORD)
    assert again.status == 401  # and cannot sign in again
    page = ann_browser.request("GET", "/")
    assert page.status == 200 and b'id="react-entry-point"' in page.body  # an enabled user goes on


def test_active_user_is_none_once_disabled_or_deleted(control: ControlPlane) -> None:
    with control.session() as db:
        user_id = add_user(db, "Cy@Example.com", PASSWORD, "marketer").id
    with control.session() as db:
        assert active_user(db, user_id).email == "cy@example.com"
        assert set_disabled(db, "cy@example.com").disabled
    with control.session() as db:
        assert active_user(db, user_id) is None
        set_disabled(db, "CY@example.com", disabled=False)
    with control.session() as db:
        assert active_user(db, user_id).id == user_id
        assert active_user(db, user_id + 1) is None  # no such user
        assert active_user(db, str(user_id)) is None  # a cookie value of the wrong type
        with pytest.raises(NotFound):
            set_disabled(db, "nobody@example.com")
        add_user(db, "an@example.com", PASSWORD, "viewer")
        set_disabled(db, "an@example.com")
        assert [(u.email, u.disabled) for u in list_users(db)] == [("cy@example.com", False),
                                                                   ("an@example.com", True)]
