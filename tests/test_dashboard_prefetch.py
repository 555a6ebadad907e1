"""A page's HTML request starts drawing the page; the router's callback that follows takes the drawing.

In-process, on the app the access tests build (a ClickHouse server database, one user per role): the
hand-off is counted by the app's ``Prefetch``, the page taken is the page the router draws itself,
and one user's drawing is never handed to another.
"""

from __future__ import annotations

import json

from flask import Flask

from tests.test_dashboard_access import _client, app
from tracker.control.sites import add_site

__all__ = ["app"]  # the module's fixture, from the access tests


def _route(client, pathname: str, search: str) -> dict:
    answer = client.post("/_dash-update-component", json={
        "output": "page.children", "outputs": {"id": "page", "property": "children"},
        "inputs": [{"id": "url", "property": "pathname", "value": pathname},
                   {"id": "url", "property": "search", "value": search}],
        "changedPropIds": ["url.pathname", "url.search"], "state": []})
    assert answer.status_code == 200, answer.data
    return json.loads(answer.data)["response"]["page"]["children"]


def test_the_router_takes_the_page_its_html_request_drew_for_the_same_user(app: Flask) -> None:
    runtime = app.extensions["odnos"]
    with runtime.control.session() as db:
        site_id = add_site(db, "Prefetched", ["prefetched.example.com"]).id
        db.commit()
    early = app.extensions["odnos.prefetch"]
    admin, viewer = _client(app, "admin"), _client(app, "viewer")
    search = f"?site={site_id}&period=7d"

    before = early.taken
    assert admin.get("/" + search).status_code == 200  # the HTML: starts drawing
    assert _route(viewer, "/", search) and early.taken == before  # not the viewer's drawing
    taken = _route(admin, "/", search)
    assert early.taken == before + 1
    assert taken == _route(admin, "/", search)  # drawn again, now in the callback: the same page
    assert early.taken == before + 1  # a drawing is taken once
    assert "kpi-visitors" in json.dumps(taken)

    assert admin.get("/behaviour").status_code == 200
    assert _route(admin, "/behaviour", "?period=30d") and early.taken == before + 1  # another URL
    anonymous = app.test_client().get("/" + search)
    assert anonymous.status_code == 302 and early.taken == before + 1
