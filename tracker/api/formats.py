"""Answering in JSON or CSV: reports are read by programs (JSON) and by spreadsheets (CSV).

CSV is chosen by ``?format=csv`` or by an ``Accept`` header that prefers ``text/csv`` to JSON. A
report gives its JSON payload and its rows; the CSV is those rows, one header line from the first
row's keys, values as text (nested values as JSON), in UTF-8 with CRLF line ends (RFC 4180).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from flask import Response, jsonify, request

from tracker.api.body import Unprocessable

FORMATS = ("json", "csv")


def wants_csv() -> bool:
    """Whether this request asks for CSV (``format`` wins over ``Accept``)."""
    chosen = request.args.get("format")
    if chosen is not None:
        if chosen not in FORMATS:
            raise Unprocessable(f"format must be one of {', '.join(FORMATS)}.", field="format")
        return chosen == "csv"
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"], default="application/json")
    return best == "text/csv"


def answer(payload: dict[str, Any], rows: Sequence[dict[str, Any]], *, name: str) -> Response:
    """``payload`` as JSON, or ``rows`` as a CSV file called ``name``.csv."""
    if not wants_csv():
        return jsonify(payload)
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value
