"""Check a segment definition against schemas/segment.schema.json and the rules a schema cannot say.

A refusal names the path of the bad field (``all[1].days``) and what was expected, so a marketer
fixing a JSON file, or the dashboard's builder, can point at the spot. The schema is the contract
(shapes, types, ranges, unknown fields); the checks here are the pairs it cannot express
clearly: one of path / path_pattern, at_most not below at_least, a value only where the
operator takes one, and a bound on size and nesting so a definition cannot grow without limit.
"""

from __future__ import annotations

import json
import math
from datetime import date
from importlib import resources
from typing import Any

import fastjsonschema

from tracker.errors import OdnosError

SCHEMA: dict[str, Any] = json.loads((resources.files("schemas") / "segment.schema.json").read_text())
_validate = fastjsonschema.compile(SCHEMA)

MAX_DEPTH = 8
MAX_NODES = 200
_TEXT_OPERANDS = {"equals": "value", "not_equals": "value", "contains": "value", "in": "values",
                  "exists": None}


class SegmentDefinitionError(OdnosError):
    """A definition that does not match the schema; the message starts with the bad field's path."""

    code = "bad_segment"

    def __init__(self, path: str, expected: str) -> None:
        super().__init__(f"segment definition: {path or '(the whole definition)'}: {expected}")
        self.path = path


def _path(parts: list[str]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _schema_error(exc: fastjsonschema.JsonSchemaValueException) -> SegmentDefinitionError:
    path = _path(list(exc.path[1:]))
    described = exc.definition.get("description") if isinstance(exc.definition, dict) else None
    message = exc.message.removeprefix(exc.name).strip()
    if exc.rule in ("anyOf", "oneOf", "if", "then", "else") and described:
        message = f"expected {described}"
    elif exc.rule == "const":
        message = f"must be {json.dumps(exc.rule_definition)}"
    elif exc.rule == "additionalProperties" and described:
        message = f"{message} (a {path.rsplit('.', 1)[-1] if path else 'node'} is {described})"
    return SegmentDefinitionError(path, message)


def _check_text(node: dict[str, Any], where: str) -> None:
    wanted = _TEXT_OPERANDS[node["op"]]
    for key in ("value", "values"):
        if key in node and key != wanted:
            takes = f'takes "{wanted}"' if wanted else "takes no value"
            raise SegmentDefinitionError(f"{where}.{key}" if where else key, f'op {node["op"]!r} {takes}')


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check_condition(node: dict[str, Any], where: str) -> None:
    kind = node["type"]
    problem, at = "", where
    if kind in ("attribute", "field"):
        _check_text(node, where)
    elif kind == "event" and "property" in node:
        _check_text(node["property"], _join(where, "property"))
    elif kind == "visited" and ("path" in node) == ("path_pattern" in node):
        problem = 'visited takes exactly one of "path" and "path_pattern"'
    elif kind in ("opened", "clicked") and "campaign" in node and "last_campaign" in node:
        problem = f'{kind} takes "campaign" or "last_campaign", not both'
    elif kind == "created":
        if len(node) == 1:
            problem = 'created needs "within_days", "more_than_days", "after" or "before"'
        for key in ("after", "before"):
            try:
                if key in node:
                    date.fromisoformat(node[key])
            except ValueError:
                problem, at = f"{node[key]!r} is not a date (YYYY-MM-DD)", _join(where, key)
    elif kind == "last_seen" and len(node) != 2:
        problem = 'last_seen takes exactly one of "more_than_days" and "less_than_days"'
    elif kind == "purchased" and node.get("max_value", math.inf) < node.get("min_value", -math.inf):
        problem, at = "must be at least min_value", _join(where, "max_value")
    if node.get("at_most", math.inf) < node.get("at_least", 0):
        problem, at = f"must be at least at_least ({node['at_least']})", _join(where, "at_most")
    if problem:
        raise SegmentDefinitionError(at, problem)


def _check(node: dict[str, Any], where: str, depth: int, count: list[int]) -> None:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise SegmentDefinitionError(where, f"a definition holds at most {MAX_NODES} conditions and groups")
    if depth > MAX_DEPTH:
        raise SegmentDefinitionError(where, f"groups nest at most {MAX_DEPTH} deep")
    for group in ("all", "any"):
        if group in node:
            for n, child in enumerate(node[group]):
                _check(child, f"{_join(where, group)}[{n}]", depth + 1, count)
            return
    if "not" in node:
        _check(node["not"], _join(where, "not"), depth + 1, count)
    else:
        _check_condition(node, where)


def validate_definition(definition: Any) -> dict[str, Any]:
    """Return the definition if it is valid; raise SegmentDefinitionError (path and expectation) if not."""
    try:
        _validate(definition)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise _schema_error(exc) from None
    _check(definition, "", 0, [0])
    return definition
