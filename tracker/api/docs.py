"""The API's own description: the OpenAPI document as JSON, and a page that renders it for people.

The document is ``schemas/openapi.json``, shipped in the package; the page is rendered here from
it (no script, no CDN), so what a person reads is what schemathesis checks the server against.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from flask import Response, render_template

from tracker.api import bp

METHODS = ("get", "put", "post", "patch", "delete")


@cache
def openapi_document() -> dict[str, Any]:
    """The parsed ``schemas/openapi.json`` (read once per process)."""
    return json.loads((resources.files("schemas") / "openapi.json").read_text(encoding="utf-8"))


@bp.get("/openapi.json")
def openapi_json() -> Any:
    return Response(json.dumps(openapi_document(), indent=2), mimetype="application/json")


@bp.get("/docs")
def docs_page() -> Any:
    document = openapi_document()
    operations = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                answers = operation.get("responses", {})
                operations.append({
                    "path": path, "method": method.upper(), "op": operation,
                    "anchor": operation.get("operationId") or f"{method}-{path}",
                    "body": _pretty(operation.get("requestBody", {}).get("content", {})),
                    "responses": [(code, *_answer(document, answers[code])) for code in sorted(answers)],
                })
    components = document.get("components", {}).get("schemas", {})
    schemas = {name: _pretty(schema) for name, schema in components.items()}
    return render_template("api_docs.html", info=document.get("info", {}), operations=operations,
                           schemas=schemas)


def _answer(document: dict[str, Any], answer: dict[str, Any]) -> tuple[str, str]:
    """A response's description and its content, a ``$ref`` to a shared response followed."""
    ref = answer.get("$ref", "")
    if ref.startswith("#/components/responses/"):
        answer = document.get("components", {}).get("responses", {}).get(ref.rsplit("/", 1)[-1], answer)
    return answer.get("description", ""), _pretty(answer.get("content", {}))


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2) if value else ""
