"""The Flask app factory: one app whose parts (collector, dashboard, scheduler) a process chooses.

``create_app(runtime, parts)`` wires the blueprints for the parts asked for onto one Flask server:
embedded mode takes them all in one process; server mode runs ``collector`` and ``dashboard``
apart. Every error odnos raises on purpose (``OdnosError``) is rendered as
``{"error": {"code", "message"}}`` with its status, and anything else as a JSON 500 without a
traceback (the traceback goes to the log).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from tracker import auth, security_headers
from tracker.errors import OdnosError
from tracker.metrics import CONTENT_TYPE as METRICS_TYPE
from tracker.metrics import Refusals
from tracker.metrics import render as render_metrics
from tracker.runtime import Runtime

log = logging.getLogger(__name__)

PARTS = ("collector", "dashboard", "scheduler")
HEALTH_FIELDS = ("running", "pending_bytes", "pending_rows_estimate", "oldest_pending_seconds", "replaying",
                 "full", "failures", "accepted_rows", "inserted_rows", "dead_letter_rows", "last_insert_at",
                 "last_error_at")


def create_app(runtime: Runtime, parts: Iterable[str] = PARTS) -> Flask:
    """Build the Flask app for ``runtime`` with the named parts."""
    parts = tuple(parts)
    app = Flask("tracker")
    app.config.update(
        SECRET_KEY=runtime.keys[0],
        SECRET_KEY_FALLBACKS=list(runtime.keys[1:]),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=runtime.settings.effective_public_url().startswith("https://"),
        MAX_CONTENT_LENGTH=runtime.settings.max_body_bytes,
    )
    app.extensions["odnos"] = runtime
    _register_errors(app)

    if "collector" in parts:
        _add_collector(app, runtime)

    @app.get("/healthz")
    def healthz() -> Any:
        queue = app.extensions.get("odnos.queue")
        ingestion = None
        if queue is not None:  # counts only: paths and errors stay in the log
            stats = queue.stats()
            ingestion = {key: stats.get(key) for key in HEALTH_FIELDS}
        return jsonify(status="ok", parts=list(parts), store=runtime.store.kind, worker=os.getpid(),
                       ingestion=ingestion)

    if "collector" in parts:
        @app.get("/metrics")
        def metrics() -> Any:
            text = render_metrics(app.extensions["odnos.queue"].stats(),
                                  app.extensions["odnos.refusals"].counts(), os.getpid())
            return Response(text, content_type=METRICS_TYPE)

    if runtime.settings.clickhouse.embedded and "scheduler" in parts:  # the embedded build
        from tracker.remote.server import bp as remote_commands  # commands beside the server

        app.register_blueprint(remote_commands)

    if "dashboard" in parts:
        from dashboard.app import init_app
        from tracker import api

        app.register_blueprint(auth.bp)
        api.register(app)  # before the dashboard, whose login guard covers only routes added after
        init_app(app)
    security_headers.install(app)
    return app


def _add_collector(app: Flask, runtime: Runtime) -> None:
    """The ingestion queue (this worker's spool and writer), the pipeline, and the routes."""
    from tracker.collect import pages, survey
    from tracker.collect.frontend import Frontend
    from tracker.collect.pipeline import Pipeline
    from tracker.enrich.sessions import FILE_NAME, SessionTracker
    from tracker.ingest.queue import EventQueue
    from tracker.ingest.report import Reporter
    from tracker.tokens import TokenCodec

    queue = EventQueue(runtime.settings, runtime.store)
    reporter = Reporter(runtime.control.sessions, queue.stats)
    runtime.extras.setdefault("closers", []).extend([reporter.close, queue.close])
    pipeline = Pipeline(runtime.control, TokenCodec(runtime.keys), queue,
                        sessions=SessionTracker(runtime.settings.data_path / FILE_NAME))
    app.extensions["odnos.queue"] = queue
    app.extensions["odnos.pipeline"] = pipeline
    app.extensions["odnos.refusals"] = refusals = Refusals()
    app.register_blueprint(pages.bp)
    app.register_blueprint(survey.bp)
    app.wsgi_app = Frontend(app.wsgi_app, pipeline, runtime.settings.max_body_bytes,  # type: ignore[method-assign]
                            runtime.settings.max_batch_events, runtime.proxies, refusals)


def _register_errors(app: Flask) -> None:
    @app.errorhandler(OdnosError)
    def odnos_error(error: OdnosError) -> Any:
        return jsonify(error.to_json()), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        code = (error.name or "error").lower().replace(" ", "_")
        return jsonify({"error": {"code": code, "message": error.description}}), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Any:
        log.exception("unexpected error")
        return jsonify({"error": {"code": "internal", "message": "internal error; see the server log"}}), 500
