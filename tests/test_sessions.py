"""Dashboard sessions through the real server: no fixation, sign-out and a new password end every
session of the user, idle and absolute limits, and sign-out in one browser ends Chromium's session."""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tests.fixtures.web import WebClient

PASSWORD = "correct horse battery"
ANN, BOB = "ann@example.com", "bob@example.com"


def _serve(tmp_path: Path, clickhouse_server, **settings: str) -> Iterator[OdnosServer]:
    env = odnos_env(tmp_path / "data", ODNOS_LOG_LEVEL="WARNING",
                    ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for("sessions_" + uuid.uuid4().hex[:8]),
                    **settings)
    for email in (ANN, BOB):
        added = run_odnos("user", "add", "--email", email, "--password", PASSWORD, "--role", "marketer",
                          env=env)
        assert added.returncode == 0, added.stdout + added.stderr
    with OdnosServer(env, command="dashboard") as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory, clickhouse_server) -> Iterator[OdnosServer]:
    yield from _serve(tmp_path_factory.mktemp("sessions"), clickhouse_server)


@pytest.fixture(scope="module")
def short_server(tmp_path_factory, clickhouse_server) -> Iterator[OdnosServer]:
    yield from _serve(tmp_path_factory.mktemp("sessions-short"), clickhouse_server,
                      ODNOS_SESSION_IDLE_TIMEOUT="2", ODNOS_SESSION_MAX_AGE="5")


def _signed_in(client: WebClient) -> bool:
    page = client.request("GET", "/")
    if page.status == 200:
        assert b'id="react-entry-point"' in page.body
        return True
    assert page.status == 302, page.status
    assert urllib.parse.urlsplit(page.getheader("Location")).path == "/login"
    return False


def _sign_out(client: WebClient) -> None:
    out = client.request("POST", "/logout", {"csrf": client.csrf()})
    assert out.status == 302


@pytest.mark.server
def test_a_session_fixed_before_sign_in_is_not_accepted_after_it(server: OdnosServer) -> None:
    victim = WebClient(server.port)
    victim.csrf()  # the login form hands out an anonymous session: the one an attacker would plant
    planted = victim.cookie
    assert planted
    victim.log_in(ANN, PASSWORD)
    assert victim.cookie != planted and _signed_in(victim)
    attacker = WebClient(server.port)
    attacker.cookie = planted
    assert not _signed_in(attacker)
    again = WebClient(server.port)
    again.log_in(ANN, PASSWORD)
    assert again.cookie != victim.cookie  # each sign-in is a session of its own


@pytest.mark.server
def test_signing_out_ends_every_session_of_that_user_only(server: OdnosServer) -> None:
    laptop, phone, other = WebClient(server.port), WebClient(server.port), WebClient(server.port)
    laptop.log_in(ANN, PASSWORD)
    phone.log_in(ANN, PASSWORD)
    other.log_in(BOB, PASSWORD)
    stolen = phone.cookie
    _sign_out(laptop)
    assert not _signed_in(phone) and phone.cookie == ""
    replayed = WebClient(server.port)
    replayed.cookie = stolen
    assert not _signed_in(replayed)
    assert _signed_in(other)  # Bob's session is not Ann's business
    laptop.log_in(ANN, PASSWORD)
    assert _signed_in(laptop)


@pytest.mark.server
def test_a_password_reset_from_the_command_line_ends_open_sessions(server: OdnosServer) -> None:
    browser, other = WebClient(server.port), WebClient(server.port)
    browser.log_in(BOB, PASSWORD)
    other.log_in(ANN, PASSWORD)
    reset = run_odnos("user", "add", "--email", BOB, "--password", "-", "--reset", env=server.env,
                      stdin="a new long password\n")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert not _signed_in(browser)
    assert browser.sign_in(BOB, PASSWORD).status == 401
    browser.log_in(BOB, "a new long password")
    assert _signed_in(browser) and _signed_in(other)


@pytest.mark.server
def test_an_idle_session_ends(short_server: OdnosServer) -> None:
    client = WebClient(short_server.port)
    client.log_in(ANN, PASSWORD)
    for _ in range(3):  # used within the idle limit, it goes on past it
        time.sleep(1)
        assert _signed_in(client)
    time.sleep(3)
    assert not _signed_in(client)


@pytest.mark.server
def test_a_busy_session_ends_at_its_absolute_limit(short_server: OdnosServer) -> None:
    client = WebClient(short_server.port)
    client.log_in(BOB, PASSWORD)
    started = time.monotonic()
    while time.monotonic() - started < 3.5:
        assert _signed_in(client)
        time.sleep(0.5)
    while time.monotonic() - started < 8:
        if not _signed_in(client):
            break
        time.sleep(0.5)
    ended = time.monotonic() - started
    assert 4 <= ended < 7.5, ended


@pytest.mark.server
def test_signing_out_elsewhere_ends_the_session_in_chromium(server: OdnosServer, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + "/login")
    browser.find_element(By.ID, "email").send_keys(ANN)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 20).until(lambda d: "/login" not in d.current_url)
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "whoami"))
    assert browser.find_element(By.ID, "whoami").text == ANN
    elsewhere = WebClient(server.port)
    elsewhere.log_in(ANN, PASSWORD)
    _sign_out(elsewhere)
    browser.get(server.url + "/segments")
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "email"))
    assert urllib.parse.urlsplit(browser.current_url).path == "/login"
