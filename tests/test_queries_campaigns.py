"""Campaign questions on chDB and the ClickHouse server, against numbers computed here in Python.

The rows are a campaign sent to 80 contacts, built with ``event_row``: bounces, Apple Mail Privacy
Protection opens and crawler pixel loads (machines), human opens, link-scanner clicks and human
clicks on three links (some without an open: images off), unsubscribes, survey answers (a changed
answer, a malformed score, a machine's answer), and the clickers' visits to the site tied to them
through the tracked link's hand-off (``identities``), inside and outside the follow-up window; a
second campaign and a second site stay out. The reference below counts people and machines from
those rows by the definitions in ``tracker.queries.campaigns``, without the code under test, and
every question is asked through the rollup and with ``raw=True``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime

import pytest

from tracker.errors import OdnosError
from tracker.events import event_row
from tracker.queries.campaigns.campaign_followups import campaign_followups
from tracker.queries.campaigns.campaign_list import campaign_list
from tracker.queries.campaigns.campaign_report import campaign_report
from tracker.queries.campaigns.click_map import click_map
from tracker.queries.period import Period
from tracker.queries.site.goals import Goal
from tracker.store.migrate import migrate

SITE = "shop"
CAMPAIGN, OTHER = "101", "202"
SENT_AT = datetime(2026, 4, 6, 9, 0, tzinfo=UTC).timestamp()
DAY = 86400
LINKS = {
    "1": "https://shop.example/shoes",
    "2": "https://shop.example/hat",
    "3": "https://shop.example/sale?x=1",
}
HOSTILE = ["it's", "'); DROP TABLE events; --", "back\\slash", "nul\x00byte", "%", "%(campaign_id)s"]


def mail(
    name: str, ts: float, contact: str, campaign: str = CAMPAIGN, props: dict | None = None, **fields
) -> dict:
    return event_row(
        name,
        ts,
        props,
        contact_id=contact,
        campaign_id=campaign,
        message_id=f"{campaign}.{contact}",
        source="test",
        **fields,
    )


def make_rows(seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for n in range(80):
        contact = f"c{n:02d}"
        sent = SENT_AT + n
        rows.append(mail("email_sent", sent, contact))
        if n % 20 == 7:
            rows.append(mail("email_bounce", sent + 30, contact))
            continue
        if rng.random() < 0.35:
            rows.append(
                mail(
                    "email_open",
                    sent + rng.uniform(2, 30),
                    contact,
                    is_machine=1,
                    machine_reason="apple_mpp",
                    device="other",
                )
            )
        if rng.random() < 0.06:
            rows.append(
                mail("email_open", sent + rng.uniform(60, 600), contact, is_bot=1, bot_reason="crawler_list")
            )
        opened = rng.random() < 0.45
        first_open = sent + rng.uniform(600, 3 * DAY)
        for k in range(rng.randint(1, 3) if opened else 0):
            rows.append(mail("email_open", first_open + k * 3600, contact, device="mobile"))
        if rng.random() < 0.12:
            for link, target in LINKS.items():
                rows.append(
                    mail(
                        "email_click",
                        sent + rng.uniform(1, 4),
                        contact,
                        is_machine=1,
                        machine_reason="scanner_ua",
                        link_id=link,
                        target_url=target,
                    )
                )
        clicked = rng.random() < (0.5 if opened else 0.1)  # some click with images off
        first_click = first_open + 120
        for k in range(rng.randint(1, 2) if clicked else 0):
            link = rng.choice(list(LINKS))
            rows.append(
                mail("email_click", first_click + k * 60, contact, link_id=link, target_url=LINKS[link],
                     site_id=SITE)
            )
        if clicked:
            visitor = f"fv{n:02d}"
            common = {"site_id": SITE, "visitor_id": visitor}
            # Before the click: not a follow-up (the identity is known from the later hand-off).
            rows.append(
                event_row("pageview", first_click - DAY, session_id=f"pre{n}", pathname="/", **common)
            )
            # The landing from the tracked link carries the contact (the _odn hand-off).
            rows.append(
                event_row(
                    "pageview",
                    first_click + 5,
                    session_id=f"land{n}",
                    pathname="/shoes",
                    contact_id=contact,
                    **common,
                )
            )
            if n % 3 == 0:  # comes back two days later, without the hand-off, and signs up
                rows.append(
                    event_row(
                        "pageview", first_click + 2 * DAY, session_id=f"back{n}", pathname="/signup", **common
                    )
                )
                rows.append(
                    event_row(
                        "signup",
                        first_click + 2 * DAY + 20,
                        {"plan": "pro"},
                        session_id=f"back{n}",
                        pathname="/signup",
                        **common,
                    )
                )
            if n % 4 == 0:  # much later: outside a 30-day window
                rows.append(
                    event_row(
                        "pageview",
                        first_click + 40 * DAY,
                        session_id=f"late{n}",
                        pathname="/signup",
                        **common,
                    )
                )
            rows.append(
                event_row(
                    "pageview",
                    first_click + 10,
                    session_id=f"bot{n}",
                    pathname="/",
                    is_bot=1,
                    site_id=SITE,
                    visitor_id=f"bot{n}",
                    contact_id=contact,
                )
            )
        if opened and not clicked and rng.random() < 0.15:
            rows.append(mail("unsubscribe", first_open + 50, contact))
        if opened and rng.random() < 0.4:
            rows.append(
                mail("survey_response", first_open + 90, contact, props={"score": str(rng.randint(0, 10))})
            )
            if n % 5 == 0:  # changed their mind: the latest answer counts
                rows.append(mail("survey_response", first_open + 900, contact, props={"score": "10"}))
    rows.append(mail("survey_response", SENT_AT + 500, "c00", props={"score": "eleven"}))
    rows.append(
        mail(
            "survey_response",
            SENT_AT + 501,
            "c01",
            props={"score": "0"},
            is_machine=1,
            machine_reason="scanner_ua",
        )
    )
    for n in range(5):  # another campaign, sharing contacts
        rows.append(mail("email_sent", SENT_AT + DAY + n, f"c{n:02d}", OTHER))
        rows.append(mail("email_open", SENT_AT + DAY + 100 + n, f"c{n:02d}", OTHER))
        rows.append(
            mail(
                "email_click", SENT_AT + DAY + 200 + n, f"c{n:02d}", OTHER, link_id="1", target_url=LINKS["1"]
            )
        )
    rows.append(
        event_row(
            "pageview",
            SENT_AT + 3 * DAY,
            site_id="elsewhere",
            visitor_id="fv00",
            contact_id="c00",
            session_id="x",
        )
    )
    # Later verdicts, as the collector writes them: a burst found on one clicker's clicks and a click
    # on the trap link by another turn the clicks within a minute of them into a machine's.
    clicks = [r for r in rows
              if r["name"] == "email_click" and r["campaign_id"] == CAMPAIGN and not r["is_machine"]]
    clickers = sorted({r["contact_id"] for r in clicks})
    for contact, reason in zip(clickers[:2], ("burst", "trap_link"), strict=True):
        first = min(r["ts"] + r["ts_ms"] / 1000 for r in clicks if r["contact_id"] == contact)
        rows.append(mail("machine_revision", first + 2, contact, props={"window_ms": "60000"}, is_machine=1,
                         machine_reason=reason, link_id="trap"))
    return rows


def turned(rows: list[dict]) -> dict[str, str]:
    """event_id -> reason of every person-looking open or click a later verdict turned around."""
    found = {}
    for rev in rows:
        if rev["name"] != "machine_revision":
            continue
        at, window = rev["ts"] * 1000 + rev["ts_ms"], int(rev["props.value"][0])
        for r in rows:
            if (r["name"] in ("email_open", "email_click") and not r["is_machine"] and not r["is_bot"]
                    and (r["message_id"], r["contact_id"]) == (rev["message_id"], rev["contact_id"])
                    and abs(r["ts"] * 1000 + r["ts_ms"] - at) <= window):
                found[r["event_id"]] = rev["machine_reason"]
    return found


TURNED: dict[str, str] = {}  # filled by the fixture from the rows it inserts


def person(row: dict) -> bool:
    return not row["is_machine"] and not row["is_bot"] and row["event_id"] not in TURNED


def ref_stats(rows: list[dict], campaign: str, start: float = 0, end: float = float("inf")) -> dict:
    mine = [r for r in rows if r["campaign_id"] == campaign and start <= r["ts"] < end]

    def contacts(test) -> set:
        return {r["contact_id"] for r in mine if test(r)}

    def count(test) -> int:
        return sum(1 for r in mine if test(r))

    recipients = contacts(lambda r: r["name"] == "email_sent")
    bounced = contacts(lambda r: r["name"] == "email_bounce")
    opened = contacts(lambda r: r["name"] in ("email_open", "email_click") and person(r))
    clicked = contacts(lambda r: r["name"] == "email_click" and person(r))
    delivered = len(recipients) - len(bounced)
    latest = {}
    for r in sorted(mine, key=lambda r: (r["ts"], r["ts_ms"])):
        if r["name"] == "survey_response" and person(r):
            score = r["props.value"][r["props.key"].index("score")]
            if score.isdigit() and 0 <= int(score) <= 10:
                latest[r["contact_id"]] = int(score)
    promoters = sum(1 for s in latest.values() if s >= 9)
    detractors = sum(1 for s in latest.values() if s <= 6)
    return {
        "sent": count(lambda r: r["name"] == "email_sent"),
        "recipients": len(recipients),
        "bounced": len(bounced),
        "delivered": delivered,
        "opened": len(opened),
        "opens": count(lambda r: r["name"] == "email_open" and person(r)),
        "machine_opens": count(lambda r: r["name"] == "email_open" and not person(r)),
        "clicked": len(clicked),
        "clicks": count(lambda r: r["name"] == "email_click" and person(r)),
        "scanner_clicks": count(lambda r: r["name"] == "email_click" and not person(r)),
        "unsubscribed": len(contacts(lambda r: r["name"] == "unsubscribe")),
        "open_rate": pytest.approx(100 * len(opened) / delivered),
        "click_rate": pytest.approx(100 * len(clicked) / delivered),
        "click_to_open": pytest.approx(100 * len(clicked) / len(opened)),
        "nps_responses": len(latest),
        "nps": pytest.approx(100 * (promoters - detractors) / len(latest)) if latest else None,
        "survey": (len(latest), promoters, len(latest) - promoters - detractors, detractors),
    }


def as_dict(stats) -> dict:
    return {k: v for k, v in vars(stats).items() if k != "campaign_id"}


@pytest.fixture
def loaded(store):
    migrate(store)
    rows = make_rows()
    store.insert("events", rows)
    TURNED.clear()
    TURNED.update(turned(rows))
    assert set(TURNED.values()) == {"burst", "trap_link"}  # each verdict turned at least one click
    return store, rows


def test_campaign_numbers_keep_people_and_machines_apart(loaded) -> None:
    store, rows = loaded
    for raw in (False, True):
        found = {s.campaign_id: s for s in campaign_list(store, raw=raw)}
        assert set(found) == {CAMPAIGN, OTHER}
        for campaign in (CAMPAIGN, OTHER):
            expected = ref_stats(rows, campaign)
            expected.pop("survey")
            assert as_dict(found[campaign]) == expected, (campaign, raw)
    main = found[CAMPAIGN]
    assert main.machine_opens > 0 and main.scanner_clicks > 0 and main.bounced == 4
    assert main.opened > len(
        {
            r["contact_id"]
            for r in rows
            if r["name"] == "email_open" and person(r) and r["campaign_id"] == CAMPAIGN
        }
    )  # clicks with images off count as opened
    assert campaign_list(store, [OTHER]) == [found[OTHER]]
    assert campaign_list(store, []) == [] and campaign_list(store, ["nope"]) == []


def test_campaign_list_over_a_period(loaded) -> None:
    store, rows = loaded
    day = Period.days(date(2026, 4, 6), date(2026, 4, 6))
    start, end = SENT_AT - 9 * 3600, SENT_AT + 15 * 3600
    expected = ref_stats(rows, CAMPAIGN, start, end)
    expected.pop("survey")
    for raw in (False, True):
        assert as_dict(campaign_list(store, [CAMPAIGN], day, raw=raw)[0]) == expected
    hours = Period(datetime(2026, 4, 6, 9, 0, 30), datetime(2026, 4, 6, 12))  # not whole days: raw events
    expected = ref_stats(rows, CAMPAIGN, SENT_AT + 30, SENT_AT + 3 * 3600)
    expected.pop("survey")
    assert as_dict(campaign_list(store, [CAMPAIGN], hours)[0]) == expected


def test_campaign_report_machines_by_reason_and_survey(loaded) -> None:
    store, rows = loaded
    expected = ref_stats(rows, CAMPAIGN)
    machines = defaultdict(lambda: [0, set()])
    for r in rows:
        if r["campaign_id"] == CAMPAIGN and not person(r) and r["name"] in ("email_open", "email_click"):
            reason = r["machine_reason"] or r["bot_reason"] or TURNED[r["event_id"]]
            entry = machines[(r["name"].removeprefix("email_"), reason)]
            entry[0] += 1
            entry[1].add(r["contact_id"])
    assert set(machines) == {("open", "apple_mpp"), ("open", "crawler_list"), ("click", "scanner_ua"),
                             ("click", "burst"), ("click", "trap_link")}
    for raw in (False, True):
        report = campaign_report(store, CAMPAIGN, raw=raw)
        assert report.stats == campaign_list(store, [CAMPAIGN])[0]
        assert {(m.kind, m.reason): [m.events, m.contacts] for m in report.machines} == {
            k: [v[0], len(v[1])] for k, v in machines.items()
        }
        survey = report.survey
        assert (survey.responses, survey.promoters, survey.passives, survey.detractors) == expected["survey"]
        assert survey.nps == expected["nps"]
    assert campaign_report(store, "nope") is None


def test_click_map_counts_each_link(loaded) -> None:
    store, rows = loaded
    per = defaultdict(lambda: {"people": set(), "clicks": 0, "scanner": 0})
    for r in rows:
        if r["campaign_id"] == CAMPAIGN and r["name"] == "email_click":
            if person(r):
                per[r["link_id"]]["people"].add(r["contact_id"])
                per[r["link_id"]]["clicks"] += 1
            else:
                per[r["link_id"]]["scanner"] += 1
    expected = sorted(
        ((link, LINKS[link], len(v["people"]), v["clicks"], v["scanner"]) for link, v in per.items()),
        key=lambda t: (-t[2], -t[3], t[0]),
    )
    for raw in (False, True):
        got = click_map(store, CAMPAIGN, raw=raw)
        assert [(x.link_id, x.target_url, x.clicked, x.clicks, x.scanner_clicks) for x in got] == expected


def test_followups_of_a_large_campaign_keep_its_clickers_on_the_server(store) -> None:
    """6,000 clickers: as arrays in the SQL text they passed 18.16's 256 KB query limit (seen at 100 M)."""
    migrate(store)
    start = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    rows = []
    for n in range(6000):
        contact, visitor = f"{n:016x}", f"v{n:015x}"
        rows.append(event_row("email_click", start + n, site_id=SITE, campaign_id="big", contact_id=contact,
                              message_id=f"big.{n}", link_id="l1", target_url="https://shop.example/"))
        rows.append(event_row("pageview", start + n + 60, site_id=SITE, contact_id=contact,
                              visitor_id=visitor, session_id=f"s{n}", url="https://shop.example/",
                              hostname="shop.example", pathname="/"))
    store.insert("events", rows)
    got = campaign_followups(store, SITE, "big", [Goal("page", "/")], days=1)
    assert (got.clicked, got.visited, got.visits, got.pageviews) == (6000, 6000, 6000, 6000)
    assert (got.goals[0].contacts, got.goals[0].conversions) == (6000, 6000)


def test_followups_count_clickers_visits_and_goals_in_the_window(loaded) -> None:
    store, rows = loaded
    first_click = {}
    for r in rows:
        if r["campaign_id"] == CAMPAIGN and r["name"] == "email_click" and person(r):
            first_click[r["contact_id"]] = min(first_click.get(r["contact_id"], r["ts"]), r["ts"])
    owner = {}
    for r in sorted(rows, key=lambda r: r["ts"]):
        if r["site_id"] == SITE and r["contact_id"] and r["visitor_id"] and r["name"] == "pageview":
            owner[r["visitor_id"]] = r["contact_id"]
    after = [
        r
        for r in rows
        if r["site_id"] == SITE
        and not r["is_bot"]
        and r["visitor_id"] in owner
        and owner[r["visitor_id"]] in first_click
        and first_click[owner[r["visitor_id"]]] <= r["ts"] < first_click[owner[r["visitor_id"]]] + 30 * DAY
    ]
    views = [r for r in after if r["name"] == "pageview"]
    signups = [r for r in after if r["name"] == "signup"]
    shoes = [r for r in views if r["pathname"] == "/shoes"]
    got = campaign_followups(
        store, SITE, CAMPAIGN, [Goal("event", "signup"), Goal("page", "/shoes")], days=30
    )
    assert (got.clicked, got.visited, got.visits, got.pageviews) == (
        len(first_click),
        len({owner[r["visitor_id"]] for r in views}),
        len({r["session_id"] for r in views}),
        len(views),
    )
    assert [(g.contacts, g.conversions) for g in got.goals] == [
        (len({owner[r["visitor_id"]] for r in signups}), len(signups)),
        (len({owner[r["visitor_id"]] for r in shoes}), len(shoes)),
    ]
    assert got.visits > got.visited > 0 and got.goals[0].conversions > 0
    assert all(r["session_id"].startswith(("land", "back")) for r in views)  # not before, not 40 days later
    longer = campaign_followups(store, SITE, CAMPAIGN, days=60)
    assert longer.pageviews > got.pageviews and longer.goals == []
    nobody = campaign_followups(store, SITE, "nope", [Goal("event", "signup")])
    assert (nobody.clicked, nobody.visits, [g.contacts for g in nobody.goals]) == (0, 0, [0])


def test_hostile_campaign_ids_match_nothing(loaded) -> None:
    store, rows = loaded
    for value in HOSTILE:
        assert campaign_list(store, [value]) == [] and campaign_list(store, [value], raw=True) == []
        assert campaign_report(store, value) is None
        assert click_map(store, value) == []
        assert campaign_followups(store, value, value).clicked == 0
    assert store.query("SELECT count() FROM events").scalar() == len(rows)


@pytest.mark.parametrize(
    "ask",
    [
        lambda s: campaign_list(s, "101"),
        lambda s: campaign_list(s, [101]),
        lambda s: campaign_list(s, ["x"] * 1001),
        lambda s: campaign_report(s, ""),
        lambda s: campaign_report(s, None),
        lambda s: click_map(s, "x" * 201),
        lambda s: campaign_followups(s, SITE, CAMPAIGN, days=0),
        lambda s: campaign_followups(s, SITE, CAMPAIGN, [("event", "signup")]),
    ],
)
def test_bad_campaign_input_is_a_clear_400(store, ask) -> None:
    migrate(store)
    with pytest.raises(OdnosError) as caught:
        ask(store)
    assert caught.value.status == 400 and caught.value.code.startswith("bad_")
