"""The demo's rows are the collector's rows: made by the pipeline, at their own times, seeded for real.

Loaded into the real ClickHouse server (in-process: server mode lets several runtimes share one
process) and, through `odnos demo`, into chDB folders in child processes (chDB holds one folder per
process). Expected values are computed here from the demo's inputs (its user agents, addresses,
referrers) with ua-parser, geoip2fast and the referrer table, never read back from the demo.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fixtures.processes import odnos_env, run_odnos
from tests.test_mailer_smtp import SmtpCapture
from tracker.control.models import Campaign, Rule, RuleTrigger, SendLedger, SendStatus, Suppression
from tracker.crm.campaigns import audience_of, send_campaign
from tracker.crm.mailer.helpers import sample_context
from tracker.crm.rules.define import find_rule
from tracker.crm.segments import list_segments, segment_size, validate_definition
from tracker.crm.templates import compile_saved, list_templates
from tracker.demo import APPLE_MPP_UA, BOTS, BROWSERS, COUNTRIES, DEMO_DOMAIN, DemoResult, load_demo
from tracker.demo_crm import NEWSLETTER_NAME, RULE_NAME, SEGMENTS, newsletter_links
from tracker.enrich.device import parse_device
from tracker.enrich.geo import country_of
from tracker.enrich.referrer import SOURCES, classify_referrer
from tracker.runtime import Runtime
from tracker.settings import load_settings
from tracker.tokens import TokenCodec

NOW = 1_780_000_000.0  # a fixed end of history, so that two loads compare row for row
VISITORS = 600
DEVICE_COLUMNS = "browser, browser_version, os, os_version, device, is_bot, bot_reason"


def _runtime(data: Path, server, database: str) -> Runtime:
    settings = load_settings(environ={"ODNOS_DATA_DIR": str(data),
                                      "ODNOS_CLICKHOUSE_URL": server.url_for(database)})
    return Runtime.open(settings)


@pytest.fixture(scope="module")
def server_runtimes(clickhouse_server, tmp_path_factory) -> Iterator:
    """Makes runtimes on fresh server databases; drops them at the end of the module."""
    made: list[Runtime] = []

    def make() -> Runtime:
        runtime = _runtime(tmp_path_factory.mktemp("demo"), clickhouse_server,
                           "demo_" + uuid.uuid4().hex[:10])
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.store.command(f"DROP DATABASE IF EXISTS {runtime.store.database}")
        runtime.close()


@pytest.fixture(scope="module")
def demo(server_runtimes) -> tuple[Runtime, DemoResult]:
    runtime = server_runtimes()
    result = load_demo(runtime, visitors=VISITORS, now=NOW)
    assert result is not None
    return runtime, result


def _rows(runtime: Runtime, sql: str, **params) -> list[tuple]:
    return runtime.store.query(sql, params).rows


def _device(user_agent: str) -> tuple:
    d = parse_device(user_agent)
    return (d.browser, d.browser_version, d.os, d.os_version, d.device, int(d.is_bot), str(d.bot_reason))


def test_browser_os_device_and_bots_are_what_ua_parser_says_of_the_agents(demo) -> None:
    runtime, _ = demo
    stored = set(_rows(runtime, f"SELECT DISTINCT {DEVICE_COLUMNS} FROM events WHERE source = 'beacon'"))
    expected = {_device(agent) for agent, _ in BROWSERS} | {_device(agent) for agent, _ in BOTS}
    assert stored == expected
    mpp = set(_rows(runtime, f"SELECT DISTINCT {DEVICE_COLUMNS} FROM events "
                             "WHERE machine_reason = 'apple_mpp'"))
    assert mpp == {_device(APPLE_MPP_UA)}
    others = _rows(runtime, "SELECT count() FROM events WHERE browser = 'Other' OR os = 'Other' "
                            "OR device NOT IN ('', 'desktop', 'mobile', 'tablet', 'bot', 'other')")
    assert others == [(0,)]
    bots = dict(_rows(runtime, "SELECT bot_reason, count() FROM events WHERE is_bot = 1 "
                               "AND source = 'beacon' GROUP BY bot_reason"))
    assert set(bots) == {"crawler_list", "headless"}
    assert sum(bots.values()) == VISITORS // 12  # one page per crawler visit


def test_every_address_the_demo_gives_a_visitor_is_in_that_visitors_country() -> None:
    for code, networks, _ in COUNTRIES:
        for network in networks:
            assert {country_of(f"{network}.{host}") for host in range(1, 255)} == {code}, network


def test_stored_countries_are_those_of_the_addresses(demo) -> None:
    runtime, _ = demo
    stored = {row[0] for row in _rows(runtime, "SELECT DISTINCT country FROM events "
                                               "WHERE source = 'beacon' AND is_bot = 0")}
    assert stored == {code for code, _, _ in COUNTRIES}
    crawlers = {row[0] for row in _rows(runtime, "SELECT DISTINCT country FROM events WHERE is_bot = 1 "
                                                 "AND source = 'beacon'")}
    assert crawlers == {country_of(f"{network}.1") for _, network in BOTS}


def test_referrer_sources_and_utm_are_the_classifiers(demo) -> None:
    runtime, _ = demo
    pageviews = runtime.store.query(
        "SELECT url, hostname, referrer, referrer_domain, referrer_source, utm_source, utm_medium, "
        "utm_campaign FROM events WHERE name = 'pageview'").dicts()
    for row in pageviews:
        medium = re.search(r"utm_medium=([^&]+)", row["url"])
        expected = classify_referrer(row["referrer"], row["hostname"], [DEMO_DOMAIN],
                                     medium.group(1) if medium else "")
        assert (row["referrer_source"], row["referrer_domain"]) == (expected.source, expected.domain), row
        assert row["utm_medium"] == (medium.group(1) if medium else "")
    assert {row["referrer_source"] for row in pageviews} == set(SOURCES)
    assert {row["utm_campaign"] for row in pageviews} == {"", "autumn-sale", "brand-search"}


def test_history_is_replayed_at_its_own_times(demo) -> None:
    runtime, _ = demo
    (first, last, late, days, old), = _rows(
        runtime, "SELECT min(ts), max(ts), countIf(received_at != ts), "
                 "uniqIf(toDate(ts), name = 'pageview'), "
                 "countIf(name = 'pageview' AND ts < toDateTime(%(day_ago)s)) / countIf(name = 'pageview') "
                 "FROM events", day_ago=int(NOW - 86400))
    assert datetime.fromtimestamp(NOW - 30 * 86400 - 1, UTC).replace(tzinfo=None) <= first
    assert last <= datetime.fromtimestamp(NOW, UTC).replace(tzinfo=None)
    assert late == 0  # received when it happened: the pipeline ran at the demo's clock
    assert days >= 30
    assert old > 0.9  # not clamped to the last 24 hours


def test_identities_come_from_the_view_for_clickers_who_visited(demo) -> None:
    runtime, result = demo
    clicked = dict(_rows(runtime, "SELECT contact_id, min(ts) FROM events "
                                  "WHERE name = 'email_click' AND is_machine = 0 GROUP BY contact_id"))
    identities = _rows(runtime, "SELECT site_id, visitor_id, contact_id, method FROM identities")
    assert len(clicked) > 20
    assert sorted(row[2] for row in identities) == sorted(clicked)  # one each, none written by hand
    assert {(row[0], row[3]) for row in identities} == {(result.site_id, "email_link")}
    first_visit = dict(_rows(runtime, "SELECT visitor_id, min(ts) FROM events WHERE name = 'pageview' "
                                      "GROUP BY visitor_id"))
    for _, visitor, contact, _ in identities:
        assert first_visit[visitor] > clicked[contact]
    tied = _rows(runtime, "SELECT count(), uniq(contact_id) FROM events WHERE name = 'pageview' "
                          "AND contact_id != ''")
    assert tied == [(len(clicked), len(clicked))]  # only the landing pageview carries the hand-off


def test_campaign_rows_carry_real_message_ids_and_verdicts(demo) -> None:
    runtime, _ = demo
    campaign = _rows(runtime, "SELECT DISTINCT campaign_id FROM events WHERE name = 'email_sent'")
    assert len(campaign) == 1
    campaign_id = campaign[0][0]
    messages = dict(_rows(runtime, "SELECT message_id, any(contact_id) FROM events "
                                   "WHERE name = 'email_sent' GROUP BY message_id"))
    assert sorted(messages) == sorted(f"{campaign_id}.{n}" for n in range(1, 601))
    strays = _rows(runtime, "SELECT count() FROM events WHERE name IN ('email_open', 'email_click') "
                            "AND (campaign_id != %(campaign)s OR message_id NOT IN "
                            "(SELECT message_id FROM events WHERE name = 'email_sent'))",
                   campaign=campaign_id)
    assert strays == [(0,)]
    verdicts = dict(_rows(runtime, "SELECT concat(name, ':', machine_reason), count() FROM events "
                                   "WHERE name IN ('email_open', 'email_click') "
                                   "GROUP BY name, machine_reason"))
    assert set(verdicts) == {"email_open:apple_mpp", "email_open:", "email_click:head_request",
                             "email_click:too_fast", "email_click:"}
    assert 0.25 < verdicts["email_open:apple_mpp"] / 600 < 0.41


def test_unsubscribes_are_events_suppressions_and_contact_versions(demo) -> None:
    runtime, _ = demo
    events = {row[0] for row in _rows(runtime, "SELECT contact_id FROM events WHERE name = 'unsubscribe'")}
    latest = {row[0] for row in _rows(runtime, "SELECT contact_id FROM contacts FINAL "
                                               "WHERE status = 'unsubscribed'")}
    with runtime.control.session() as db:
        suppressed = set(db.scalars(select(Suppression.contact_id)))
    assert events and events == latest == suppressed
    assert _rows(runtime, "SELECT count() FROM contacts FINAL") == [(600,)]


def _all_rows(runtime: Runtime) -> list[dict]:
    rows = runtime.store.query("SELECT * FROM events ORDER BY event_id").dicts()
    for row in rows:
        del row["site_id"]  # the site id is the control plane's own random id
    return rows


def test_the_same_seed_gives_the_same_rows_and_another_seed_other_ids(demo, server_runtimes) -> None:
    runtime, _ = demo
    again = server_runtimes()
    assert load_demo(again, visitors=VISITORS, now=NOW) is not None
    assert _all_rows(again) == _all_rows(runtime)
    other = server_runtimes()
    assert load_demo(other, visitors=VISITORS, now=NOW, seed=8) is not None
    ids = {row[0] for row in _rows(runtime, "SELECT toString(event_id) FROM events")}
    other_ids = {row[0] for row in _rows(other, "SELECT toString(event_id) FROM events")}
    assert ids.isdisjoint(other_ids)


def test_odnos_demo_in_two_fresh_folders_gives_the_same_event_ids(tmp_path: Path) -> None:
    listings = []
    for folder in ("a", "b"):
        env = odnos_env(tmp_path / folder)
        loaded = run_odnos("demo", "--visitors", "200", env=env)
        assert loaded.returncode == 0, loaded.stderr
        ids = run_odnos("sql", "SELECT name, toString(event_id) FROM events ORDER BY event_id", env=env)
        assert ids.returncode == 0, ids.stderr
        listings.append(ids.stdout.splitlines())
    assert listings[0] == listings[1]
    assert len(listings[0]) > 1000


def test_odnos_demo_refuses_nonsense_counts(tmp_path: Path) -> None:
    refused = run_odnos("demo", "--visitors", "0", env=odnos_env(tmp_path))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "odnos: error: --visitors and --days must be at least 1 and --events at least 0 (for example: "
        "odnos demo --visitors 300 --days 7 --events 100000)"]


def test_the_crm_templates_compile_and_use_the_helpers(demo) -> None:
    runtime, _ = demo
    templates = {template.name: template for template in list_templates(runtime.control)}
    assert set(templates) == {"Welcome", "Win-back", NEWSLETTER_NAME}
    sample = sample_context(TokenCodec(["demo test"]), "https://odnos.test")
    rendered = {name: compile_saved(template).render(sample) for name, template in templates.items()}
    assert "recommended(3" in templates["Win-back"].html
    assert rendered["Win-back"].html.count("Sample Item") == 3  # one row per recommendation
    assert "How likely are you to recommend us?" in rendered[NEWSLETTER_NAME].html
    assert rendered[NEWSLETTER_NAME].html.count("https://odnos.test/r/") == 11  # answers 0 to 10
    assert all("https://odnos.test/u/sample" in r.html for r in rendered.values())  # every mail unsubscribes


def _attributed(runtime: Runtime, name: str, since: float = 0) -> list[tuple[str, str]]:
    """(contact, pathname) of each person's ``name`` event since ``since``: the event's own contact, else
    the newest contact its visitor was linked to, computed here from the identities rows."""
    newest: dict[tuple[str, str], tuple] = {}
    for site, visitor, contact, ts in _rows(runtime, "SELECT site_id, visitor_id, contact_id, ts "
                                                     "FROM identities"):
        if (site, visitor) not in newest or ts > newest[(site, visitor)][0]:
            newest[(site, visitor)] = (ts, contact)
    found = []
    for contact, site, visitor, path in _rows(
            runtime, "SELECT contact_id, site_id, visitor_id, pathname FROM events WHERE name = %(name)s "
                     "AND is_bot = 0 AND is_machine = 0 AND ts >= toDateTime(%(since)s)",
            name=name, since=int(since)):
        contact = contact or newest.get((site, visitor), (None, ""))[1]
        if contact:
            found.append((contact, path))
    return found


def _opened_not_clicked(runtime: Runtime) -> set[str]:
    """Contacts with a person's open and no person's click, revisions applied here from their events."""
    revisions = _rows(runtime, "SELECT message_id, contact_id, toUInt64(ts) * 1000 + ts_ms, "
                               "toUInt64(props.value[indexOf(props.key, 'window_ms')]) FROM events "
                               "WHERE name = 'machine_revision'")
    people: dict[str, set[str]] = {"email_open": set(), "email_click": set()}
    for name, message, contact, at in _rows(
            runtime, "SELECT name, message_id, contact_id, toUInt64(ts) * 1000 + ts_ms FROM events "
                     "WHERE name IN ('email_open', 'email_click') AND is_machine = 0 AND is_bot = 0"):
        if not any((m, c) == (message, contact) and abs(at - when) <= window
                   for m, c, when, window in revisions):
            people[name].add(contact)
    return people["email_open"] - people["email_click"]


def test_the_example_segments_are_stored_and_sized_as_their_definitions_say(demo) -> None:
    runtime, _ = demo
    now = datetime.fromtimestamp(NOW, UTC)
    with runtime.control.sessions() as db:
        stored = {segment.name: segment.definition for segment in list_segments(db)}
    examples = Path(__file__).parent.parent / "schemas" / "examples" / "segments"
    assert stored == {name: validate_definition(json.loads((examples / f"{stem}.json").read_text()))
                      for stem, name in SEGMENTS.items()}
    sizes = {stem: segment_size(runtime.store, stored[name], now=now) for stem, name in SEGMENTS.items()}
    created = [row[0] for row in _rows(runtime, "SELECT toUnixTimestamp(created_at) FROM contacts FINAL")]
    week = NOW - 7 * 86400
    pricing: dict[str, int] = {}
    for contact, path in _attributed(runtime, "pageview", week):
        pricing[contact] = pricing.get(contact, 0) + (path == "/pricing")
    signed_up = {contact for contact, _ in _attributed(runtime, "signup")}
    assert _attributed(runtime, "purchase") == []  # the demo shop sells nothing yet: nobody to win back
    expected = {"new_this_week": sum(ts >= week for ts in created),
                "opened_not_clicked": len(_opened_not_clicked(runtime)),
                "pricing_no_signup": sum(n >= 3 and c not in signed_up for c, n in pricing.items()),
                "win_back": 0}
    assert sizes == expected
    assert sizes["opened_not_clicked"] > 50


def test_the_win_back_rule_is_there_and_disabled(demo) -> None:
    runtime, _ = demo
    with runtime.control.sessions() as db:
        rule = find_rule(db, RULE_NAME)
        names = {segment.id: segment.name for segment in list_segments(db)}
        assert db.query(Rule).count() == 1
    templates = {template.id: template.name for template in list_templates(runtime.control)}
    assert (rule.enabled, rule.trigger) == (False, RuleTrigger.enter)
    assert (names[rule.segment_id], templates[rule.template_id]) == (SEGMENTS["win_back"], "Win-back")


def test_the_campaign_is_the_newsletter_and_its_clicks_are_on_the_newsletters_links(demo) -> None:
    runtime, _ = demo
    with runtime.control.sessions() as db:
        campaign = db.scalars(select(Campaign)).one()
    newsletter = next(t for t in list_templates(runtime.control) if t.name == NEWSLETTER_NAME)
    assert (campaign.template_id, campaign.subject) == (newsletter.id, newsletter.subject)
    links = newsletter_links(runtime, newsletter.id)
    assert len(links) == 4  # the logo, two products and the lookbook; survey and unsubscribe are odnos's
    clicked = dict(_rows(runtime, "SELECT link_id, any(target_url) FROM events WHERE name = 'email_click' "
                                  "AND is_machine = 0 GROUP BY link_id"))
    assert clicked == links  # people clicked every link of the email, and only those


def test_sending_the_demo_campaign_again_mails_nobody(demo) -> None:
    """The demo leaves the campaign's send ledger as the mailer does: every contact it mailed has a
    row, so a new send of the same campaign (here to a segment of those contacts) mails nobody."""
    runtime, _ = demo
    audience = audience_of(runtime, segment=SEGMENTS["opened_not_clicked"])
    members = segment_size(runtime.store, audience.definition)
    with runtime.control.sessions() as db:
        campaign = db.scalars(select(Campaign)).one()
        rows = db.scalar(select(func.count()).select_from(SendLedger).where(
            SendLedger.campaign_id == campaign.id, SendLedger.status == SendStatus.sent))
    mailed = _rows(runtime, "SELECT uniqExact(contact_id) FROM events WHERE name = 'email_sent'")[0][0]
    assert members > 50 and rows == mailed
    with SmtpCapture() as smtp:
        settings = load_settings(environ={**runtime.settings.as_env(), "ODNOS_SMTP_URL": smtp.url,
                                          "ODNOS_MAIL_FROM": "news@example.com"})
        report = send_campaign(dataclasses.replace(runtime, settings=settings), NEWSLETTER_NAME, audience,
                               name=campaign.name)
    assert (report.campaign_id, report.sent, report.already) == (campaign.id, 0, members)
    assert smtp.messages == []
