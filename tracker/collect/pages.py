"""The collector's Flask routes that are not hot: the unsubscribe page and the snippet file.

Unsubscribe follows RFC 8058: a GET only shows a page with a button, because link scanners fetch
every link of a message and must not unsubscribe anyone; the button's POST, or a mail client's
one-click ``List-Unsubscribe=One-Click`` POST, records the change at once in the suppression list
(the mailer's authority) and as an ``unsubscribe`` event for reports.

The event is stored with the suppression and handed to the spool right after; when the spool cannot
take it (full while ClickHouse is down, or broken) the person still sees the page, and
``PendingUnsubscribes`` hands it over later from a background thread: every few seconds after such a
refusal until none is pending, and once shortly after each worker starts (for a worker that died
between the two steps).
"""

from __future__ import annotations

import logging
import threading
from importlib import resources
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.orm import Session, sessionmaker

from tracker.collect.clients import client_of
from tracker.control.consent import EventDelayed, Submit, hand_over_pending
from tracker.errors import InvalidToken

log = logging.getLogger(__name__)

bp = Blueprint("collect", __name__)

SNIPPET = resources.files("tracker") / "static" / "s.js"
RETRY_SECONDS = 5.0
FIRST_LOOK_SECONDS = 10.0  # after a worker starts: its spool replays first


class PendingUnsubscribes:
    """A worker's background thread that hands pending unsubscribe events to the spool."""

    def __init__(self, sessions: sessionmaker[Session], submit: Submit) -> None:
        self._sessions = sessions
        self._submit = submit
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._failing = False
        threading.Thread(target=self._run, name="odnos-unsubscribe-events", daemon=True).start()

    def wake(self) -> None:
        """A hand-over failed: try again every few seconds until nothing is pending."""
        self._wanted.set()

    def close(self) -> None:
        self._stopping.set()
        self._wanted.set()

    def _run(self) -> None:
        delay = FIRST_LOOK_SECONDS
        while not self._stopping.wait(delay):
            if self._try():
                delay = RETRY_SECONDS
                continue
            self._wanted.wait()
            self._wanted.clear()
            delay = RETRY_SECONDS

    def _try(self) -> bool:
        """One pass; True when events are still pending."""
        try:
            more = hand_over_pending(self._sessions, self._submit)
        except Exception as exc:  # noqa: BLE001 - a full spool, or the control database down: retry
            if not self._failing:
                log.warning("unsubscribe events wait in the suppression list (%s); retrying every %.0f s",
                            str(exc).strip(), RETRY_SECONDS)
            self._failing = True
            return True
        if self._failing:
            log.info("pending unsubscribe events are queued again")
        self._failing = False
        return more


@bp.record_once
def _start_pending(state: BlueprintSetupState) -> None:
    runtime = state.app.extensions["odnos"]
    pending = PendingUnsubscribes(runtime.control.sessions, state.app.extensions["odnos.queue"].submit)
    state.app.extensions["odnos.pending_unsubscribes"] = pending
    runtime.extras.setdefault("closers", []).append(pending.close)


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
    client = client_of(request.environ, runtime.proxies)
    try:
        pipeline.unsubscribe(wanted.contact_id, wanted.list_id, client, how,
                             sessions=runtime.control.sessions)
    except EventDelayed as exc:  # the suppression is committed; its event waits in it
        log.info("an unsubscribe event waits in the suppression list to be queued: %s", exc)
        current_app.extensions["odnos.pending_unsubscribes"].wake()
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
