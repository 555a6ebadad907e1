"""The dashboard's shell: a Dash app on the odnos Flask server, behind the login.

``init_app(server)`` mounts Dash at ``/``: a frame (navigation, the signed-in user) and a router
that renders the page for the URL. Pages live in ``dashboard/pages/``; the filter bar's state is
the URL's query string, so a view can be shared and reloaded. Every route Dash adds is guarded by
``dashboard.access``. Dash serves its own scripts and the styles in ``dashboard/assets/``: nothing
is fetched from a CDN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import dash_mantine_components as dmc
from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html
from dash.exceptions import DependencyException
from flask import Flask, jsonify, request

from dashboard import access, components
from dashboard.data import ingestion_problems
from dashboard.pages import PAGES
from dashboard.prefetch import Key, Prefetch
from tracker.auth import csrf_token, current_user

ASSETS = Path(__file__).parent / "assets"
BANNER_REFRESH_MS = 30_000
NAVBAR = {"width": 210, "breakpoint": "sm", "collapsed": {"mobile": True}}
"""The navigation: a column on the left; on a phone a panel the burger opens (``toggleNav``)."""


def init_app(server: Flask) -> Dash:
    """Mount the dashboard on ``server``; every route it adds needs a signed-in user."""
    server.register_error_handler(DependencyException, _no_such_file)
    return access.protect(server, lambda: _make_dash(server))


def _no_such_file(error: DependencyException) -> Any:
    """Dash raises this for a script it never registered: the file asked for is not here (not a 500)."""
    return jsonify({"error": {"code": "not_found", "message": "no such dashboard file"}}), 404


def _make_dash(server: Flask) -> Dash:
    app = Dash(__name__, server=server, url_base_pathname="/", assets_folder=str(ASSETS),
               serve_locally=True, title="odnos", update_title=None, suppress_callback_exceptions=True,
               compress=False)
    app.layout = _frame
    _register_router(app)
    _register_banner(app)
    _register_burger(app)
    components.register(app)
    for page in PAGES:
        page.register(app)
    return app


def _frame() -> Any:
    """The page around every page: navigation on the left, the page on the right."""
    user = current_user()
    role = user.role if user else "viewer"
    links = [dmc.NavLink(label=page.TITLE, href=page.PATH, id=f"nav-{page.__name__.rsplit('.', 1)[1]}",
                         active="exact" if page.PATH == "/" else "partial")
             for page in PAGES if access.has_role(role, page.ROLE)]
    return dmc.MantineProvider(
        theme={"primaryColor": "indigo", "fontFamily": "system-ui, -apple-system, Segoe UI, sans-serif",
               "defaultRadius": "md"},
        children=dmc.AppShell(
            [
                dmc.AppShellHeader(
                    dmc.Group([
                        dmc.Group([dmc.Burger(id="nav-burger", opened=False, hiddenFrom="sm", size="sm",
                                              **{"aria-label": "navigation"}),
                                   html.A("odnos", href="/", className="brand")], gap="sm"),
                        dmc.Group([
                            dmc.Text(user.email if user else "", size="sm", c="dimmed", id="whoami",
                                     visibleFrom="sm"),
                            html.Form([dcc.Input(type="hidden", name="csrf", value=csrf_token()),
                                       html.Button("Sign out", className="signout")],
                                      method="post", action="/logout"),
                        ]),
                    ], justify="space-between", h="100%", px="md"),
                ),
                dmc.AppShellNavbar(links, p="sm"),
                dmc.AppShellMain([html.Div(id="ingestion-banner"),
                                  dcc.Loading(html.Div(id="page"), type="dot", delay_show=300)]),
                dcc.Interval(id="ingestion-tick", interval=BANNER_REFRESH_MS),
                dcc.Location(id="url", refresh="callback-nav"),
            ],
            header={"height": 52}, navbar=NAVBAR, padding="lg", id="shell",
        ),
    )


def _register_banner(app: Dash) -> None:
    """Above every page: a warning while events wait to be stored, or sit in a dead-letter file."""

    @access.callback(app, Output("ingestion-banner", "children"), Input("ingestion-tick", "n_intervals"))
    def warn(_ticks: int | None) -> Any:  # at the page's load, then every BANNER_REFRESH_MS
        return [dmc.Alert(_with_commands(text), title="Ingestion", color="orange", variant="light", mb="md",
                          className="ingestion-alert") for text in ingestion_problems()]


def _with_commands(text: str) -> list[Any]:
    """``text`` with its `backquoted` commands shown as code."""
    return [dmc.Code(part) if n % 2 else part for n, part in enumerate(text.split("`")) if part]


def _register_burger(app: Dash) -> None:
    """On a phone the burger opens the navigation, and choosing a page closes it (in the browser)."""
    access.clientside_callback(app, ClientsideFunction("odnos", "toggleNav"),
                               Output("shell", "navbar"), Output("nav-burger", "opened"),
                               Input("nav-burger", "opened"), Input("url", "pathname"),
                               State("shell", "navbar"))


def _register_router(app: Dash) -> None:
    by_path = {page.PATH: page for page in PAGES}

    def draw(pathname: str | None, search: str | None) -> Any:
        page = by_path.get(pathname or "/")
        if page is None:
            return _message("Page not found", f"There is no page at {pathname}.")
        user = current_user()
        if user is None or not access.has_role(user.role, page.ROLE):
            return _message("Not for your role", "Ask an admin for access to this page.")
        return page.layout(dict(parse_qsl((search or "").lstrip("?"), keep_blank_values=False)))

    early = Prefetch(draw)
    app.server.extensions["odnos.prefetch"] = early
    index = {app.config.routes_pathname_prefix, app.config.routes_pathname_prefix + "<path:path>"}

    @app.server.before_request
    def start_drawing() -> None:
        """A page's HTML request starts drawing the page (after the login guard let it through)."""
        user = current_user() if request.method == "GET" and request.endpoint in index else None
        if user is not None and request.path in by_path:
            early.start(_key(user.id, request.path, request.query_string.decode("latin-1")))

    @access.callback(app, Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def route(pathname: str | None, search: str | None) -> Any:
        user = current_user()
        drawn = early.take(_key(user.id, pathname or "/", (search or "").lstrip("?"))) if user else None
        return drawn.result() if drawn is not None else draw(pathname, search)


def _key(user_id: int, pathname: str, query: str) -> Key:
    return (str(user_id), pathname, f"?{query}" if query else "")


def _message(title: str, text: str) -> Any:
    return dmc.Alert(text, title=title, color="gray", variant="light", maw=520)
