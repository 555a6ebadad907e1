"""The dashboard's shell: mounts its pages on the odnos Flask server, behind the login.

Until the Dash pages land, ``/`` is a status page: what this process runs and how much data the
store holds, so a newcomer who opens the printed URL sees odnos alive on their data.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, render_template

from tracker.auth import login_required
from tracker.control.sites import list_sites
from tracker.queries.overview import store_overview

bp = Blueprint("dashboard", __name__, template_folder="templates")


def init_app(server: Flask) -> None:
    """Register the dashboard's routes on ``server``."""
    server.register_blueprint(bp)


@bp.get("/")
@login_required
def home() -> Any:
    runtime = current_app.extensions["odnos"]
    with runtime.control.session() as db:
        sites = [(s.id, s.name, ", ".join(d.domain for d in s.domains)) for s in list_sites(db)]
    public_url = runtime.settings.effective_public_url()
    return render_template("status.html", sites=sites, overview=store_overview(runtime.reader),
                           store=runtime.store.kind, public_url=public_url)
