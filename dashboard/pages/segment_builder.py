"""The segment builder's form: a segment definition as rows of fields, and those rows as a definition.

A definition (schemas/segment.schema.json) is shown as a top group ("all" or "any") of items;
an item is a condition or a group of conditions (one level: deeper definitions are edited as
JSON), and either may be negated. The form's state is a small model, plain data a ``dcc.Store``
can hold::

    {"op": "all", "items": [{"not": False, "fields": {"kind": "visited", "path": "/pricing", ...}},
                            {"not": True, "group": "any", "rows": [{"not": False, "fields": {...}}]}]}

``model_of`` turns a definition into the model (``None`` when it does not fit the form),
``definition_of`` the model into a definition, ``render`` the model into components and
``read`` the components' values back into the model. Nothing here checks a definition: an
incomplete row simply leaves its keys out, and ``tracker.crm.segments.validate_definition``
names what is missing, with the schema's own words.

Component ids are ``{"type": "segb-s" | "segb-v", "path": "2.1", "field": "op"}``: ``segb-s``
fields change how a row looks (its kind, an operator, a mode, its negation), so changing one
redraws the form; ``segb-v`` fields are plain values, read when needed. Paths are item indexes,
``i.j`` for row j of group i, ``root`` for the top group.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import dash_mantine_components as dmc
from dash import html

KINDS = {"attribute": "attribute", "field": "contact field", "tag": "has tag", "consent": "consent is",
         "created": "was created", "visited": "visited", "event": "did event", "purchased": "purchased",
         "opened": "opened email", "clicked": "clicked email", "last_seen": "was last seen"}
KIND_GROUPS = [("The contact", ["attribute", "field", "tag", "consent", "created"]),
               ("What they did", ["visited", "event", "purchased", "opened", "clicked", "last_seen"])]
COUNTED = {"visited", "event", "purchased", "opened", "clicked"}  # at least / at most N in D days
OPS = {"equals": "equals", "not_equals": "is not", "contains": "contains", "in": "is one of",
       "exists": "is set"}
FIELDS = {"email": "email", "first_name": "first name", "last_name": "last name", "source": "source"}
STATUSES = ["subscribed", "unsubscribed", "bounced", "complained"]
CREATED_MODES = {"within_days": "in the last", "more_than_days": "more than", "after": "on or after",
                 "before": "before"}
SEEN_MODES = {"more_than_days": "more than", "less_than_days": "less than"}
ANY_CAMPAIGN, LAST_CAMPAIGN = "__any__", "__last__"
STRUCTURAL = {"kind", "op", "prop_op", "mode", "not"}  # "not": the row's colour says it
NEW_ROW: dict[str, Any] = {"not": False, "fields": {"kind": "attribute", "op": "equals"}}

# -- model <-> definition -------------------------------------------------------------------------


def _whole(value: Any) -> Any:
    """A number typed into a field: whole numbers as int (the schema wants integers), the rest as is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _text_test(fields: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    op = fields.get(prefix + "op") or "equals"
    node: dict[str, Any] = {"op": op}
    key = "values" if op == "in" else "value"
    value = fields.get(prefix + key)
    if op != "exists" and value not in (None, "", []):
        node[key] = value
    return node


def condition_of(fields: dict[str, Any]) -> dict[str, Any]:
    """The definition of one row; empty fields are left out, so the schema says what is missing."""
    kind = fields.get("kind") or "attribute"
    node: dict[str, Any] = {"type": kind}

    def put(key: str, value: Any) -> None:
        if value not in (None, "", []):
            node[key] = _whole(value)

    if kind == "attribute":
        put("name", fields.get("name"))
        node.update(_text_test(fields))
    elif kind == "field":
        put("field", fields.get("field") or "email")
        node.update(_text_test(fields))
    elif kind == "tag":
        put("tag", fields.get("tag"))
    elif kind == "consent":
        states = fields.get("status") or []
        put("status", states[0] if len(states) == 1 else states)
    elif kind == "created":
        mode = fields.get("mode") or "within_days"
        put(mode, fields.get("date") if mode in ("after", "before") else fields.get("amount"))
    elif kind == "last_seen":
        put(fields.get("mode") or "more_than_days", fields.get("amount"))
    elif kind == "visited":
        page = fields.get("path") or ""
        put("path_pattern" if "*" in page else "path", page)  # a star makes it a pattern
    elif kind == "event":
        put("name", fields.get("name"))
        if fields.get("prop_name"):
            node["property"] = {"name": fields["prop_name"], **_text_test(fields, "prop_")}
    elif kind == "purchased":
        put("item", fields.get("item"))
        put("min_value", fields.get("min_value"))
        put("max_value", fields.get("max_value"))
    elif kind in ("opened", "clicked"):
        campaign = fields.get("campaign") or ANY_CAMPAIGN
        if campaign == LAST_CAMPAIGN:
            node["last_campaign"] = True
        elif campaign != ANY_CAMPAIGN:
            node["campaign"] = campaign
        if kind == "clicked":
            put("link", fields.get("link"))
            put("url", fields.get("url"))
    if kind in COUNTED:
        count = _whole(fields.get("count"))
        if fields.get("count_op") == "at_most":
            node["at_most"] = None if count in (None, "") else count  # None: the schema asks for a number
        elif count not in (None, "", 1):
            node["at_least"] = count
        put("days", fields.get("days"))
    return node


def _negated(node: dict[str, Any], negate: bool) -> dict[str, Any]:
    return {"not": node} if negate else node


def definition_of(model: dict[str, Any]) -> dict[str, Any]:
    """The segment definition the form shows."""
    items = []
    for item in model.get("items", []):
        if "group" in item:
            rows = [_negated(condition_of(r["fields"]), r.get("not", False)) for r in item.get("rows", [])]
            items.append(_negated({item["group"]: rows}, item.get("not", False)))
        else:
            items.append(_negated(condition_of(item["fields"]), item.get("not", False)))
    return {model.get("op") or "all": items}


def _fields_of(node: dict[str, Any]) -> dict[str, Any]:
    """The row of one condition (the inverse of ``condition_of``, for what it can show)."""
    kind = node["type"]
    fields: dict[str, Any] = {"kind": kind}
    rest = {k: v for k, v in node.items() if k != "type"}
    if kind in ("attribute", "field"):
        fields.update({k: rest.get(k) for k in ("name", "field", "op", "value", "values") if k in rest})
    elif kind == "tag":
        fields["tag"] = rest.get("tag")
    elif kind == "consent":
        status = rest.get("status")
        fields["status"] = status if isinstance(status, list) else [status]
    elif kind in ("created", "last_seen"):
        mode = next(iter(rest), "")
        fields["mode"] = mode
        fields["date" if mode in ("after", "before") else "amount"] = rest.get(mode)
    elif kind == "visited":
        fields["path"] = rest.get("path_pattern", rest.get("path"))
    elif kind == "event":
        fields["name"] = rest.get("name")
        prop = rest.get("property")
        if isinstance(prop, dict):
            fields.update({"prop_" + k: v for k, v in prop.items()})
    elif kind == "purchased":
        fields.update({k: rest[k] for k in ("item", "min_value", "max_value") if k in rest})
    elif kind in ("opened", "clicked"):
        last = rest.get("last_campaign")
        fields["campaign"] = LAST_CAMPAIGN if last else rest.get("campaign", ANY_CAMPAIGN)
        fields.update({k: rest[k] for k in ("link", "url") if k in rest})
    if kind in COUNTED:
        if "at_most" in rest:
            fields.update(count_op="at_most", count=rest["at_most"])
        else:
            fields.update(count_op="at_least", count=rest.get("at_least", 1))
        if "days" in rest:
            fields["days"] = rest["days"]
    return fields


def _row_of(node: Any) -> dict[str, Any] | None:
    negate = isinstance(node, dict) and set(node) == {"not"}
    inner = node["not"] if negate else node
    if not isinstance(inner, dict) or "type" not in inner:
        return None
    return {"not": negate, "fields": _fields_of(inner)}


def _item_of(node: Any) -> dict[str, Any] | None:
    row = _row_of(node)
    if row is not None:
        return row
    negate = isinstance(node, dict) and set(node) == {"not"}
    inner = node["not"] if negate else node
    if not isinstance(inner, dict) or len(inner) != 1 or next(iter(inner)) not in ("all", "any"):
        return None
    op = next(iter(inner))
    rows = [_row_of(child) for child in inner[op]]
    if any(r is None for r in rows):
        return None
    return {"not": negate, "group": op, "rows": rows}


def _normal(node: Any) -> Any:
    """A definition in the form's spelling: a lone condition inside "all", one consent state as text,
    "at least once" said by leaving the count out. Definitions equal after this mean the same."""
    if isinstance(node, list):
        return [_normal(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _normal(v) for k, v in node.items()}
    if out.get("type") == "consent" and isinstance(out.get("status"), list) and len(out["status"]) == 1:
        out["status"] = out["status"][0]
    if out.get("type") in COUNTED and out.get("at_least") == 1 and "at_most" not in out:
        del out["at_least"]
    return out


def model_of(definition: dict[str, Any]) -> dict[str, Any] | None:
    """The form's model of a valid definition, or None when the form cannot show all of it."""
    top = definition if set(definition) in ({"all"}, {"any"}) else {"all": [definition]}
    op = next(iter(top))
    items = [_item_of(child) for child in top[op]]
    if any(i is None for i in items):
        return None
    model = {"op": op, "items": items}
    try:
        same = _normal(definition_of(model)) == _normal(top)
    except (KeyError, TypeError, AttributeError):
        return None
    return model if same else None


# -- components -----------------------------------------------------------------------------------


def _id(path: str, field: str) -> dict[str, str]:
    return {"type": "segb-s" if field in STRUCTURAL else "segb-v", "path": path, "field": field}


def _select(path: str, field: str, options: dict[str, str] | list[dict[str, Any]], value: Any, width: int,
            **kwargs: Any) -> Any:
    data = [{"value": k, "label": v} for k, v in options.items()] if isinstance(options, dict) else options
    return dmc.Select(id=_id(path, field), data=data, value=value, w=width, size="sm", allowDeselect=False,
                      comboboxProps={"withinPortal": True}, **kwargs)


def _text(path: str, field: str, value: Any, placeholder: str, width: int,
          suggestions: list[str] | None = None) -> Any:
    if suggestions:
        return dmc.Autocomplete(id=_id(path, field), value=value or "", data=suggestions,
                                placeholder=placeholder,
                                w=width, size="sm", debounce=400, comboboxProps={"withinPortal": True})
    return dmc.TextInput(id=_id(path, field), value=value or "", placeholder=placeholder, w=width, size="sm",
                         debounce=400)


def _number(path: str, field: str, value: Any, placeholder: str = "", width: int = 86, **kwargs: Any) -> Any:
    return dmc.NumberInput(id=_id(path, field), value="" if value is None else value, placeholder=placeholder,
                           w=width, size="sm", min=0, debounce=400, **kwargs)


def _word(text: str) -> Any:
    return dmc.Text(text, size="sm", c="dimmed", className="segb-word")


def _text_test_fields(path: str, fields: dict[str, Any], prefix: str = "",
                      values_hint: list[str] | None = None) -> list[Any]:
    op = fields.get(prefix + "op") or "equals"
    parts = [_select(path, prefix + "op", OPS, op, 110)]
    if op == "in":
        parts.append(dmc.TagsInput(id=_id(path, prefix + "values"), value=fields.get(prefix + "values") or [],
                                   placeholder="values, Enter after each", w=260, size="sm",
                                   data=values_hint or [], comboboxProps={"withinPortal": True}))
    elif op != "exists":
        parts.append(_text(path, prefix + "value", fields.get(prefix + "value"), "value", 150))
    return parts


def _count_fields(path: str, fields: dict[str, Any]) -> list[Any]:
    return [_select(path, "count_op", {"at_least": "at least", "at_most": "at most"},
                    fields.get("count_op") or "at_least", 104),
            _number(path, "count", fields.get("count", 1), width=72), _word("times in the last"),
            _number(path, "days", fields.get("days"), "ever", width=80), _word("days")]


def _kind_fields(path: str, fields: dict[str, Any], choices: dict[str, Any]) -> list[Any]:
    kind = fields.get("kind") or "attribute"
    if kind == "attribute":
        return [_text(path, "name", fields.get("name"), "name, e.g. plan", 130, choices["attributes"]),
                *_text_test_fields(path, fields)]
    if kind == "field":
        return [_select(path, "field", FIELDS, fields.get("field") or "email", 120),
                *_text_test_fields(path, fields)]
    if kind == "tag":
        return [_text(path, "tag", fields.get("tag"), "tag, e.g. vip", 200, choices["tags"])]
    if kind == "consent":
        return [dmc.MultiSelect(id=_id(path, "status"), data=STATUSES, value=fields.get("status") or [],
                                placeholder="one or more states", w=300, size="sm",
                                comboboxProps={"withinPortal": True})]
    if kind == "created":
        mode = fields.get("mode") or "within_days"
        if mode in ("after", "before"):
            return [_select(path, "mode", CREATED_MODES, mode, 130),
                    _text(path, "date", fields.get("date"), "YYYY-MM-DD", 130)]
        return [_select(path, "mode", CREATED_MODES, mode, 130),
                _number(path, "amount", fields.get("amount"), "days"),
                _word("days ago" if mode == "more_than_days" else "days")]
    if kind == "last_seen":
        return [_select(path, "mode", SEEN_MODES, fields.get("mode") or "more_than_days", 110),
                _number(path, "amount", fields.get("amount"), "days"), _word("days ago")]
    parts: list[Any] = []
    if kind == "visited":
        parts = [_word("the page"), _text(path, "path", fields.get("path"), "/pricing, /products/* for many",
                                          220)]
    elif kind == "event":
        parts = [_text(path, "name", fields.get("name"), "event name, e.g. signup", 170, choices["events"]),
                 _word("where"),
                 _text(path, "prop_name", fields.get("prop_name"), "property (optional)", 150),
                 *(_text_test_fields(path, fields, "prop_") if fields.get("prop_name") else [])]
    elif kind == "purchased":
        parts = [_text(path, "item", fields.get("item"), "any item", 150), _word("worth"),
                 _number(path, "min_value", fields.get("min_value"), "min", allowDecimal=True),
                 _word("to"), _number(path, "max_value", fields.get("max_value"), "max", allowDecimal=True)]
    elif kind in ("opened", "clicked"):
        parts = [_select(path, "campaign", choices["campaigns"], fields.get("campaign") or ANY_CAMPAIGN, 210,
                         searchable=True)]
        if kind == "clicked":
            parts += [_text(path, "link", fields.get("link"), "link no. (optional)", 140),
                      _text(path, "url", fields.get("url"), "or target URL (optional)", 190)]
    return [*parts, *_count_fields(path, fields)]


def _negation(path: str, negate: bool) -> Any:
    return dmc.SegmentedControl(id=_id(path, "not"), value="not" if negate else "is", size="xs",
                                data=[{"value": "is", "label": "is"}, {"value": "not", "label": "NOT"}],
                                className="segb-not")


def _remove(path: str) -> Any:
    return dmc.ActionIcon("×", id={"type": "segb-remove", "path": path}, variant="subtle", color="gray",
                          size="md", n_clicks=0, className="segb-remove")


def _kinds() -> list[dict[str, Any]]:
    return [{"group": name, "items": [{"value": k, "label": KINDS[k]} for k in kinds]}
            for name, kinds in KIND_GROUPS]


def _row(path: str, row: dict[str, Any], choices: dict[str, Any]) -> Any:
    fields = row["fields"]
    return html.Div([
        _negation(path, row.get("not", False)),
        _select(path, "kind", _kinds(), fields.get("kind") or "attribute", 150),
        *_kind_fields(path, fields, choices),
        _remove(path),
    ], className="segb-row" + (" segb-row-not" if row.get("not") else ""), id=f"segb-row-{path}")


def _op(path: str, value: str) -> Any:
    return dmc.SegmentedControl(id=_id(path, "op" if path == "root" else "group"), value=value, size="xs",
                                data=[{"value": "all", "label": "all"}, {"value": "any", "label": "any"}])


def _group(index: int, item: dict[str, Any], choices: dict[str, Any]) -> Any:
    path = str(index)
    rows = [_row(f"{path}.{n}", row, choices) for n, row in enumerate(item.get("rows", []))]
    return html.Div([
        html.Div([_negation(path, item.get("not", False)), _word("a group matching"),
                  _op(path, item["group"]),
                  _word("of"), html.Div(className="segb-spacer"), _remove(path)],
                  className="segb-group-head"),
        *rows,
        dmc.Button("+ condition in this group", id={"type": "segb-add", "path": path}, variant="subtle",
                   size="compact-sm", n_clicks=0),
    ], className="segb-group" + (" segb-row-not" if item.get("not") else ""))


def render(model: dict[str, Any], choices: dict[str, Any]) -> Any:
    """The form for ``model``; ``choices`` holds the pickers' data (attributes, tags, events, campaigns)."""
    items = [(_group(i, item, choices) if "group" in item else _row(str(i), item, choices))
             for i, item in enumerate(model.get("items", []))]
    return html.Div([
        html.Div([_word("Contacts matching"), _op("root", model.get("op") or "all"), _word("of these:")],
                 className="segb-head"),
        *(items or [dmc.Text("No condition: every contact. Add one below.", size="sm", c="dimmed",
                             className="segb-empty")]),
    ], className="segb")


def read(values: list[dict[str, Any]]) -> dict[str, Any]:
    """The model the form's components hold (``values``: Dash's states of the ``segb-*`` ids)."""
    by_path: dict[str, dict[str, Any]] = defaultdict(dict)
    for item in values:
        by_path[item["id"]["path"]][item["id"]["field"]] = item.get("value")
    root = by_path.pop("root", {})

    def row(fields: dict[str, Any]) -> dict[str, Any]:
        return {"not": fields.get("not") == "not", "fields": {k: v for k, v in fields.items() if k != "not"}}

    items = []
    tops = sorted((p for p in by_path if "." not in p), key=int)
    for top in tops:
        fields = by_path[top]
        if "group" in fields:
            members = sorted((p for p in by_path if p.startswith(top + ".")),
                             key=lambda p: int(p.split(".")[1]))
            items.append({"not": fields.get("not") == "not", "group": fields["group"] or "all",
                          "rows": [row(by_path[m]) for m in members]})
        else:
            items.append(row(fields))
    return {"op": root.get("op") or "all", "items": items}


def summary(definition: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """A definition in a line of words, for the list of segments: 'visited /pricing ≥3× in 7 d AND NOT …'."""
    names = names or {}

    def say(node: Any) -> str:
        if not isinstance(node, dict):
            return "?"
        for op, word in (("all", " AND "), ("any", " OR ")):
            if op in node:
                parts = [say(child) for child in node[op]]
                if not parts:
                    return "everyone"
                text = word.join(parts)
                return f"({text})" if len(parts) > 1 else text
        if "not" in node:
            return "NOT " + say(node["not"])
        return _say_condition(node, names)

    text = say(definition)
    top = definition.get("all", definition.get("any")) if isinstance(definition, dict) else None
    return text[1:-1] if isinstance(top, list) and len(top) > 1 else text  # no brackets around it all


def _say_condition(node: dict[str, Any], names: dict[str, str]) -> str:
    kind = node.get("type", "?")
    if kind in ("attribute", "field"):
        subject = node.get("name") if kind == "attribute" else FIELDS.get(node.get("field", ""), "?")
        op = node.get("op", "")
        operand = ", ".join(node.get("values", [])) if op == "in" else node.get("value", "")
        return f"{subject} {OPS.get(op, op)}" + (f" {operand}" if op != "exists" else "")
    if kind == "tag":
        return f"tag {node.get('tag')}"
    if kind == "consent":
        status = node.get("status")
        return "consent " + (" or ".join(status) if isinstance(status, list) else str(status))
    if kind in ("created", "last_seen"):
        mode = next((k for k in node if k != "type"), "")
        label = (CREATED_MODES if kind == "created" else SEEN_MODES).get(mode, mode)
        unit = "" if mode in ("after", "before") else " days" + (" ago" if mode != "within_days" else "")
        return f"{KINDS[kind]} {label} {node.get(mode)}{unit}"
    what = {"visited": lambda: node.get("path") or node.get("path_pattern", ""),
            "event": lambda: node.get("name", "") + (f" with {node['property'].get('name')}"
                                                      if "property" in node else ""),
            "purchased": lambda: node.get("item", "anything"),
            "opened": lambda: _campaign_words(node, names), "clicked": lambda: _campaign_words(node, names)}
    text = f"{KINDS.get(kind, kind)} {what.get(kind, lambda: '')()}".strip()
    if "at_most" in node:
        text += f" at most {node['at_most']}×"
    elif node.get("at_least", 1) != 1:
        text += f" at least {node['at_least']}×"
    if "days" in node:
        text += f" in {node['days']} days"
    return text


def _campaign_words(node: dict[str, Any], names: dict[str, str]) -> str:
    if node.get("last_campaign"):
        return "the last campaign"
    if "campaign" in node:
        return f"“{names.get(node['campaign'], node['campaign'])}”"
    return "any campaign"
