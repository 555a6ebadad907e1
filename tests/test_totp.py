"""Two-factor sign-in through the real server, with real TOTP codes computed here by pyotp: the code
step, replays and recovery codes, admins made to set it up, enrolment and sign-in in Chromium."""

from __future__ import annotations

import re
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from tests.fixtures.dashboard import severe
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tests.fixtures.web import WebClient
from tracker import two_factor
from tracker.app import create_app
from tracker.control.db import ControlPlane
from tracker.control.models import RecoveryCode, User
from tracker.control.users import add_user
from tracker.runtime import Runtime
from tracker.settings import load_settings, signing_keys

PASSWORD = "correct horse battery"
ANN, BOB, ADMIN = "ann@example.com", "bob@example.com", "admin@example.com"
_SECRET = re.compile(rb'id="totp-secret">([A-Z2-7]+)<')
_CODE_ITEM = re.compile(rb"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>")


@dataclass
class Deployment:
    server: OdnosServer
    control: ControlPlane
    keys: tuple[str, ...]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, clickhouse_server) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("totp") / "data"
    env = odnos_env(folder, ODNOS_LOG_LEVEL="WARNING", ODNOS_ADMIN_TWO_FACTOR="true",
                    ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for("totp_" + uuid.uuid4().hex[:8]))
    for email, role in ((ANN, "marketer"), (BOB, "viewer"), (ADMIN, "admin")):
        added = run_odnos("user", "add", "--email", email, "--password", PASSWORD, "--role", role, env=env)
        assert added.returncode == 0, added.stdout + added.stderr
    control = ControlPlane(f"sqlite:///{folder / 'odnos.sqlite3'}")
    with OdnosServer(env, command="dashboard") as server:
        yield Deployment(server, control, tuple(signing_keys(load_settings(environ=env))))
    control.dispose()


def _fresh_code(secret: str, used_step: int | None) -> str:
    """A code of this step, or of the next one (within the server's tolerance) if this one was used."""
    step = int(time.time() // 30)
    if used_step is not None and step <= used_step:
        step = used_step + 1
    return pyotp.TOTP(secret).at(step * 30)


def _enrol(deployment: Deployment, email: str) -> tuple[str, list[str]]:
    secret = pyotp.random_base32()
    with deployment.control.session() as db:
        user = db.scalar(select(User).where(User.email == email))
        codes = two_factor.enrol(db, user, deployment.keys, secret, pyotp.TOTP(secret).now())
    assert codes is not None and len(set(codes)) == two_factor.RECOVERY_CODES
    return secret, codes


def _user_id(control: ControlPlane, email: str) -> int:
    with control.session() as db:
        return db.scalar(select(User.id).where(User.email == email))


def _last_step(control: ControlPlane, email: str) -> int | None:
    with control.session() as db:
        return db.scalar(select(User.totp_last_step).where(User.email == email))


def _password_step(client: WebClient, email: str, then: str) -> None:
    first = client.sign_in(email, PASSWORD)
    assert first.status == 302 and first.getheader("Location") == then, (first.status, first.body)


def _code(client: WebClient, code: str):
    return client.request("POST", "/login/code", {"code": code, "csrf": client.csrf()})


def _signed_in(client: WebClient) -> bool:
    return client.request("GET", "/").status == 200


@pytest.mark.server
def test_a_code_is_asked_after_the_password_and_works_once(deployment: Deployment) -> None:
    secret, recovery = _enrol(deployment, ANN)
    port = deployment.server.port
    client = WebClient(port)
    _password_step(client, ANN, "/login/code")
    assert not _signed_in(client), "the password alone signed in"
    right = _fresh_code(secret, _last_step(deployment.control, ANN))
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert _code(client, wrong).status == 401
    signed = _code(client, right)
    assert signed.status == 302 and signed.getheader("Location") == "/"
    assert _signed_in(client)

    replay = WebClient(port)
    _password_step(replay, ANN, "/login/code")
    assert _code(replay, right).status == 401, "a used code was accepted again"
    assert not _signed_in(replay)

    with_recovery = WebClient(port)
    _password_step(with_recovery, ANN, "/login/code")
    assert _code(with_recovery, recovery[0].upper()).status == 302  # typed in capitals: still the code
    assert _signed_in(with_recovery)
    again = WebClient(port)
    _password_step(again, ANN, "/login/code")
    assert _code(again, recovery[0]).status == 401, "a recovery code worked twice"
    with deployment.control.session() as db:
        hashes = db.scalars(select(RecoveryCode.code_hash)).all()
    assert not {code for code in recovery} & set(hashes), "recovery codes are stored in the clear"


@pytest.mark.server
def test_an_admin_must_set_it_up_and_a_viewer_need_not(deployment: Deployment) -> None:
    viewer = WebClient(deployment.server.port)
    _password_step(viewer, BOB, "/")
    assert _signed_in(viewer)

    admin = WebClient(deployment.server.port)
    _password_step(admin, ADMIN, "/login/setup")
    assert not _signed_in(admin)
    page = admin.request("GET", "/login/setup")
    assert page.status == 200 and b"data:image/svg+xml" in page.body  # the QR code, made locally
    secret = _SECRET.search(page.body).group(1).decode()
    refused = admin.request("POST", "/login/setup", {"code": "000000", "csrf": admin.csrf()})
    assert refused.status == 401 and not _signed_in(admin)
    done = admin.request("POST", "/login/setup", {"code": pyotp.TOTP(secret).now(), "csrf": admin.csrf()})
    assert done.status == 200
    assert len(_CODE_ITEM.findall(done.body)) == two_factor.RECOVERY_CODES
    assert _signed_in(admin)
    with deployment.control.session() as db:
        stored = db.scalar(select(User.totp_secret).where(User.email == ADMIN))
    admin_id = _user_id(deployment.control, ADMIN)
    assert secret not in stored and two_factor.unseal(deployment.keys, admin_id, stored) == secret  # sealed
    later = WebClient(deployment.server.port)  # from now on the admin is asked for a code
    _password_step(later, ADMIN, "/login/code")


def test_turning_the_rule_on_signs_out_admins_without_a_second_factor(tmp_path: Path,
                                                                       clickhouse_server) -> None:
    environ = {"ODNOS_DATA_DIR": str(tmp_path / "data"),
               "ODNOS_CLICKHOUSE_URL": clickhouse_server.url_for("totp_rule_" + uuid.uuid4().hex[:8])}
    before = Runtime.open(load_settings(environ=environ))
    after = Runtime.open(load_settings(environ={**environ, "ODNOS_ADMIN_TWO_FACTOR": "true"}))
    try:
        with before.control.session() as db:
            for email, role in ((ADMIN, "admin"), (ANN, "marketer")):
                add_user(db, email, PASSWORD, role)
        cookies = {}
        for email in (ADMIN, ANN):
            client = create_app(before, parts=("dashboard",)).test_client()
            token = re.search(rb'name="csrf" value="([^"]+)"', client.get("/login").data).group(1).decode()
            signed = client.post("/login", data={"email": email, "password": PASSWORD, "csrf": token})
            assert signed.status_code == 302 and signed.headers["Location"] == "/"
            assert client.get("/").status_code == 200
            cookies[email] = client.get_cookie("session").value
        strict = create_app(after, parts=("dashboard",))
        for email, status in ((ADMIN, 302), (ANN, 200)):  # the marketer is not asked for one
            client = strict.test_client()
            client.set_cookie("session", cookies[email])
            assert client.get("/").status_code == status, email
    finally:
        before.close()
        after.store.command(f"DROP DATABASE IF EXISTS {after.store.database}")
        after.close()


@pytest.mark.server
def test_enrol_on_the_settings_page_then_sign_in_with_a_code_in_chromium(deployment: Deployment,
                                                                          browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(condition, timeout: float = 20):
        return WebDriverWait(browser, timeout).until(condition)

    url = deployment.server.url

    def password_step() -> None:
        browser.get(url + "/login")
        browser.find_element(By.ID, "email").send_keys(BOB)
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(lambda d: urllib.parse.urlsplit(d.current_url).path != "/login")

    password_step()
    browser.get(url + "/settings")
    wait(lambda d: d.find_elements(By.ID, "totp-start")).__getitem__(0).click()
    secret = wait(lambda d: d.find_elements(By.ID, "totp-secret"))[0].text.strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    assert browser.find_element(By.ID, "totp-qr").get_attribute("src").startswith("data:image/svg+xml")
    browser.find_element(By.ID, "totp-code").send_keys(pyotp.TOTP(secret).now())
    browser.find_element(By.ID, "totp-confirm").click()
    codes = wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#totp-recovery-codes li"))
    assert len(codes) == two_factor.RECOVERY_CODES
    browser.find_element(By.CSS_SELECTOR, "button.signout").click()
    wait(lambda d: d.find_elements(By.ID, "email"))

    password_step()
    assert urllib.parse.urlsplit(browser.current_url).path == "/login/code"
    browser.find_element(By.ID, "code").send_keys(_fresh_code(secret, _last_step(deployment.control, BOB)))
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    whoami = wait(lambda d: d.find_elements(By.ID, "whoami"))
    assert urllib.parse.urlsplit(browser.current_url).path == "/"
    assert whoami[0].text == BOB
    assert severe(browser) == []


@pytest.mark.server
def test_guessing_codes_is_slowed_down(deployment: Deployment) -> None:
    """Last in this file: the failures also count against this machine's address."""
    client = WebClient(deployment.server.port)
    _password_step(client, ANN, "/login/code")
    statuses = [_code(client, "123456").status for _ in range(6)]
    assert 429 in statuses, statuses
    assert set(statuses[: statuses.index(429)]) <= {401}


def test_the_stored_secret_is_sealed_a_clear_one_is_sealed_at_its_use_and_a_dropped_key_opens_none(
        tmp_path: Path) -> None:
    control = ControlPlane(f"sqlite:///{tmp_path / 'control.sqlite3'}")
    control.migrate()
    old, new = "old-signing-key-" + "o" * 20, "new-signing-key-" + "n" * 20
    secret = pyotp.random_base32()
    with control.session() as db:
        user = add_user(db, ANN, PASSWORD, "marketer")
        recovery = two_factor.enrol(db, user, [old], secret, pyotp.TOTP(secret).now())
        stored = user.totp_secret
        assert recovery is not None and secret not in stored and len(stored) == two_factor.SEALED_LENGTH
        assert two_factor.unseal([old], user.id + 1, stored) is None  # bound to its user
        user.totp_last_step = None  # as if that code had not been used
        assert two_factor.check(db, user, [new, old], pyotp.TOTP(secret).now()) == "totp"  # old key listed
        user.totp_secret, user.totp_last_step = secret, None  # stored in the clear, before 0008
        assert two_factor.check(db, user, [new, old], pyotp.TOTP(secret).now()) == "totp"
        assert user.totp_secret != secret and two_factor.unseal([new], user.id, user.totp_secret) == secret
        user.totp_last_step = None
        assert two_factor.check(db, user, [old], pyotp.TOTP(secret).now()) is None  # sealed under new
        assert two_factor.check(db, user, [old], recovery[0]) == "recovery"  # recovery codes still work
    control.dispose()
