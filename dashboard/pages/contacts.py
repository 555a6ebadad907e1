"""Contacts: find people by address, name, attribute or tag, and open one's profile.

The search box matches part of an email, a name, any attribute value or tag (``plan:pro`` looks in
one attribute); a tag and a consent state narrow it. Results are a page of 50 in a table with the
total; a click on a row opens the profile, ``/contacts?email=...`` (``contact.py``), so the
navigation keeps "Contacts" lit. The URL's ``q``, ``tag``, ``consent`` and ``page`` fill the
controls, so a search can be linked to (the profile's way back does).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import dash_mantine_components as dmc
from dash import Dash, Input, Output, State, ctx, no_update

from dashboard import access, components
from dashboard.data import reader
from dashboard.format import number
from dashboard.pages import contact
from tracker.crm.contacts import STATUSES
from tracker.crm.model import Contact
from tracker.crm.segments import segment_size
from tracker.errors import OdnosError
from tracker.queries.contacts.contact_vocabulary import contact_vocabulary
from tracker.queries.contacts.search_contacts import ContactPage, search_contacts

PATH = "/contacts"
TITLE = "Contacts"
ROLE = "viewer"
PAGE_SIZE = 50
GRID = {"type": "table", "name": "contacts", "dim": ""}  # the grid ``components.table`` makes
COLUMNS = [("email", "Email"), ("name", "Name"), ("consent", "Consent"), ("tags", "Tags"),
           ("attributes", "Attributes"), ("created", "Created")]
WIDTHS = {"email": 3, "name": 2, "consent": 1.5, "tags": 1.5, "attributes": 3, "created": 1.5}
# The consent column in the state's colour (the classes are in assets/odnos.css).
CONSENT_CELLS = {f"crm-consent-{state}": f"params.value === '{state}'" for state in STATUSES}
_OWN = {"q", "tag", "consent", "page", "erased"}


def layout(query: dict[str, str]) -> Any:
    if "email" in query:
        return contact.layout(query)
    try:
        unknown = sorted(set(query) - _OWN)
        if unknown:
            raise OdnosError(f"unknown parameter {unknown[0][:40]!r}; search with ?q=TEXT&tag=TAG"
                             "&consent=STATE, or open a contact with ?email=ADDRESS", code="bad_parameter")
        text, tag, consent = query.get("q", ""), query.get("tag", ""), query.get("consent", "")
        page = _page_number(query.get("page", "1"))
        store = reader()
        found = _search(text, tag, consent, page)
        vocabulary = contact_vocabulary(store)
        totals = {state: search_contacts(store, consent=state, limit=1).total for state in STATUSES}
        new_this_week = segment_size(store, {"type": "created", "within_days": 7})
    except OdnosError as exc:
        return components.problem(exc)
    everyone = sum(totals.values())
    left = everyone - totals["subscribed"]
    cards = [
        components.stat_card("contacts_total", "Contacts", number(everyone), "with an email address"),
        components.stat_card("contacts_subscribed", "Subscribed", number(totals["subscribed"]),
                             f"{_share(totals['subscribed'], everyone)} may be mailed"),
        components.stat_card("contacts_unsubscribed", "Not mailable", number(left),
                             f"{totals['unsubscribed']:,} unsubscribed · {totals['bounced']:,} bounced · "
                             f"{totals['complained']:,} complained"),
        components.stat_card("contacts_new", "New this week", number(new_this_week),
                             "created in the last 7 days"),
    ]
    tags = [{"value": t, "label": f"{t} ({n:,})"} for t, n in vocabulary.tags]
    if tag and tag not in {t for t, _ in vocabulary.tags}:
        tags.append({"value": tag, "label": tag})
    controls = dmc.Group([
        dmc.TextInput(id="contacts-search", value=text, debounce=350, w=380, leftSection="⌕",
                      placeholder="Search email, name, attribute, tag… or plan:pro"),
        dmc.Select(id="contacts-tag", data=tags, value=tag or None, placeholder="Any tag", clearable=True,
                   searchable=True, w=200, comboboxProps={"withinPortal": True}),
        dmc.Select(id="contacts-consent", data=[{"value": s, "label": s.title()} for s in STATUSES],
                   value=consent or None, placeholder="Any consent", clearable=True, w=170,
                   comboboxProps={"withinPortal": True}),
    ], gap="sm")
    notice = [dmc.Alert("The contact was erased: every event tied to the address is gone, and only a keyed "
                        "hash stays so that it is never imported or mailed again.", title="Erased",
                        color="green", variant="light", id="contacts-erased", withCloseButton=True)
              ] if query.get("erased") else []
    return dmc.Stack([
        dmc.Title("Contacts", order=2),
        *notice,
        dmc.SimpleGrid(cards, cols={"base": 2, "sm": 4}, spacing="sm"),
        dmc.Paper(dmc.Stack([
            dmc.Group([controls, dmc.Text(_count(found, text or tag or consent), id="contacts-count",
                                          size="sm", c="dimmed")], justify="space-between"),
            dmc.Box(_table(found.contacts), id="contacts-results"),
            dmc.Group([dmc.Text("click a row to open the profile", size="xs", c="dimmed"),
                       dmc.Pagination(id="contacts-page", total=_pages(found.total), value=page, size="sm",
                                      siblings=1, withEdges=True)], justify="space-between"),
        ], gap="sm"), p="md", withBorder=True, className="crm-rows"),
    ], gap="md")


def _page_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise OdnosError(f"page {text[:20]!r} is not a page number (1, 2, ...)", code="bad_parameter")
    return int(text)


def _search(text: str, tag: str, consent: str, page: int) -> ContactPage:
    return search_contacts(reader(), text, tag=tag, consent=consent, offset=(page - 1) * PAGE_SIZE,
                           limit=PAGE_SIZE)


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "0%"


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def _count(found: ContactPage, filtered: Any) -> str:
    noun = "contact" if found.total == 1 else "contacts"
    return f"{found.total:,} {noun} match" if filtered else f"{found.total:,} {noun}"


def name_of(person: Contact) -> str:
    """'Ana Smith', or '' when the contact has no name."""
    return " ".join(part for part in (person.first_name, person.last_name) if part)


def _table(contacts: list[Contact]) -> Any:
    if not contacts:
        return dmc.Text("No contact matches. Try part of an address or a name, or clear the filters.",
                        c="dimmed", id="contacts-none", py="lg", ta="center")
    rows = [{"email": c.email, "name": name_of(c) or "—", "consent": c.status,
             "tags": ", ".join(c.tags) or "—",
             "attributes": " · ".join(f"{k}: {v}" for k, v in sorted(c.attrs.items())) or "—",
             "created": f"{c.created_at:%Y-%m-%d}" if c.created_at else "—"} for c in contacts]
    return components.record_table("contacts", rows, COLUMNS, clickable=True, row_id="email", widths=WIDTHS,
                                   classes=CONSENT_CELLS, height=min(620, 60 + 34 * len(rows)))


def register(app: Dash) -> None:
    @access.callback(app, Output("contacts-results", "children"), Output("contacts-count", "children"),
                     Output("contacts-page", "total"), Output("contacts-page", "value"),
                     Input("contacts-search", "value"), Input("contacts-tag", "value"),
                     Input("contacts-consent", "value"), Input("contacts-page", "value"),
                     prevent_initial_call=True)
    def search(text: str | None, tag: str | None, consent: str | None, page: int | None) -> Any:
        page = page if ctx.triggered_id == "contacts-page" and page else 1
        try:
            found = _search(text or "", tag or "", consent or "", page)
        except OdnosError as exc:
            return components.problem(exc), "", 1, 1
        return _table(found.contacts), _count(found, text or tag or consent), _pages(found.total), page

    @access.callback(app, Output("url", "href", allow_duplicate=True), Input(GRID, "cellClicked"),
                     State("contacts-search", "value"), State("contacts-tag", "value"),
                     State("contacts-consent", "value"), State("contacts-page", "value"),
                     prevent_initial_call=True)
    def open_contact(cell: dict | None, text: str | None, tag: str | None, consent: str | None,
                     page: int | None) -> Any:
        email = (cell or {}).get("rowId")
        if not isinstance(email, str) or not email:
            return no_update
        back = {k: v for k, v in (("q", text), ("tag", tag), ("consent", consent)) if v}
        if page and page > 1:
            back["page"] = str(page)
        return f"{PATH}?{urlencode({'email': email, **({'back': urlencode(back)} if back else {})})}"

    contact.register(app)
