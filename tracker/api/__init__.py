"""The HTTP API under ``/api/v1``: one blueprint, routes in the modules of this package.

Each module here that serves routes adds them to ``bp`` when imported; ``register(app)`` imports
every module of the package (so a new module needs no line here), then registers the blueprint. It
runs where the dashboard runs, and before the dashboard mounts, so the dashboard's login guard
never sees these routes: they are guarded by API keys (``tracker.api.auth.require``).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from flask import Blueprint, Flask, jsonify

from tracker.errors import NotFound, OdnosError

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX, template_folder="templates")


@bp.errorhandler(OdnosError)
def _error(error: OdnosError) -> Any:
    """The collector's error shape, plus any headers the error carries (``Retry-After``)."""
    return jsonify(error.to_json()), error.status, getattr(error, "headers", {})


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def _unknown(rest: str) -> Any:
    """A JSON 404 for any path under the prefix that no route serves (not the dashboard's login page)."""
    raise NotFound(f"There is no API route {PREFIX}/{rest}; the routes are listed at {PREFIX}/docs.",
                   code="unknown_route")


def register(app: Flask) -> None:
    """Import every route module of this package, then mount the blueprint on ``app``."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    app.register_blueprint(bp)
