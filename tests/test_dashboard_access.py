"""Every route and every Dash callback refuses anonymous requests; write callbacks refuse lesser roles.

Routes come from Flask's URL map and callbacks from Dash's callback map, never from a list written
here, so a page or route added later is covered the moment it exists. The only routes open without
a login are the ones a person reaches from outside by design (sign-in, the collector's hit and
token routes, the snippet, health): ``PUBLIC`` names them, and a new public route fails the test
until it is added there on purpose.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from dashboard.access import ROLE_RANK
from tracker.app import create_app
from tracker.control.users import add_user
from tracker.runtime import Runtime
from tracker.settings import load_settings

PASSWORD = "correct horse battery"
PUBLIC = {"auth.login", "auth.logout", "static", "collect.unsubscribe", "collect.snippet",
          "survey.answer", "survey.comment",
          "healthz", "metrics",  # counts only, for load balancers and scrapers
          # the API's own document and docs page, and its JSON 404 (every other API route takes a key)
          "api.openapi_json", "api.docs_page", "api._unknown"}
_ARG = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


@pytest.fixture(scope="module")
def app(clickhouse_server, tmp_path_factory) -> Iterator[Flask]:
    data = tmp_path_factory.mktemp("dashboard-access")
    database = "access_" + uuid.uuid4().hex[:8]
    environ = {"ODNOS_DATA_DIR": str(data), "ODNOS_CLICKHOUSE_URL": clickhouse_server.url_for(database)}
    runtime = Runtime.open(load_settings(environ=environ))
    with runtime.control.session() as db:
        for role in ROLE_RANK:
            add_user(db, f"{role}@example.com", PASSWORD, role)
        db.commit()
    flask_app = create_app(runtime)
    yield flask_app
    runtime.close()


def _client(app: Flask, role: str | None):
    client = app.test_client()
    if role is not None:
        page = client.get("/login")
        token = re.search(rb'name="csrf" value="([^"]+)"', page.data).group(1).decode()
        signed = client.post("/login", data={"email": f"{role}@example.com", "password": PASSWORD,
                                             "csrf": token})
        assert signed.status_code == 302, signed.data
    return client


def _routes(app: Flask) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        path = _ARG.sub(lambda m: "x", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, path))
    return found


def _refused(response) -> bool:
    if response.status_code == 401:
        return True
    return response.status_code in (302, 303) and "/login" in response.headers.get("Location", "")


def test_every_route_but_the_public_ones_needs_a_login(app: Flask) -> None:
    client = _client(app, None)
    routes = _routes(app)
    dash_endpoints = app.extensions["odnos.dash_endpoints"]
    assert len(dash_endpoints) >= 6, "the dashboard registered no routes"
    open_routes = set()
    for endpoint, method, path in routes:
        response = client.open(path, method=method, json={} if method == "POST" else None)
        if not _refused(response):
            open_routes.add(endpoint)
        if endpoint in dash_endpoints or endpoint not in PUBLIC:
            assert _refused(response), f"{method} {path} ({endpoint}): {response.status_code} anonymously"
    assert open_routes <= PUBLIC, open_routes - PUBLIC


def test_every_callback_needs_a_login_and_has_a_role(app: Flask) -> None:
    dash_app = app.extensions["odnos.dash"]
    roles = app.extensions["odnos.callback_roles"]
    assert dash_app.callback_map, "no callbacks registered"
    assert set(dash_app.callback_map) == set(roles), "a callback was registered without a role"
    client = _client(app, None)
    for output in dash_app.callback_map:
        response = client.post("/_dash-update-component", json={"output": output, "inputs": [], "state": []})
        assert response.status_code == 401, (output, response.status_code)


@pytest.mark.parametrize("role", ["viewer", "marketer"])
def test_callbacks_above_a_role_are_refused_to_it(app: Flask, role: str) -> None:
    roles = app.extensions["odnos.callback_roles"]
    above = [output for output, needed in roles.items() if ROLE_RANK[needed] > ROLE_RANK[role]]
    assert above, "no callback needs more than this role: the test would prove nothing"
    client = _client(app, role)
    for output in above:
        response = client.post("/_dash-update-component", json={"output": output, "inputs": [], "state": []})
        assert response.status_code == 403, (output, response.status_code)
        assert b"forbidden" in response.data


@pytest.mark.parametrize("role", ["viewer", "marketer"])
def test_an_unclicked_control_above_a_role_runs_nothing_and_a_clicked_one_is_refused(app: Flask,
                                                                                     role: str) -> None:
    """Dash calls a write callback when its page draws the button (its output, the URL, lies outside
    the page): the answer is "no update" (204), not an error in the viewer's console; a click is 403."""
    dash_app = app.extensions["odnos.dash"]
    roles = app.extensions["odnos.callback_roles"]
    above = [output for output, needed in roles.items() if ROLE_RANK[needed] > ROLE_RANK[role]]
    client = _client(app, role)
    for output in above:
        listed = dash_app.callback_map[output]["inputs"]
        inputs = [{"id": item["id"], "property": item["property"]} for item in listed]
        drawn = client.post("/_dash-update-component", json={"output": output, "inputs": inputs, "state": []})
        assert drawn.status_code == 204 and drawn.data == b"", (output, drawn.status_code)
        clicked = [{**item, "value": 1} for item in inputs]
        refused = client.post("/_dash-update-component", json={"output": output, "inputs": clicked,
                                                                "state": []})
        assert refused.status_code == 403 and b"forbidden" in refused.data, (output, refused.status_code)


def test_an_unknown_callback_is_refused_even_to_an_admin(app: Flask) -> None:
    response = _client(app, "admin").post("/_dash-update-component",
                                          json={"output": "nothing.children", "inputs": []})
    assert response.status_code == 400 and b"unknown_callback" in response.data


def test_a_callback_from_another_site_is_refused(app: Flask) -> None:
    client = _client(app, "admin")
    response = client.post("/_dash-update-component", json={"output": "page.children", "inputs": []},
                           headers={"Origin": "https://evil.example.org"})
    assert response.status_code == 403 and b"cross_origin" in response.data


def test_sign_in_needs_the_forms_token_and_slows_down_guessing(app: Flask) -> None:
    client = app.test_client()
    no_token = client.post("/login", data={"email": "viewer@example.com", "password": PASSWORD})
    assert no_token.status_code == 400
    page = client.get("/login")
    token = re.search(rb'name="csrf" value="([^"]+)"', page.data).group(1).decode()
    email = f"guess-{uuid.uuid4().hex[:6]}@example.com"
    guess = {"email": email, "password": "wrong-guess", "csrf": token}
    statuses = [client.post("/login", data=guess).status_code for _ in range(8)]
    assert statuses[:5] == [401] * 5 and 429 in statuses[5:], statuses
