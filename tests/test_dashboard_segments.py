"""The segments page through the real dashboard server: live sizes, the builder, saving, loading, and one
run in headless Chromium.

The builder's fields are sent as the browser sends them (ids ``{"type": "segb-s" | "segb-v", "path",
"field"}``, as segment_builder documents); every size the page shows is compared with
``segment_size`` of the same definition written out here by hand, on the demo in the real
ClickHouse server.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dashboard.pages import segment_builder
from tests.fixtures.web import component
from tests.test_dashboard_contacts import PASSWORD, World, crm_world, everything, grid_rows, text_of, value
from tracker.crm.segments import (
    SegmentDefinitionError,
    add_segment,
    get_segment,
    segment_members,
    segment_size,
    validate_definition,
)

pytestmark = pytest.mark.server

__all__ = ["crm_world"]  # a fixture: the module's server (test_dashboard_contacts.py)

STRUCTURE = {"type": "segb-s", "path": ["ALL"], "field": ["ALL"]}
PRICING = {"all": [{"type": "visited", "path": "/pricing", "days": 30},
                   {"not": {"type": "event", "name": "signup"}}]}
DEEP = {"any": [{"all": [{"any": [{"type": "tag", "tag": "vip"},
                                  {"type": "attribute", "name": "plan", "op": "equals",
                                                                   "value": "pro"}]}]},
                {"type": "consent", "status": "unsubscribed"}]}


@pytest.fixture(scope="module")
def world(crm_world: World) -> World:
    with crm_world.runtime.control.session() as session:
        add_segment(session, "pricing, no signup", PRICING)
        add_segment(session, "deep", DEEP)
    return crm_world


def s(path: str, field: str, given: Any) -> dict[str, Any]:
    return value({"type": "segb-s", "path": path, "field": field}, "value", given)


def v(path: str, field: str, given: Any) -> dict[str, Any]:
    return value({"type": "segb-v", "path": path, "field": field}, "value", given)


def split(*fields: dict[str, Any]) -> tuple[list, list]:
    """The form's fields as the browser sends them: the ``segb-s`` ones, then the ``segb-v`` ones."""
    return ([f for f in fields if f["id"]["type"] == "segb-s"],
            [f for f in fields if f["id"]["type"] == "segb-v"])


# The form for: plan is pro, AND (tag vip OR visited /products/* at least twice in 30 days), AND NOT
# clicked the last campaign. ``FORM_DEFINITION`` is the same, written as the schema spells it.
FORM = split(
    s("root", "op", "all"),
    s("0", "not", "is"), s("0", "kind", "attribute"), v("0", "name", "plan"), s("0", "op", "equals"),
    v("0", "value", "pro"),
    s("1", "not", "is"), v("1", "group", "any"),
    s("1.0", "not", "is"), s("1.0", "kind", "tag"), v("1.0", "tag", "vip"),
    s("1.1", "not", "is"), s("1.1", "kind", "visited"), v("1.1", "path", "/products/*"),
    v("1.1", "count_op", "at_least"), v("1.1", "count", 2), v("1.1", "days", 30),
    s("2", "not", "not"), s("2", "kind", "clicked"), v("2", "campaign", segment_builder.LAST_CAMPAIGN),
    v("2", "link", ""), v("2", "url", ""), v("2", "count_op", "at_least"), v("2", "count", 1),
    v("2", "days", ""),
)
FORM_DEFINITION = {"all": [
    {"type": "attribute", "name": "plan", "op": "equals", "value": "pro"},
    {"any": [{"type": "tag", "tag": "vip"},
             {"type": "visited", "path_pattern": "/products/*", "at_least": 2, "days": 30}]},
    {"not": {"type": "clicked", "last_campaign": True}},
]}


def _live(client, structure: list, values: list, tab: str = "builder", text: str = "") -> Any:
    answer = client.call(STRUCTURE, "value", [structure, values, value("segments-draft", "data", None),
                                              value("segments-tabs", "value", tab),
                                              value("segments-json", "value", text)],
                         changed=json.dumps(STRUCTURE, sort_keys=True, separators=(",", ":")) + ".value",
                         output="segments-live")
    assert not isinstance(answer, int), answer
    return answer["segments-live"]["children"]


def test_the_builders_live_size_is_segment_size_of_the_same_definition(world: World) -> None:
    client = world.client("viewer")
    shown = _live(client, *FORM)
    expected = segment_size(world.runtime.store, FORM_DEFINITION)
    plan_only = segment_size(world.runtime.store, FORM_DEFINITION["all"][0])
    assert 0 < expected < plan_only, "the groups and the negation change nothing: the case proves little"
    assert component(shown, "segments-size")["children"] == f"{expected:,}"
    sample = [unquote(p["href"].split("email=", 1)[1])
              for p in everything(shown, lambda p: str(p.get("id", "")).startswith("segments-member-"))]
    assert 0 < len(sample) <= 10
    assert set(sample) <= {c.email for c in _members(world, FORM_DEFINITION)}


def _members(world: World, definition: dict) -> list:
    return segment_members(world.runtime.store, definition, limit=10_000)


def test_the_json_tab_counts_what_the_builder_cannot_show(world: World) -> None:
    client = world.client("viewer")
    shown = _live(client, [], [], tab="json", text=json.dumps(DEEP))
    assert component(shown, "segments-size")["children"] == f"{segment_size(world.runtime.store, DEEP):,}"
    broken = _live(client, [], [], tab="json", text='{"all": [')
    assert "the JSON is not valid: line 1" in text_of(component(broken, "segments-error"))


@pytest.mark.parametrize(("form", "incomplete"), [
    (split(s("root", "op", "all"), s("0", "not", "is"), s("0", "kind", "attribute"), v("0", "name", "plan"),
           s("0", "op", "equals"), v("0", "value", "")),
     {"all": [{"type": "attribute", "name": "plan", "op": "equals"}]}),
    (split(s("root", "op", "all"), s("0", "not", "is"), s("0", "kind", "visited"), v("0", "path", "/pricing"),
           v("0", "count_op", "at_most"), v("0", "count", ""), v("0", "days", 7)),
     {"all": [{"type": "visited", "path": "/pricing", "at_most": None, "days": 7}]}),
    (split(s("root", "op", "any"), s("0", "not", "is"), s("0", "kind", "created"), s("0", "mode", "after"),
           v("0", "date", "2026-02-30")),
     {"any": [{"type": "created", "after": "2026-02-30"}]}),
])
def test_an_incomplete_draft_shows_the_schemas_message(world: World, form: tuple, incomplete: dict) -> None:
    structure, values = form
    with pytest.raises(SegmentDefinitionError) as expected:
        validate_definition(incomplete)
    shown = _live(world.client("viewer"), structure, values)
    assert expected.value.message in text_of(component(shown, "segments-error"))
    assert component(shown, "segments-size") is None


def _save(client, name: str, editing: str | None = None, structure: list | None = None,
          values: list | None = None,
          tab: str = "builder", text: str = "") -> Any:
    return client.call("segments-save", "n_clicks", [value("segments-save", "n_clicks", 1)], state=[
        value("segments-name", "value", name), value("segments-editing", "data", editing),
        value("segments-tabs", "value", tab), structure if structure is not None else FORM[0],
        values if values is not None else FORM[1], value("segments-json", "value", text)])


def test_saving_works_for_a_marketer_and_is_refused_to_a_viewer(world: World) -> None:
    assert _save(world.client("viewer"), "pro buyers") == 403
    with world.runtime.control.sessions() as session, pytest.raises(Exception, match="no segment"):
        get_segment(session, "pro buyers")
    marketer = world.client("marketer")
    answer = _save(marketer, "pro buyers")
    with world.runtime.control.sessions() as session:
        saved = get_segment(session, "pro buyers")
    assert answer["url"]["search"] == f"?segment={saved.id}&saved=1"
    assert saved.definition == FORM_DEFINITION
    again = _save(marketer, "pro buyers")  # not loaded for editing: a second segment of that name is refused
    assert "exists already" in text_of(component(again["segments-save-result"]["children"],
                                                 "segments-save-error"))
    replaced = _save(marketer, "pro buyers", editing="pro buyers", tab="json", text=json.dumps(DEEP))
    assert replaced["url"]["search"] == f"?segment={saved.id}&saved=1"
    with world.runtime.control.sessions() as session:
        assert get_segment(session, "pro buyers").definition == DEEP


def test_the_list_shows_every_segments_live_size(world: World) -> None:
    page = world.client("viewer").page("/segments")
    rows = grid_rows(page, {"type": "table", "name": "segments", "dim": ""})
    with world.runtime.control.sessions() as session:
        for row in rows:
            assert row["members"] == segment_size(world.runtime.store,
                                                  get_segment(session, row["name"]).definition)
    assert {"pricing, no signup", "deep"} <= {r["name"] for r in rows}
    assert next(r for r in rows if r["name"] == "pricing, no signup")["definition"] == (
        "visited /pricing in 30 days AND NOT did event signup")


def test_a_saved_segment_loads_into_the_builder_or_the_json_tab(world: World) -> None:
    client = world.client("viewer")
    with world.runtime.control.sessions() as session:
        pricing, deep = get_segment(session, "pricing, no signup").id, get_segment(session, "deep").id
    page = client.page("/segments", f"?segment={pricing}")
    fields = {(p["id"]["path"], p["id"]["field"]): p.get("value")
              for p in everything(page, lambda p: isinstance(p.get("id"), dict) and
                                  p["id"].get("type") in ("segb-s", "segb-v"))}
    assert fields[("0", "kind")] == "visited" and fields[("0", "path")] == "/pricing"
    assert fields[("0", "days")] == 30 and fields[("1", "kind")] == "event" and fields[("1", "not")] == "not"
    assert component(page, "segments-name")["value"] == "pricing, no signup"
    assert component(page, "segments-tabs")["value"] == "builder"
    deep_page = client.page("/segments", f"?segment={deep}")
    assert component(deep_page, "segments-tabs")["value"] == "json"
    assert json.loads(component(deep_page, "segments-json")["value"]) == DEEP
    assert "no segment 'nothing'" in component(client.page("/segments", "?segment=nothing"),
                                               "page-problem")["children"]


def test_adding_a_group_and_changing_a_kind_redraw_the_form(world: World) -> None:
    client = world.client("viewer")
    start, values = split(s("root", "op", "all"), s("0", "not", "is"), s("0", "kind", "attribute"),
                          v("0", "name", "plan"), s("0", "op", "equals"), v("0", "value", "pro"))
    common = [[], value("segments-add-condition", "n_clicks", None),
              value("segments-add-group", "n_clicks", 1),
              [], [], value("segments-json-apply", "n_clicks", None)]
    state = [values, value("segments-draft", "data", None), value("segments-json", "value", ""),
             value("segments-choices", "data", {"attributes": [], "tags": [], "events": [], "campaigns": []})]
    added = client.call(STRUCTURE, "value", [start, *common[1:]], state=state,
                        changed="segments-add-group.n_clicks",
                        output="segments-builder")
    model = added["segments-draft"]["data"]
    assert [("group" in item) for item in model["items"]] == [False, True]
    assert model["items"][0]["fields"]["name"] == "plan"  # what was typed stays
    kinds = [s("root", "op", "all"), s("0", "not", "is"), s("0", "kind", "tag")]
    changed = client.call(STRUCTURE, "value",
                          [kinds, common[1], value("segments-add-group", "n_clicks", None),
                                               *common[3:]], state=state, output="segments-builder",
                          changed=json.dumps({"field": "kind", "path": "0", "type": "segb-s"}, sort_keys=True,
                                             separators=(",", ":")) + ".value")
    drawn = changed["segments-builder"]["children"]
    assert component(drawn, {"type": "segb-v", "path": "0", "field": "tag"}) is not None
    assert component(drawn, {"type": "segb-v", "path": "0", "field": "value"}) is None


@pytest.mark.parametrize("definition", [
    PRICING, FORM_DEFINITION,
    {"type": "created", "within_days": 7},
    {"any": [{"not": {"type": "consent", "status": ["bounced", "complained"]}},
             {"type": "event", "name": "signup", "property": {"name": "plan", "op": "in", "values": ["pro"]},
              "at_most": 3, "days": 14}]},
    {"all": [{"type": "purchased", "item": "red-hat", "min_value": 10.5},
             {"type": "last_seen", "more_than_days": 60}]},
])
def test_definitions_the_form_shows_come_back_the_same(definition: dict) -> None:
    model = segment_builder.model_of(definition)
    assert model is not None
    again = segment_builder.definition_of(model)
    top = definition if set(definition) in ({"all"}, {"any"}) else {"all": [definition]}
    assert again == top


@pytest.mark.parametrize("definition", [DEEP, {"all": [{"type": "visited", "path": "/", "site": "s_x"}]},
                                        {"all": [{"type": "visited", "path": "/", "at_least": 2,
                                                  "at_most": 5}]}])
def test_definitions_the_form_cannot_show_go_to_the_json_tab(definition: dict) -> None:
    assert segment_builder.model_of(validate_definition(definition)) is None


@pytest.mark.browser
def test_building_a_segment_in_chromium_shows_its_live_size(world: World, browser) -> None:
    base = world.server.url
    browser.get(base + "/login")
    browser.find_element(By.ID, "email").send_keys("marketer@example.com")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "whoami"))
    browser.get(base + "/segments")
    wait = WebDriverWait(browser, 20)

    def field(name: str):
        return browser.find_element(By.CSS_SELECTOR, f'[id*=\'"field":"{name}"\'][id*=\'"path":"0"\']')

    wait.until(lambda d: d.find_elements(By.ID, "segments-error"))  # the empty row: the schema's message
    field("name").send_keys("city")
    field("value").send_keys("Berlin")
    expected = segment_size(world.runtime.store,
                            {"all": [{"type": "attribute", "name": "city", "op": "equals",
                                                          "value": "Berlin"}]})
    assert expected > 0
    wait.until(lambda d: d.find_elements(By.ID, "segments-size")
               and d.find_element(By.ID, "segments-size").text == f"{expected:,}")
    time.sleep(0.3)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
