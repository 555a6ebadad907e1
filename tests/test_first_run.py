"""A new user's first run, through the real `odnos` command and server: where the login comes from,
how to get it back, and trying a tracked link's hand-off by hand."""

from __future__ import annotations

import http.client
import re
import time
import urllib.parse
from pathlib import Path

from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tests.fixtures.web import WebClient

FIRST_LOGIN = re.compile(r"^first start: dashboard login (\S+@\S+) / (\S+)  \(shown once; .*"
                         r"odnos user add --email \1 --password - --reset\)$")
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
           "Safari/537.36")


def _clean_error(result, fragment: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("odnos: error: "), result.stderr
    assert fragment in lines[0], lines[0]


def _line_after_ready(server: OdnosServer, pattern: re.Pattern, timeout: float = 5) -> re.Match | None:
    """The first output line matching ``pattern`` (printed just after the ready line), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(server.output):
            found = pattern.match(line.rstrip("\n"))
            if found:
                return found
        time.sleep(0.05)
    return None


def _signs_in(port: int, email: str, password: str) -> bool:
    response = WebClient(port).sign_in(email, password)
    assert response.status in (302, 401), response.status
    return response.status == 302 and response.getheader("Location") == "/"


def _reset(env: dict[str, str], email: str, password: str, *extra: str):
    return run_odnos("user", "add", "--email", email, "--password", "-", "--reset", *extra, env=env,
                     stdin=password + "\n")


def test_serve_on_a_folder_without_users_makes_an_admin_and_prints_its_login_once(tmp_path: Path) -> None:
    env = odnos_env(tmp_path / "data")
    with OdnosServer(env) as server:
        found = _line_after_ready(server, FIRST_LOGIN)
        assert found, "".join(server.output)
        email, password = found.groups()
        lines = [line.rstrip("\n") for line in server.output]
        assert lines.index(found.group(0)) == lines.index(server.ready_line.rstrip("\n")) + 1
        assert _signs_in(server.port, email, password)

        # reset beside the running server: the new password works at once, the old one no longer
        new_password = "a-new-password-42"
        reset = _reset(env, email, new_password)
        assert reset.returncode == 0, reset.stderr
        assert reset.stdout.splitlines()[0] == f"set a new password for admin {email}"
        assert reset.stdout.strip().splitlines()[-1].isdigit()
        assert _signs_in(server.port, email, new_password)
        assert not _signs_in(server.port, email, password)

    with OdnosServer(env) as again:  # a user exists now: nobody else is made, nothing is printed
        assert _line_after_ready(again, re.compile(r"first start"), timeout=1.5) is None
        assert _signs_in(again.port, email, new_password)


def test_user_add_reset_and_its_mistakes(tmp_path: Path) -> None:
    env = odnos_env(tmp_path / "data")
    added = run_odnos("user", "add", "--email", "Ana@Example.com", "--password", "first-password",
                      "--role", "marketer", env=env)
    assert added.returncode == 0, added.stderr
    user_id = added.stdout.strip().splitlines()[-1]
    _clean_error(run_odnos("user", "add", "--email", "ana@example.com", "--password", "second-password",
                           env=env), "add --reset")
    _clean_error(_reset(env, "nobody@example.com", "second-password"), "leave out --reset")
    _clean_error(_reset(env, "ana@example.com", "short"), "8 to 1024 characters")

    kept_role = _reset(env, "ana@example.com", "second-password")
    assert kept_role.stdout.splitlines() == ["set a new password for marketer ana@example.com", user_id]
    new_role = _reset(env, "ana@example.com", "third-password", "--role", "admin")
    assert new_role.stdout.splitlines() == ["set a new password for admin ana@example.com", user_id]


def test_a_second_demo_says_how_to_get_the_login_back(tmp_path: Path) -> None:
    env = odnos_env(tmp_path / "data")
    first = run_odnos("demo", "--visitors", "50", "--days", "3", env=env)
    assert first.returncode == 0, first.stderr
    again = run_odnos("demo", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("demo data is already loaded")
    command = re.search(r"odnos user add --email (\S+) --password - --reset$", again.stdout.strip())
    assert command, again.stdout
    email = command.group(1)
    assert _reset(env, email, "my-own-demo-password").returncode == 0
    with OdnosServer(env) as server:
        assert _line_after_ready(server, re.compile(r"first start"), timeout=1.5) is None  # demo's user
        assert _signs_in(server.port, email, "my-own-demo-password")


def _follow_once(server: OdnosServer, url: str, user_agent: str) -> str:
    """GET the tracked link as a client would, without following the redirect; the Location."""
    path = urllib.parse.urlsplit(url).path
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path, headers={"User-Agent": user_agent})
        response = conn.getresponse()
        response.read()
        assert response.status == 302, response.status
        return response.getheader("Location")
    finally:
        conn.close()


def test_a_link_tried_right_after_it_is_made_shows_the_hand_off(tmp_path: Path) -> None:
    env = odnos_env(tmp_path / "data")
    site = run_odnos("site", "add", "Shop", "--domain", "shop.example.com", env=env)
    assert site.returncode == 0, site.stderr
    target = "https://shop.example.com/spring?ref=mail"
    made = run_odnos("link", "--email", "ann@example.com", "--campaign", "spring", target, env=env)
    assert made.returncode == 0, made.stderr
    *notes, url = made.stdout.strip().splitlines()
    said = "\n".join(notes)
    assert "shop.example.com is on the site 'Shop'" in said and "_odn" in said
    assert "no --sent-at, so clicks are not judged by how soon they come" in said
    assert "within 10 s" in said and "open the link in a browser" in said

    elsewhere = run_odnos("link", "--email", "ann@example.com", "--campaign", "spring",
                          "https://other.example.org/", env=env)
    assert "other.example.org is not a registered site's domain" in elsewhere.stdout
    assert "odnos site add NAME --domain other.example.org" in elsewhere.stdout

    # the send a minute from now: every click before it and 10 s after is too soon for a person
    just_sent = run_odnos("link", "--email", "ann@example.com", "--campaign", "spring", "--sent-at",
                          str(int(time.time()) + 60), target, env=env)
    assert re.search(r"wait \d+ s before trying it", just_sent.stdout), just_sent.stdout
    scanned_url = just_sent.stdout.strip().splitlines()[-1]

    with OdnosServer(env) as server:
        landed = _follow_once(server, url, BROWSER)  # right after `odnos link`, in a browser
        assert landed.startswith(target) and "_odn=" in landed, landed
        assert "_odn=" not in _follow_once(server, url, "curl/8.5.0")  # curl counts as a machine
        assert "_odn=" not in _follow_once(server, scanned_url, BROWSER)  # within 10 s of --sent-at
