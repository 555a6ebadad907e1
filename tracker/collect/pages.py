"""The collector's Flask routes that are not hot: the unsubscribe page and the snippet file.

Unsubscribe follows RFC 8058: a GET only shows a page with a button, because link scanners fetch
every link of a message and must not unsubscribe anyone; the button's POST, or a mail client's
one-click ``List-Unsubscribe=One-Click`` POST, records the change at once in the suppression list
(the mailer's authority) and as an ``unsubscribe`` event for reports.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request

from tracker.collect.clients import client_of
from tracker.control.consent import suppress
from tracker.errors import InvalidToken

bp = Blueprint("collect", __name__)

SNIPPET = resources.files("tracker") / "static" / "s.js"


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Any:
    runtime = current_app.extensions["odnos"]
    pipeline = current_app.extensions["odnos.pipeline"]
    try:
        wanted = pipeline.codec.read_unsubscribe(token)
    except InvalidToken as exc:
        return render_template("unsubscribe.html", state="invalid", message=exc.message), exc.status
    if request.method == "GET":
        return render_template("unsubscribe.html", state="confirm")
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    if not one_click and request.form.get("confirm") != "yes":
        return render_template("unsubscribe.html", state="confirm"), 400
    how = "one_click" if one_click else "page"
    first_time = suppress(runtime.control.sessions, wanted.contact_id, wanted.list_id, how)
    if first_time:
        pipeline.unsubscribe(wanted.contact_id, wanted.list_id,
                             client_of(request.environ, runtime.settings.trusted_proxies), how)
    if one_click:
        return {"ok": True, "unsubscribed": True}
    return render_template("unsubscribe.html", state="done")


@bp.get("/s.js")
def snippet() -> Response:
    response = Response(SNIPPET.read_bytes(), mimetype="application/javascript")
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
