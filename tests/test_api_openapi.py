"""The OpenAPI document matches the server: every route documented, served as shipped, and fuzzed.

schemathesis generates requests from ``schemas/openapi.json`` for every operation and sends them
to the live server (on chDB and on the ClickHouse server) with an all-scopes key: no answer may be
a 5xx, and every answer (status, content type, headers, body) must be one the document allows.
Path parameters naming a site, a segment or a campaign are replaced by real ones for part of the
examples, so the fuzzing reaches the reports and not only their 404s.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.api import SEGMENT, ApiWorld, api_world_fixture  # noqa: F401
from tracker import api

pytestmark = pytest.mark.server

DOCUMENT = Path(__file__).resolve().parents[1] / "schemas" / "openapi.json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
EXAMPLES_PER_OPERATION = 25


def _document() -> dict:
    return json.loads(DOCUMENT.read_text())


def _routes() -> dict[tuple[str, str], str | None]:
    """(METHOD, /path/{param}) -> required scope of every route the API blueprint serves (the JSON
    404 catch-all aside); None for the routes open to all (the document and its page)."""
    app = Flask("routes")
    api.register(app)
    found = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(api.PREFIX) or rule.endpoint == "api._unknown":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        scope = getattr(app.view_functions[rule.endpoint], "required_scope", None)
        found |= {(method, path): scope for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_every_route_is_documented_with_its_scope_and_every_documented_route_exists() -> None:
    documented = {(method.upper(), path): operation.get("x-scope")
                  for path, item in _document()["paths"].items() if path.startswith(api.PREFIX)
                  for method, operation in item.items() if method != "parameters"}
    assert _routes() == documented


def test_every_error_response_uses_the_one_error_shape() -> None:
    document = _document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = answer.get("$ref", "")
                    target = document["components"]["responses"][ref.rsplit("/", 1)[-1]] if ref else answer
                    schema = target["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_the_document_is_served_as_shipped_and_readable(world: ApiWorld) -> None:
    served = world.call("GET", "/api/v1/openapi.json", key=None)
    assert served.status == 200 and served.headers["content-type"].startswith("application/json")
    assert served.json() == _document()
    page = world.call("GET", "/api/v1/docs", key=None)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    html = page.body.decode()
    for path, item in _document()["paths"].items():
        for method in item:
            if method != "parameters":
                assert f"{method.upper()}</span> <code>{path}</code>" in html, (method, path)
    # Nothing is fetched from elsewhere: no scripts at all, no external stylesheets or images.
    assert "<script" not in html
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html)


def test_schemathesis_finds_no_server_error_and_no_mismatch(world: ApiWorld) -> None:
    schema = schemathesis.openapi.from_url(f"{world.server.url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {world.keys['all']}"}
    real = {"site_id": world.site_id, "name": SEGMENT, "campaign_id": "1"}
    tested = set()
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            for name, value in real.items():
                # Half the examples (by the generated value's length) ask for something that exists.
                if name in (case.path_parameters or {}) and len(str(case.path_parameters[name])) % 2 == 0:
                    case.path_parameters[name] = value
            case.call_and_validate(base_url=world.server.url, headers=headers, checks=CHECKS)

        check()
        tested.add(operation.label)
    served = world.call("GET", "/api/v1/openapi.json", key=None).json()
    operations = {f"{method.upper()} {path}" for path, item in served["paths"].items() for method in item
                  if method != "parameters"}
    # schemathesis leaves out the document it was loaded from (checked above, as served).
    assert tested == operations - {"GET /api/v1/openapi.json"}
