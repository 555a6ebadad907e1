"""Settings: the sites and the tag to paste for each, API keys (created once, revocable), users."""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from flask import current_app

from dashboard import access
from tracker.auth import current_user
from tracker.control.api_keys import create_api_key, list_api_keys, revoke_api_key
from tracker.control.sites import list_sites
from tracker.control.users import list_users
from tracker.snippet import snippet_tag

PATH = "/settings"
TITLE = "Settings"
ROLE = "viewer"


def layout(query: dict[str, str]) -> Any:
    user = current_user()
    admin = user is not None and access.has_role(user.role, "admin")
    sections = [dmc.Title("Settings", order=2), _sites()]
    if admin:
        sections += [_api_keys(), _users()]
    return dmc.Stack(sections, gap="xl", maw=1000)


def _runtime() -> Any:
    return current_app.extensions["odnos"]


def _sites() -> Any:
    runtime = _runtime()
    public = runtime.settings.effective_public_url()
    with runtime.control.session() as db:
        sites = [(s.id, s.name, [d.domain for d in s.domains]) for s in list_sites(db)]
    rows = []
    for site_id, name, domains in sites:
        tag = snippet_tag(site_id, public)
        rows.append(dmc.TableTr([
            dmc.TableTd(dmc.Text(name, fw=600)), dmc.TableTd(dmc.Code(site_id)),
            dmc.TableTd(", ".join(domains)),
            dmc.TableTd(dmc.Group([dmc.Code(tag, className="snippet", id=f"snippet-{site_id}"),
                                   dcc.Clipboard(target_id=f"snippet-{site_id}", title="Copy",
                                                 className="copy")], gap="xs", wrap="nowrap")),
        ]))
    body = (dmc.Table([_head("Site", "Id", "Domains", "Paste this into every page"), dmc.TableTbody(rows)],
                      id="table-sites", striped=True, highlightOnHover=True)
            if rows else dmc.Text("No site yet: add one with `odnos site add NAME --domain example.com`."))
    return _card("Sites", body)


def _api_keys() -> Any:
    with _runtime().control.session() as db:
        keys = [(k.id, k.name, k.prefix, k.created_at, k.revoked_at) for k in list_api_keys(db)]
    rows = [dmc.TableTr([
        dmc.TableTd(name), dmc.TableTd(dmc.Code(f"odn_{prefix}_…")),
        dmc.TableTd(f"{created:%Y-%m-%d %H:%M}"),
        dmc.TableTd(dmc.Badge("revoked", color="gray") if revoked else dmc.Button(
            "Revoke", id={"type": "apikey-revoke", "key": key_id}, size="xs", color="red", variant="light")),
    ]) for key_id, name, prefix, created, revoked in keys]
    return _card("API keys", dmc.Stack([
        dmc.Group([dmc.TextInput(id="apikey-name", placeholder="name, e.g. newsletter tool", w=280),
                   dmc.Button("Create key", id="apikey-create")]),
        html.Div(id="apikey-created"),
        dmc.Table([_head("Name", "Key", "Created", ""), dmc.TableTbody(rows)], id="table-apikeys")
        if rows else dmc.Text("No API key yet.", c="dimmed"),
    ]))


def _users() -> Any:
    with _runtime().control.session() as db:
        users = [(u.email, str(u.role), u.disabled) for u in list_users(db)]
    rows = [dmc.TableTr([dmc.TableTd(email), dmc.TableTd(dmc.Badge(role, variant="light")),
                         dmc.TableTd("disabled" if disabled else "active")])
            for email, role, disabled in users]
    return _card("Users", dmc.Stack([
        dmc.Table([_head("Email", "Role", "State"), dmc.TableTbody(rows)], id="table-users"),
        dmc.Text("Add or change users with `odnos user add --email E --role admin|marketer|viewer`.",
                 size="sm", c="dimmed"),
    ]))


def _head(*titles: str) -> Any:
    return dmc.TableThead(dmc.TableTr([dmc.TableTh(t) for t in titles]))


def _card(title: str, body: Any) -> Any:
    return dmc.Paper([dmc.Title(title, order=4, mb="sm"), body], p="lg", withBorder=True)


def register(app: Dash) -> None:
    @access.callback(app, Output("apikey-created", "children"), Input("apikey-create", "n_clicks"),
                     State("apikey-name", "value"), role="admin", prevent_initial_call=True)
    def create_key(_: int, name: str | None) -> Any:
        name = (name or "").strip()
        if not name:
            return dmc.Alert("Give the key a name first.", color="yellow")
        user = current_user()
        with _runtime().control.session() as db:
            _, plaintext = create_api_key(db, user.id, name)
            db.commit()
        return dmc.Alert([dmc.Text("Copy this key now: it is shown only once."),
                          dmc.Code(plaintext, id="apikey-plaintext", block=True)],
                         title="Key created", color="green")

    @access.callback(app, Output({"type": "apikey-revoke", "key": ALL}, "disabled"),
                     Input({"type": "apikey-revoke", "key": ALL}, "n_clicks"), role="admin",
                     prevent_initial_call=True)
    def revoke(clicks: list[int | None]) -> Any:
        if not ctx.triggered_id or not any(clicks):
            return no_update
        with _runtime().control.session() as db:
            revoke_api_key(db, ctx.triggered_id["key"])
            db.commit()
        return [True if item["id"] == ctx.triggered_id else no_update for item in ctx.outputs_list]
