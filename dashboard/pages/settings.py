"""Settings: the sites and the tag to paste for each, your two-factor sign-in, API keys (created once,
revocable), users, and for admins the audit log (newest first; read only, like everywhere)."""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from flask import current_app
from sqlalchemy import func, select

from dashboard import access
from tracker import audit, two_factor
from tracker.auth import current_user
from tracker.control.api_keys import SCOPES, create_api_key, key_scopes, list_api_keys, revoke_api_key
from tracker.control.models import RecoveryCode, User
from tracker.control.sites import list_sites
from tracker.control.users import list_users
from tracker.errors import OdnosError
from tracker.snippet import snippet_tag

PATH = "/settings"
TITLE = "Settings"
ROLE = "viewer"
AUDIT_ROWS = 200


def layout(query: dict[str, str]) -> Any:
    user = current_user()
    admin = user is not None and access.has_role(user.role, "admin")
    sections = [dmc.Title("Settings", order=2), _sites()]
    if user is not None:
        sections.append(_two_factor(user.id))
    if admin:
        sections += [_api_keys(), _users(), _audit_log()]
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


def _two_factor(user_id: int) -> Any:
    """Your own second factor: set it up (QR code and key, then a code to confirm), or turn it off."""
    with _runtime().control.session() as db:
        user = db.get(User, user_id)
        on = user.totp_secret is not None
        left = db.scalar(select(func.count()).select_from(RecoveryCode).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)))
        required = str(user.role) == "admin" and _runtime().settings.admin_two_factor
    if not on:
        return _card("Two-factor sign-in", dmc.Stack([
            dmc.Text("Off: signing in needs only your password. Turn it on to also ask for a code from "
                     "an authenticator app.", id="totp-state"),
            dmc.Group([dmc.Button("Set up two-factor sign-in", id="totp-start")]),
            html.Div(id="totp-setup"),
        ]))
    off = (dmc.Text("Admins of this odnos must keep it on.", size="sm", c="dimmed") if required else
           dmc.Group([dmc.TextInput(id="totp-off-code", placeholder="a current code", w=200),
                      dmc.Button("Turn off", id="totp-off", color="red", variant="light")]))
    return _card("Two-factor sign-in", dmc.Stack([
        dmc.Text(f"On: signing in asks for a code from your authenticator app. {left} unused recovery "
                 "codes left.", id="totp-state"),
        off, html.Div(id="totp-off-result"),
    ]))


def _setup_step(user_id: int, email: str) -> Any:
    nonce = two_factor.new_nonce()
    secret = two_factor.pending_secret(_runtime().keys[0], user_id, nonce)
    return dmc.Stack([
        dmc.Text("Scan this with your authenticator app, or type the key into it; then give the code it "
                 "shows."),
        html.Img(src=two_factor.qr_data_uri(secret, email), id="totp-qr", width=200, height=200,
                 alt="QR code of the two-factor key"),
        dmc.Group([dmc.Text("Key:"), dmc.Code(secret, id="totp-secret")]),
        dcc.Store(id="totp-nonce", data=nonce),
        dmc.Group([dmc.TextInput(id="totp-code", placeholder="6-digit code", w=200),
                   dmc.Button("Turn on", id="totp-confirm")]),
        html.Div(id="totp-result"),
    ])


def _api_keys() -> Any:
    with _runtime().control.session() as db:
        keys = [(k.id, k.name, k.prefix, ", ".join(sorted(key_scopes(k))) or "none", k.created_at,
                 k.revoked_at) for k in list_api_keys(db)]
    rows = [dmc.TableTr([
        dmc.TableTd(name), dmc.TableTd(dmc.Code(f"odn_{prefix}_…")), dmc.TableTd(scopes),
        dmc.TableTd(f"{created:%Y-%m-%d %H:%M}"),
        dmc.TableTd(dmc.Badge("revoked", color="gray") if revoked else dmc.Button(
            "Revoke", id={"type": "apikey-revoke", "key": key_id}, size="xs", color="red", variant="light")),
    ]) for key_id, name, prefix, scopes, created, revoked in keys]
    return _card("API keys", dmc.Stack([
        dmc.Group([dmc.TextInput(id="apikey-name", placeholder="name, e.g. newsletter tool", w=280),
                   dmc.MultiSelect(id="apikey-scopes", data=list(SCOPES), value=["reports:read"], w=360,
                                   placeholder="what the key may do"),
                   dmc.Button("Create key", id="apikey-create")], align="flex-start"),
        html.Div(id="apikey-created"),
        dmc.Table([_head("Name", "Key", "Scopes", "Created", ""), dmc.TableTbody(rows)], id="table-apikeys")
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


def _audit_log() -> Any:
    with _runtime().control.session() as db:
        entries = [(e.at, e.actor, e.action, e.target, e.detail) for e in audit.recent(db, AUDIT_ROWS)]
    rows = [dmc.TableTr([dmc.TableTd(f"{at:%Y-%m-%d %H:%M:%S}"), dmc.TableTd(actor),
                         dmc.TableTd(dmc.Badge(action, variant="light")), dmc.TableTd(target),
                         dmc.TableTd(dmc.Code(detail) if detail != "{}" else "")])
            for at, actor, action, target, detail in entries]
    return _card("Audit log", dmc.Stack([
        dmc.Text(f"The latest {AUDIT_ROWS} actions, newest first (UTC). Nobody can change or delete them.",
                 size="sm", c="dimmed"),
        dmc.Table([_head("When", "Who", "Action", "What", "Detail"), dmc.TableTbody(rows)], id="table-audit")
        if rows else dmc.Text("Nothing recorded yet.", c="dimmed"),
    ]))


def _head(*titles: str) -> Any:
    return dmc.TableThead(dmc.TableTr([dmc.TableTh(t) for t in titles]))


def _card(title: str, body: Any) -> Any:
    return dmc.Paper([dmc.Title(title, order=4, mb="sm"), body], p="lg", withBorder=True)


def register(app: Dash) -> None:
    _register_two_factor(app)

    @access.callback(app, Output("apikey-created", "children"), Input("apikey-create", "n_clicks"),
                     State("apikey-name", "value"), State("apikey-scopes", "value"), role="admin",
                     prevent_initial_call=True)
    def create_key(_: int, name: str | None, scopes: list[str] | None) -> Any:
        name = (name or "").strip()
        if not name:
            return dmc.Alert("Give the key a name first.", color="yellow")
        if not scopes:
            return dmc.Alert("Choose what the key may do (at least one scope).", color="yellow")
        user = current_user()
        with _runtime().control.session() as db:
            try:
                created, plaintext = create_api_key(db, user.id, name, scopes=scopes)
            except OdnosError as exc:
                return dmc.Alert(exc.message, color="red", title="Not created")
            audit.record(db, user.email, "api_key_created", name,
                         {"id": created.id, "prefix": created.prefix, "scopes": sorted(scopes)})
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
            audit.record(db, current_user().email, "api_key_revoked", str(ctx.triggered_id["key"]),
                         {"id": ctx.triggered_id["key"]})
            db.commit()
        return [True if item["id"] == ctx.triggered_id else no_update for item in ctx.outputs_list]


def _register_two_factor(app: Dash) -> None:
    # Everyone manages their own second factor, so these run for every role (viewers included).
    @access.callback(app, Output("totp-setup", "children"), Input("totp-start", "n_clicks"),
                     prevent_initial_call=True)
    def start(_: int) -> Any:
        user = current_user()
        return _setup_step(user.id, user.email)

    @access.callback(app, Output("totp-result", "children"), Input("totp-confirm", "n_clicks"),
                     State("totp-nonce", "data"), State("totp-code", "value"), prevent_initial_call=True)
    def confirm(_: int, nonce: str | None, code: str | None) -> Any:
        user = current_user()
        secret = two_factor.pending_secret(_runtime().keys[0], user.id, str(nonce or ""))
        with _runtime().control.session() as db:
            row = db.get(User, user.id)
            if row.totp_secret is not None:
                return dmc.Alert("Two-factor sign-in is on already.", color="yellow")
            codes = two_factor.enrol(db, row, _runtime().keys, secret, code or "")
            if codes is not None:
                audit.record(db, user.email, "two_factor_on", user.email, {"at": "settings"})
        if codes is None:
            return dmc.Alert("That code is not right; check the app's clock and try the next one.",
                             color="yellow", id="totp-wrong")
        return dmc.Alert([
            dmc.Text("Two-factor sign-in is on. Keep these recovery codes safe: each signs you in once "
                     "without the app, and they are shown only now."),
            html.Ul([html.Li(dmc.Code(c)) for c in codes], id="totp-recovery-codes"),
        ], title="Turned on", color="green")

    @access.callback(app, Output("totp-off-result", "children"), Input("totp-off", "n_clicks"),
                     State("totp-off-code", "value"), prevent_initial_call=True)
    def turn_off(_: int, code: str | None) -> Any:
        user = current_user()
        with _runtime().control.session() as db:
            row = db.get(User, user.id)
            if str(row.role) == "admin" and _runtime().settings.admin_two_factor:
                return dmc.Alert("Admins of this odnos must keep two-factor sign-in on.", color="yellow")
            if two_factor.check(db, row, _runtime().keys, code or "") is None:
                return dmc.Alert("Give a current code (or a recovery code) to turn it off.", color="yellow")
            two_factor.disable(db, row)
            audit.record(db, user.email, "two_factor_off", user.email)
        return dmc.Alert("Two-factor sign-in is off.", color="gray")
