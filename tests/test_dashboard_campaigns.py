"""The campaigns pages through the real server: people and machines apart, as the query layer counts them.

`odnos demo` gives one campaign with human and machine opens and clicks and clickers' visits; the
test adds a campaign with a saved template whose figures it knows by construction (which contacts
opened and clicked which link, which opens and clicks were machines'), a mailing rule's sends under
``r<rule id>``, and another mail tool's campaign id. The list and each campaign's page are asked for
over HTTP the way the browser's router does, and compared with ``tracker.queries.campaigns`` and
with the numbers built in; the click map is checked against the link ids the mailer gives the same
template. Unknown or hostile ids are messages. One headless Chromium test opens the list and a
campaign.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from tests.fixtures.dashboard import (
    Served,
    callback_output,
    grid_rows,
    page,
    serve_demo,
    severe,
    sign_in,
    texts,
)
from tests.fixtures.web import WebClient, component
from tracker.control.models import Campaign, CampaignStatus, Rule, RuleTrigger, Segment, Template
from tracker.crm.mailer.track import track_html
from tracker.crm.templates import save_template
from tracker.events import event_row
from tracker.queries.campaigns.campaign_followups import campaign_followups
from tracker.queries.campaigns.campaign_list import campaign_list
from tracker.queries.campaigns.campaign_report import campaign_report
from tracker.queries.campaigns.click_map import click_map
from tracker.queries.period import Period
from tracker.queries.site.custom_events import custom_events
from tracker.queries.site.goals import Goal
from tracker.runtime import Runtime
from tracker.tokens import TokenCodec

pytestmark = pytest.mark.server
SPRING = "https://shop.example.com/spring?utm_source=newsletter&amp;utm_medium=email"
SPRING_TARGET = "https://shop.example.com/spring?utm_source=newsletter&utm_medium=email"  # as browsers go
LOOKBOOK = "https://shop.example.com/blog/spring-lookbook"
HOME = "https://shop.example.com/"
TEMPLATE = f"""<!doctype html><html><body>
<a href="{HOME}"><b>Demo Shop</b></a>
<h1>Spring is here, {{{{ contact.first_name }}}}</h1>
<p><a href="{SPRING}" style="background:#3b4bd8;color:#fff">See the spring collection</a></p>
<p>Or read <a href="{LOOKBOOK}">the lookbook</a>.</p>
<p><a href="{HOME}">shop.example.com</a> · <a href="mailto:hi@example.com">write to us</a> ·
<a href="{{{{ unsubscribe_url }}}}">Unsubscribe</a></p>
</body></html>"""
OTHER_TOOL = "newsletter-7"


def _id(target: str) -> str:
    """A link's id as the mailer names it: 6 hex digits of the SHA-256 of its target."""
    return hashlib.sha256(target.encode()).hexdigest()[:6]


SPRING_ID, LOOKBOOK_ID, HOME_ID = _id(SPRING_TARGET), _id(LOOKBOOK), _id(HOME)
HOME_2 = HOME_ID + "-2"  # the second link to the same URL in the message


@dataclass(frozen=True)
class Ids:
    spring: str  # the campaign with a template
    rule: str  # "r<rule id>"
    demo: str  # the demo's campaign (no template)


def _add_mailings(runtime: Runtime, site_id: str) -> Ids:
    """The campaign, rule and other tool's sends whose numbers the tests know by construction.

    Spring news, to 40 contacts s00..s39: s00-s21 open it (s00 twice), s22-s33 only through Apple
    Mail Privacy Protection (machine opens); s00-s11 click the button, s00-s03 the lookbook too,
    s05-s06 the footer's home link (the second link to that URL); a scanner follows every link for
    s36 and s37; s01-s03 answer the survey 9, 10 and 11 (out of range: not counted).
    """
    template = save_template(runtime.control, "Spring news", "Spring is here", TEMPLATE)
    with runtime.control.session() as db:
        spring = Campaign(name="Spring news", site_id=site_id, subject="Spring is here",
                          template_id=template.id, status=CampaignStatus.sent)
        segment = Segment(name="everyone", definition={})
        db.add_all([spring, segment])
        db.flush()
        rule = Rule(name="Welcome", segment_id=segment.id, template_id=template.id, trigger=RuleTrigger.enter)
        db.add(rule)
        db.flush()
        ids = Ids(str(spring.id), f"r{rule.id}", "")
    sent = time.time() - 3 * 86400
    rows = []

    def add(name: str, n: int, at: float, campaign: str = ids.spring, props: dict | None = None,
            **fields) -> None:
        rows.append(event_row(name, sent + at, props, site_id=site_id if name == "email_sent" else "",
                              contact_id=f"s{n:02d}", campaign_id=campaign, message_id=f"{campaign}.{n}",
                              **fields))

    links = {SPRING_ID: SPRING_TARGET, LOOKBOOK_ID: LOOKBOOK, HOME_ID: HOME, HOME_2: HOME}
    for n in range(40):
        add("email_sent", n, 0)
        if n < 22:
            add("email_open", n, 600 + n)
        if n == 0:
            add("email_open", n, 7200)
        if 22 <= n < 34:
            add("email_open", n, 4, is_machine=1, machine_reason="apple_mpp")
        for link, who in ((SPRING_ID, range(12)), (LOOKBOOK_ID, range(4)), (HOME_2, (5, 6))):
            if n in who:
                add("email_click", n, 900 + n, link_id=link, target_url=links[link])
        if n in (36, 37):
            for link, target in links.items():
                add("email_click", n, 3, link_id=link, target_url=target, is_machine=1,
                    machine_reason="scanner_ua")
        if n in (1, 2, 3):
            add("survey_response", n, 3000, props={"score": str(8 + n)})
    for n in range(3):
        add("email_sent", n, 0, campaign=ids.rule)
    add("email_open", 0, 60, campaign=ids.rule)
    for n in range(2):
        add("email_sent", n, 0, campaign=OTHER_TOOL)
    runtime.store.insert("events", rows)
    demo = next(row.campaign_id for row in campaign_list(runtime.reader) if row.campaign_id not in
                (ids.spring, ids.rule, OTHER_TOOL))
    return Ids(ids.spring, ids.rule, demo)


@pytest.fixture(scope="module")
def world(clickhouse_server, tmp_path_factory) -> Iterator[Served]:
    yield from serve_demo(clickhouse_server, tmp_path_factory.mktemp("dash-campaigns"), _add_mailings)


@pytest.fixture(scope="module")
def ids(world: Served) -> Ids:
    return world.prepared


@pytest.fixture(scope="module")
def viewer(world: Served) -> WebClient:
    return world.client()


def _kpi(tree, name: str) -> str:
    found = component(tree, f"kpi-{name}")
    assert found is not None, name
    return found["children"]


def test_the_list_shows_every_campaign_rule_and_tool_as_the_query_layer_counts(
        world: Served, viewer: WebClient, ids: Ids) -> None:
    tree = page(viewer, "/campaigns")
    rows = {row["campaign_id"]: row for row in grid_rows(tree, "campaigns")}
    stats = {row.campaign_id: row for row in campaign_list(world.runtime.reader)}
    assert set(stats) == {ids.spring, ids.rule, ids.demo, OTHER_TOOL}
    with world.runtime.control.session() as db:  # rules are listed before they send (the demo's)
        rules = {f"r{rule.id}" for rule in db.scalars(select(Rule))}
    assert set(rows) == set(stats) | rules
    assert rows[ids.spring]["name"] == "Spring news" and rows[ids.demo]["name"] == "Autumn sale"
    assert rows[ids.rule]["name"] == "Welcome (rule)"
    assert rows[OTHER_TOOL]["name"] == f"{OTHER_TOOL} (other tool)"
    for campaign_id, row in rows.items():
        if campaign_id not in stats:  # a rule that has sent nothing yet: nothing to count
            assert row["sent"] == 0 and row["opened"] == 0, row
            continue
        expected = stats[campaign_id]
        for field in ("sent", "bounced", "unsubscribed", "opened", "opens", "clicked", "clicks", "open_rate",
                      "click_rate", "click_to_open", "machine_opens", "scanner_clicks"):
            assert row[field] == getattr(expected, field), (campaign_id, field)
    # built in: people and machines apart
    spring = rows[ids.spring]
    assert [spring[f] for f in ("sent", "opened", "opens", "clicked", "clicks")] == [40, 22, 23, 12, 18]
    assert (spring["machine_opens"], spring["scanner_clicks"], spring["nps"]) == (12, 8, 100)
    assert (rows[ids.rule]["sent"], rows[ids.rule]["opened"]) == (3, 1)
    demo = stats[ids.demo]
    assert demo.machine_opens > 0 and demo.scanner_clicks > 0 and demo.opened > 0  # the demo has both
    groups = {c["headerName"]: [child["field"] for child in c.get("children", [])]
              for c in component(tree, {"type": "table", "name": "campaigns", "dim": ""})["columnDefs"]}
    assert groups["Machines"] == ["machine_opens", "scanner_clicks"]
    assert not {"machine_opens", "scanner_clicks"} & set(groups["People"])
    assert _kpi(tree, "campaigns_machine_opens") == str(sum(s.machine_opens for s in stats.values()))


def test_a_campaigns_page_has_people_first_and_machines_apart(world: Served, viewer: WebClient,
                                                              ids: Ids) -> None:
    for campaign_id in (ids.spring, ids.demo):
        tree = page(viewer, "/campaigns", {"id": campaign_id})
        report = campaign_report(world.runtime.reader, campaign_id)
        s = report.stats
        assert _kpi(tree, "opened") == f"{s.opened:,}" and _kpi(tree, "clicked") == f"{s.clicked:,}"
        assert _kpi(tree, "sent") == f"{s.sent:,}" and _kpi(tree, "unsubscribed") == f"{s.unsubscribed:,}"
        assert f"{s.opens:,} opens" in component(tree, "kpi-opened-note")["children"]
        assert _kpi(tree, "machine_opens") == f"{s.machine_opens:,}"
        assert _kpi(tree, "scanner_clicks") == f"{s.scanner_clicks:,}"
        machines = grid_rows(tree, "campaign_machines")
        assert [(m["kind"], m["code"], m["events"], m["contacts"]) for m in machines] == \
            [(m.kind, m.reason, m.events, m.contacts) for m in report.machines]
    tree = page(viewer, "/campaigns", {"id": ids.spring})
    assert (_kpi(tree, "opened"), _kpi(tree, "clicked"), _kpi(tree, "click_to_open")) == ("22", "12", "54.5%")
    assert [_kpi(tree, name) for name in ("machine_opens", "scanner_clicks", "nps")] == ["12", "8", "+100"]
    assert {(m["reason"], m["events"]) for m in grid_rows(tree, "campaign_machines")} == \
        {("Apple Mail Privacy Protection", 12), ("Link scanner (known agent)", 8)}


def test_the_click_map_is_the_email_with_each_links_clicks(world: Served, viewer: WebClient,
                                                           ids: Ids) -> None:
    tree = page(viewer, "/campaigns", {"id": ids.spring})
    frame = component(tree, "campaign-email")
    assert frame is not None and frame["sandbox"] == ""  # no script, no navigation, no forms
    html = frame["srcDoc"]
    # the mailer's own numbering of the same template's links
    mailed = track_html(TEMPLATE.replace("{{ contact.first_name }}", "Ana").replace("{{ unsubscribe_url }}",
                                                                                   "http://x.invalid/u/1"),
                        codec=TokenCodec(["k" * 32]), base_url="http://x.invalid", contact_id="c",
                        message_id=f"{ids.spring}.1", unsubscribe_url="http://x.invalid/u/1",
                        add_footer=False)
    assert [link.link_id for link in mailed.links] == [HOME_ID, SPRING_ID, LOOKBOOK_ID, HOME_2]
    for link_id, label in ((SPRING_ID, "12 clicks · 12 people"), (LOOKBOOK_ID, "4 clicks · 4 people"),
                           (HOME_ID, "0 clicks · 0 people"), (HOME_2, "2 clicks · 2 people")):
        assert f'href="#odnos-link-{link_id}"' in html
        assert f'a[href="#odnos-link-{link_id}"]::after{{content:"{label}"' in html
    email, badges = html.split("<style>")
    assert email.count('href="#odnos-link-') == 4
    assert 'href="mailto:hi@example.com"' in email  # not tracked, so left as it is
    assert 'href="https://' not in email  # a click in the preview goes nowhere
    links = {row["link_id"]: row for row in grid_rows(tree, "campaign_links")}
    expected = {row.link_id: row for row in click_map(world.runtime.reader, ids.spring)}
    assert set(links) == set(expected) == {SPRING_ID, LOOKBOOK_ID, HOME_ID, HOME_2}
    for link_id, row in expected.items():
        assert (links[link_id]["clicked"], links[link_id]["clicks"], links[link_id]["scanner_clicks"]) == \
            (row.clicked, row.clicks, row.scanner_clicks)
    assert links[HOME_ID]["clicks"] == 0 and links[HOME_ID]["scanner_clicks"] == 2  # scanners apart
    # without a template (another mail tool's campaign): the table of links alone
    other = page(viewer, "/campaigns", {"id": OTHER_TOOL})
    assert component(other, "campaign-email") is None and component(other, "campaign-no-template") is not None
    assert [r["clicks"] for r in grid_rows(other, "campaign_links")] == \
        [r.clicks for r in click_map(world.runtime.reader, OTHER_TOOL)]


def test_the_visits_and_goals_after_the_clicks_are_the_query_layers(
        world: Served, viewer: WebClient, ids: Ids) -> None:
    tree = page(viewer, "/campaigns", {"id": ids.demo})
    store = world.runtime.reader
    end = datetime.now(UTC).date()
    last_30_days = Period.days(end - timedelta(days=29), end)  # no goals in the URL: the top custom events
    top = [Goal("event", r.name) for r in custom_events(store, world.site_id, last_30_days, limit=5)]
    found = campaign_followups(store, world.site_id, ids.demo, top, days=30)
    assert found.visited > 0 and found.pageviews > 0, "the demo's clickers browse the shop"
    shown = [_kpi(tree, f"followup_{name}") for name in ("clicked", "visited", "visits", "pageviews")]
    assert shown == [f"{n:,}" for n in (found.clicked, found.visited, found.visits, found.pageviews)]
    assert [(r["contacts"], r["conversions"]) for r in grid_rows(tree, "campaign_goals")] == \
        [(g.contacts, g.conversions) for g in found.goals]
    asked = page(viewer, "/campaigns", {"id": ids.demo, "goals": "page:/products/*"})
    wanted = campaign_followups(store, world.site_id, ids.demo, [Goal("page", "/products/*")], days=30)
    assert [(r["goal"], r["contacts"]) for r in grid_rows(asked, "campaign_goals")] == \
        [("Page /products/*", wanted.goals[0].contacts)] and wanted.goals[0].contacts > 0


@pytest.mark.parametrize(("query", "says"), [
    ({"id": "no-such-campaign"}, "There is no campaign 'no-such-campaign'"),
    ({"id": "1' OR '1'='1"}, "There is no campaign"),
    ({"id": "'); DROP TABLE events; --"}, "There is no campaign"),
    ({"id": "x" * 300}, "a campaign id is text of 1 to 200 characters"),
    ({"id": "1", "period": "7d"}, "unknown parameter 'period'"),
    ({"campaign": "1"}, "unknown parameter 'campaign'"),
])
def test_unknown_and_hostile_ids_are_messages(world: Served, viewer: WebClient, query: dict[str, str],
                                             says: str) -> None:
    before = world.runtime.reader.query("SELECT count() FROM events").scalar()
    problem = component(page(viewer, "/campaigns", query), "page-problem")
    assert problem is not None and says in problem["children"], problem
    assert world.runtime.reader.query("SELECT count() FROM events").scalar() == before


def test_a_bad_goal_on_a_campaigns_page_is_a_message_beside_its_numbers(
        world: Served, viewer: WebClient, ids: Ids) -> None:
    tree = page(viewer, "/campaigns", {"id": ids.demo, "goals": "visit:/x"})
    assert "unknown goal kind 'visit'" in component(tree, "campaign-followups-problem")["children"]
    assert component(tree, "kpi-opened") is not None


def test_a_rule_that_has_sent_and_a_campaign_that_has_not(world: Served, viewer: WebClient, ids: Ids) -> None:
    tree = page(viewer, "/campaigns", {"id": ids.rule})
    assert component(tree, "campaign-name")["children"] == "Welcome" and _kpi(tree, "sent") == "3"
    assert "rule" in texts(tree)
    with world.runtime.control.session() as db:
        draft = Campaign(name="Summer (draft)", subject="Soon", status=CampaignStatus.draft)
        db.add(draft)
        db.flush()
        draft_id = str(draft.id)
    tree = page(viewer, "/campaigns", {"id": draft_id})
    assert component(tree, "campaign-unsent") is not None and component(tree, "page-problem") is None
    listed = {r["campaign_id"]: r for r in grid_rows(page(viewer, "/campaigns"), "campaigns")}
    assert listed[draft_id]["sent"] == 0 and listed[draft_id]["nps"] == "—"


def test_a_template_that_no_longer_renders_leaves_the_links_table(world: Served,
                                                                  viewer: WebClient) -> None:
    broken = save_template(world.runtime.control, "Broken", "Oops", "<p>{{ contact.first_name }}</p>")
    with world.runtime.control.session() as db:
        campaign = Campaign(name="Broken", subject="Oops", template_id=broken.id, status=CampaignStatus.sent)
        db.add(campaign)
        db.flush()
        campaign_id = str(campaign.id)
        db.get(Template, broken.id).html = "<p>{{ contact.__class__ }}</p>"  # changed behind odnos's back
    world.runtime.store.insert("events", [event_row("email_sent", time.time() - 60, contact_id="b1",
                                                    campaign_id=campaign_id, message_id=f"{campaign_id}.1")])
    tree = page(viewer, "/campaigns", {"id": campaign_id})
    problem = component(tree, "campaign-email-problem")["children"]
    assert problem.startswith("The email cannot be drawn: template html:") and "not allowed" in problem
    assert component(tree, "campaign-email") is None and grid_rows(tree, "campaign_links") == []
    assert _kpi(tree, "sent") == "1"


def test_a_row_click_opens_the_campaign_and_goals_apply_keeps_the_id(
        world: Served, viewer: WebClient, ids: Ids) -> None:
    answer = viewer.callback(callback_output(viewer, {"type": "table", "name": "campaigns", "dim": ""}), [
        {"id": {"type": "table", "name": "campaigns", "dim": ""}, "property": "cellClicked",
         "value": {"value": "Spring news", "colId": "name", "rowIndex": 0, "rowId": ids.spring}}])
    assert json.loads(answer.body)["response"]["url"]["href"] == f"/campaigns?{urlencode({'id': ids.spring})}"
    answer = viewer.callback(callback_output(viewer, "campaign-goals-apply"), [
        {"id": "campaign-goals-apply", "property": "n_clicks", "value": 1}], state=[
        {"id": "campaign-goals-input", "property": "value", "value": ["event:signup", "page:/cart"]},
        {"id": "url", "property": "search", "value": f"?id={ids.spring}"}])
    assert json.loads(answer.body)["response"]["url"]["search"] == \
        "?" + urlencode({"id": ids.spring, "goals": "event:signup,page:/cart"})


@pytest.mark.browser
def test_in_chromium_the_list_opens_a_campaign_with_its_email(world: Served, ids: Ids, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    sign_in(browser, world)
    browser.get(world.server.url + "/campaigns")
    listed = "#table-campaigns .ag-center-cols-container .ag-row"
    rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, listed))
    assert len(rows) >= 4  # the demo's, Spring news, the rule, the other tool (and a draft, if made)
    names = browser.find_elements(By.CSS_SELECTOR, "#table-campaigns [col-id='name']")
    next(cell for cell in names if cell.text == "Spring news").click()
    wait.until(lambda d: d.find_elements(By.ID, "kpi-opened"))
    assert browser.current_url.endswith(f"/campaigns?id={ids.spring}")
    assert browser.find_element(By.ID, "kpi-opened").text == "22"
    assert browser.find_element(By.ID, "kpi-machine_opens").text == "12"
    frame = browser.find_element(By.ID, "campaign-email")
    assert frame.get_attribute("sandbox") == ""
    browser.switch_to.frame(frame)
    badge = browser.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0]), '::after').content",
        f'a[href="#odnos-link-{SPRING_ID}"]')
    browser.switch_to.default_content()
    assert badge == '"12 clicks · 12 people"'
    assert not severe(browser)
