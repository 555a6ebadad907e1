"""Segments: definitions refused with the path of the bad field; the same members on both engines.

The equivalence test generates contacts, visitors, identity links and events with a seeded random,
writes them to chDB and to the ClickHouse server, and compares every definition's members with
what a small evaluator written here in plain Python finds in the generated rows themselves
(nothing of the compiler is used for the expectation).
"""

from __future__ import annotations

import json
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from tests.fixtures.processes import odnos_env, run_odnos
from tracker.crm.segments import SegmentDefinitionError, segment_members, segment_size, validate_definition
from tracker.store.migrate import migrate

DAY = 86400
NOW = int(datetime.now(UTC).timestamp())
EXAMPLES = {p.name.removesuffix(".json"): json.loads(p.read_text())
            for p in (resources.files("schemas") / "examples" / "segments").iterdir()
            if p.name.endswith(".json")}


# -- definitions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("definition", "path", "expected"), [
    ({"all": [{"type": "visited", "path": "/pricing", "days": "7"}]}, "all[0].days", "must be integer"),
    ({"all": [{"type": "visited", "path": "/pricing", "dayz": 7}]}, "all[0]", "{'dayz'}"),
    ({"any": [{"type": "visit", "path": "/"}]}, "any[0].type", "must be one of ['attribute'"),
    ({"all": [{"typ": "tag", "tag": "x"}]}, "all[0]", "must contain ['type']"),
    ({"not": {"type": "consent", "status": "maybe"}}, "not.status", "expected one of subscribed"),
    ({"all": [{"type": "attribute", "name": "plan", "op": "equals"}]}, "all[0]", "must contain ['value']"),
    ({"all": [{"type": "attribute", "name": "plan", "op": "exists", "value": "x"}]}, "all[0].value",
     "takes no value"),
    ({"all": [{"type": "event", "name": "signup", "property": {"name": "plan", "op": "in", "values": [1]}}]},
     "all[0].property.values[0]", "must be string"),
    ({"all": [{"type": "field", "field": "password", "op": "exists"}]}, "all[0].field", "must be one of"),
    ({"all": [{"type": "opened", "last_campaign": False}]}, "all[0].last_campaign", "must be true"),
    ({"all": [{"type": "visited", "path": "/a", "path_pattern": "/b*"}]}, "all[0]", "exactly one of"),
    ({"all": [{"type": "visited", "path": "/a", "at_least": 5, "at_most": 2}]}, "all[0].at_most",
     "must be at least at_least"),
    ({"any": [{"all": [{"type": "created", "after": "2024-02-30"}]}]}, "any[0].all[0].after", "not a date"),
    ({"type": "created"}, "", "created needs"),
    ({"type": "last_seen", "more_than_days": 3, "less_than_days": 9}, "", "exactly one of"),
    ({"any": []}, "any", "at least 1 items"),
    ({"all": [], "x": 1}, "", "{'x'}"),
    ([], "", "must be object"),
    (json.loads('{"not": ' * 9 + '{"type": "tag", "tag": "x"}' + "}" * 9), ".".join(["not"] * 9),
     "nest at most"),
])
def test_bad_definitions_name_the_field(definition, path: str, expected: str) -> None:
    with pytest.raises(SegmentDefinitionError) as caught:
        validate_definition(definition)
    assert caught.value.path == path
    assert expected in caught.value.message
    assert caught.value.message.startswith(f"segment definition: {path or '(the whole definition)'}: ")


def test_the_seed_examples_are_valid() -> None:
    assert set(EXAMPLES) == {"pricing_no_signup", "win_back", "opened_not_clicked", "new_this_week"}
    for definition in EXAMPLES.values():
        validate_definition(definition)


# -- a generated world and an evaluator of its own ------------------------------------------------


@dataclass
class Person:
    contact_id: str
    email: str
    first_name: str
    status: str
    created_at: int
    attrs: dict[str, str]
    tags: list[str]


@dataclass
class Event:
    name: str
    ts: int
    site_id: str = ""
    visitor_id: str = ""
    contact_id: str = ""
    pathname: str = ""
    campaign_id: str = ""
    link_id: str = ""
    target_url: str = ""
    message_id: str = ""
    is_bot: int = 0
    is_machine: int = 0
    props: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    people: list[Person]
    events: list[Event]
    links: list[tuple[str, str, str, int]]  # site, visitor, contact, ts (inserted into identities)
    placeholders: list[str]  # contact ids of hand-off rows without an address

    def newest_links(self) -> dict[tuple[str, str], str]:
        """What the identities table holds: explicit links plus those the hand-off pageviews make."""
        every = list(self.links) + [(e.site_id, e.visitor_id, e.contact_id, e.ts) for e in self.events
                                    if e.contact_id and e.visitor_id and e.site_id
                                    and e.name in ("pageview", "identify")]
        newest: dict[tuple[str, str], tuple[int, str]] = {}
        for site, visitor, contact, ts in every:
            if (site, visitor) not in newest or ts > newest[(site, visitor)][0]:
                newest[(site, visitor)] = (ts, contact)
        return {key: contact for key, (_, contact) in newest.items()}


PATHS = ["/", "/pricing", "/products/blue_shoe", "/products/red-hat", "/blog/50%-off", "/signup",
         "/pricing/faq"]


def build_world(seed: int = 11) -> World:
    rng = random.Random(seed)
    people, events, links = [], [], []
    used_ts: set[int] = set()

    def moment(max_days: float, min_days: float = 0) -> int:
        while True:  # unique seconds: "newest link" and "last campaign" never tie
            ts = NOW - int(rng.uniform(min_days, max_days) * DAY) - 1
            if ts not in used_ts:
                used_ts.add(ts)
                return ts

    for n in range(240):
        contact_id = f"{n:04d}" + uuid.UUID(int=rng.getrandbits(128)).hex[:12]
        attrs = {}
        if rng.random() < 0.7:
            attrs["plan"] = rng.choice(["free", "pro", "pro-trial", "O'Brien's \\ plan"])
        if rng.random() < 0.5:
            attrs["city"] = rng.choice(["Paris", "Berlin", "Rome"])
        status = rng.choices(["subscribed", "unsubscribed", "bounced", "complained"], [85, 8, 4, 3])[0]
        people.append(Person(contact_id, f"p{n}@{rng.choice(['example.com', 'shop.test'])}",
                             rng.choice(["Ann", "Bo", "Cy"]), status, NOW - int(rng.uniform(0, 40) * DAY),
                             attrs, sorted(rng.sample(["vip", "news", "beta"], rng.randint(0, 2)))))
    campaigns = {"1": moment(40), "2": moment(5)}  # campaign 2 is the last one sent
    for n, person in enumerate(people):
        c = person.contact_id
        lapsed = n % 12 == 5  # customers gone quiet: only old visits, no mail
        for campaign, sent in campaigns.items():
            if rng.random() < 0.8 and not lapsed:
                message = f"{campaign}.{c}"
                events.append(Event("email_sent", sent, contact_id=c, campaign_id=campaign,
                                    message_id=message))
                for _ in range(rng.choice([0, 0, 1, 2, 3])):
                    events.append(Event("email_open", moment(40), contact_id=c, campaign_id=campaign,
                                        message_id=message, is_machine=int(rng.random() < 0.3)))
                if rng.random() < 0.3:
                    events.append(Event("email_click", moment(40), contact_id=c, campaign_id=campaign,
                                        link_id=rng.choice(["1", "2"]), target_url="https://shop.test/x",
                                        message_id=message, is_machine=int(rng.random() < 0.25)))
                if n % 7 == 2:  # a later verdict: this message's opens and clicks near it were a machine's
                    events.append(Event("machine_revision", moment(40), contact_id=c, campaign_id=campaign,
                                        message_id=message, is_machine=1,
                                        props={"window_ms": str(rng.choice([5, 15]) * DAY * 1000)}))
        if rng.random() < 0.05:
            events.append(Event("unsubscribe", moment(30), contact_id=c,
                                props={"list": rng.choice(["", "", "news"]), "how": "page"}))
        for v in range(rng.choice([0, 1, 1, 2])):
            site, visitor = rng.choice(["s1", "s2"]), f"v-{c}-{v}"
            if rng.random() < 0.5:  # linked by a hand-off pageview (the view adds the link)
                events.append(Event("pageview", moment(90, 65 if lapsed else 0), site, visitor, c, "/"))
            else:
                links.append((site, visitor, c, moment(90)))
            for _ in range(rng.randint(0, 12)):
                name = rng.choices(["pageview", "signup", "purchase", "engagement"], [70, 5, 8, 10])[0]
                props = {}
                if name == "signup":
                    props = {"plan": rng.choice(["free", "pro"])}
                if name == "purchase":
                    props = {"item": rng.choice(["shoe", "hat"]),
                             "value": rng.choice(["10", "49.5", "120", "x"])}
                events.append(Event(name, moment(90, 65 if lapsed else 0), site, visitor, "",
                                    rng.choice(PATHS), props=props, is_bot=int(rng.random() < 0.08)))
        if n % 10 == 3:  # comparing plans this week; some then sign up
            site, visitor = "s1", f"v-{c}-pricing"
            links.append((site, visitor, c, moment(30, 20)))
            for _ in range(rng.choice([2, 3, 4])):
                events.append(Event("pageview", moment(6), site, visitor, "", "/pricing"))
            if n % 20 == 3:
                events.append(Event("signup", moment(6), site, visitor, "", "/signup", props={"plan": "pro"}))
    # Shared devices: a few visitors later identified as someone else (the newest link wins).
    for site, visitor, _, _ in rng.sample(links, 8):
        other = rng.choice(people).contact_id
        links.append((site, visitor, other, moment(2)))
    # Anonymous visitors (never linked) and bots doing everything.
    for n in range(60):
        events.append(Event("pageview", moment(10), "s1", f"anon-{n}", "", rng.choice(PATHS),
                            is_bot=int(n % 3 == 0)))
    bot_only = people[0].contact_id
    links.append(("s1", "v-botonly", bot_only, moment(80)))
    for _ in range(5):
        events.append(Event("pageview", moment(3), "s1", "v-botonly", "", "/pricing", is_bot=1))
    # Hand-off rows for people no import named: never members (no address).
    placeholders = [f"ffff{n:012d}" for n in range(3)]
    for n, c in enumerate(placeholders):
        events.append(Event("pageview", moment(5), "s1", f"v-ph-{n}", c, "/pricing"))
    return World(people, events, links, placeholders)


WORLD = build_world()
LINKS = WORLD.newest_links()


def owner(event: Event) -> str:
    return event.contact_id or LINKS.get((event.site_id, event.visitor_id), "")


def consent_of(person: Person) -> str:
    left = any(e.name == "unsubscribe" and e.contact_id == person.contact_id and e.props.get("list", "") == ""
               for e in WORLD.events)
    return "unsubscribed" if person.status == "subscribed" and left else person.status


def text_matches(value: str, present: bool, node: dict) -> bool:
    op = node["op"]
    if op == "exists":
        return present
    if op == "in":
        return value in node["values"]
    return {"equals": value == node["value"], "not_equals": value != node["value"],
            "contains": node["value"] in value}[op]


def amount(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def glob(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if ch == "*" else re.escape(ch) for ch in pattern), re.DOTALL)


def last_campaign() -> str:
    return max((e for e in WORLD.events if e.name == "email_sent"), key=lambda e: e.ts).campaign_id


REVISIONS = [e for e in WORLD.events if e.name == "machine_revision"]


def revised(event: Event) -> bool:
    """An open or click inside a later verdict's window around it, for the same message and contact."""
    return any(r.message_id == event.message_id and r.contact_id == event.contact_id
               and abs(event.ts - r.ts) * 1000 <= int(r.props["window_ms"]) for r in REVISIONS)


def behaviour_holds(person: Person, node: dict, test, *, email: bool = False) -> bool:
    since = NOW - node["days"] * DAY if "days" in node else None
    count = sum(1 for e in WORLD.events if owner(e) == person.contact_id and not e.is_bot
                and not e.is_machine and (since is None or e.ts >= since)
                and ("site" not in node or e.site_id == node["site"]) and test(e)
                and not (email and revised(e)))
    at_most = node.get("at_most")
    at_least = node.get("at_least", 1 if at_most is None else 0)
    return count >= at_least and (at_most is None or count <= at_most)


def holds(person: Person, node: dict) -> bool:
    if "all" in node:
        return all(holds(person, n) for n in node["all"])
    if "any" in node:
        return any(holds(person, n) for n in node["any"])
    if "not" in node:
        return not holds(person, node["not"])
    kind = node["type"]
    if kind == "attribute":
        return text_matches(person.attrs.get(node["name"], ""), node["name"] in person.attrs, node)
    if kind == "field":
        value = {"email": person.email, "first_name": person.first_name, "last_name": "",
                 "source": "import"}[node["field"]]
        return text_matches(value, value != "", node)
    if kind == "tag":
        return node["tag"] in person.tags
    if kind == "consent":
        wanted = node["status"] if isinstance(node["status"], list) else [node["status"]]
        return consent_of(person) in wanted
    if kind == "created":
        ok = True
        if "within_days" in node:
            ok &= person.created_at >= NOW - node["within_days"] * DAY
        if "more_than_days" in node:
            ok &= person.created_at < NOW - node["more_than_days"] * DAY
        for key, after in (("after", True), ("before", False)):
            if key in node:
                edge = int(datetime.fromisoformat(node[key]).replace(tzinfo=UTC).timestamp())
                ok &= (person.created_at >= edge) if after else (person.created_at < edge)
        return ok
    if kind == "visited":
        if "path" in node:
            return behaviour_holds(person, node,
                                   lambda e: e.name == "pageview" and e.pathname == node["path"])
        pattern = glob(node["path_pattern"])
        return behaviour_holds(person, node, lambda e: e.name == "pageview" and pattern.fullmatch(e.pathname))
    if kind == "event":
        prop = node.get("property")
        return behaviour_holds(person, node, lambda e: e.name == node["name"] and (
            prop is None or text_matches(e.props.get(prop["name"], ""), prop["name"] in e.props, prop)))
    if kind == "purchased":
        return behaviour_holds(person, node, lambda e: e.name == "purchase"
                               and ("item" not in node or e.props.get("item") == node["item"])
                               and amount(e.props.get("value", "")) >= node.get("min_value", float("-inf"))
                               and amount(e.props.get("value", "")) <= node.get("max_value", float("inf")))
    if kind in ("opened", "clicked"):
        campaign = last_campaign() if node.get("last_campaign") else node.get("campaign")
        return behaviour_holds(person, node, lambda e: e.name == f"email_{kind[:-2]}"
                               and (campaign is None or e.campaign_id == campaign)
                               and ("link" not in node or e.link_id == node["link"])
                               and ("url" not in node or e.target_url == node["url"]), email=True)
    if kind == "last_seen":
        days = node.get("less_than_days", node.get("more_than_days"))
        seen = behaviour_holds(person, {"days": days}, lambda e: e.name not in ("email_sent", "consent"))
        return seen if "less_than_days" in node else not seen
    raise AssertionError(kind)


def expected_members(definition: dict) -> list[str]:
    return sorted(p.contact_id for p in WORLD.people if holds(p, definition))


def load(store) -> None:
    migrate(store)
    rows = []
    for p in WORLD.people:
        row = {"contact_id": p.contact_id, "email": p.email, "first_name": p.first_name, "last_name": "",
               "status": p.status, "source": "import", "created_at": p.created_at, "updated_at": p.created_at,
               "deleted": 0, "attrs.key": list(p.attrs), "attrs.value": list(p.attrs.values()),
               "tags": p.tags}
        # An older version that disagrees in everything: FINAL must never see it.
        rows.append({**row, "version": 2**40, "status": "subscribed", "tags": ["vip", "news", "beta"],
                     "attrs.key": ["plan", "city"], "attrs.value": ["pro", "Paris"], "created_at": NOW})
        rows.append({**row, "version": 2**41})
    store.insert("contacts", rows)
    store.insert("identities", [{"site_id": s, "visitor_id": v, "contact_id": c, "method": "identify",
                                 "ts": ts} for s, v, c, ts in WORLD.links])
    store.insert("events", [{
        "event_id": str(uuid.UUID(int=n)), "name": e.name, "ts": e.ts, "received_at": e.ts,
        "site_id": e.site_id,
        "visitor_id": e.visitor_id, "contact_id": e.contact_id, "pathname": e.pathname, "source": "beacon",
        "campaign_id": e.campaign_id, "link_id": e.link_id, "target_url": e.target_url,
        "message_id": e.message_id, "is_bot": e.is_bot,
        "is_machine": e.is_machine, "props.key": list(e.props), "props.value": list(e.props.values())}
        for n, e in enumerate(WORLD.events)])


DEFINITIONS = {
    **EXAMPLES,
    "pricing_3_in_30": {"type": "visited", "path": "/pricing", "days": 30, "at_least": 3},
    "products_at_most_2": {"type": "visited", "path_pattern": "/products/*", "at_most": 2},
    "literal_wildcards": {"any": [{"type": "visited", "path_pattern": "/blog/50%*"},
                                  {"type": "visited", "path_pattern": "/products/blue_*"}]},
    "percent_is_literal": {"type": "visited", "path_pattern": "/blog/5%-off"},
    "signup_pro": {"type": "event", "name": "signup", "property": {"name": "plan", "op": "equals",
                                                                    "value": "pro"}},
    "never_signed_up": {"not": {"type": "event", "name": "signup"}},
    "big_shoe_buyers": {"type": "purchased", "item": "shoe", "min_value": 40},
    "small_purchases_twice": {"type": "purchased", "max_value": 20, "at_least": 2},
    "opened_1_twice": {"type": "opened", "campaign": "1", "at_least": 2},
    "clicked_link_2": {"type": "clicked", "link": "2"},
    "opened_never": {"type": "opened", "at_most": 0},
    "seen_this_week": {"type": "last_seen", "less_than_days": 7},
    "gone_for_30": {"type": "last_seen", "more_than_days": 30},
    "pro_or_trial": {"type": "attribute", "name": "plan", "op": "in", "values": ["pro", "pro-trial"]},
    "plan_contains_pro": {"type": "attribute", "name": "plan", "op": "contains", "value": "pro"},
    "not_free": {"type": "attribute", "name": "plan", "op": "not_equals", "value": "free"},
    "has_city": {"type": "attribute", "name": "city", "op": "exists"},
    "hostile_value": {"type": "attribute", "name": "plan", "op": "equals", "value": "O'Brien's \\ plan"},
    "injection": {"any": [{"type": "attribute", "name": "x') OR 1=1 --", "op": "equals",
                           "value": "'); DROP TABLE contacts; --"},
                          {"type": "field", "field": "email", "op": "contains", "value": "%(p0)s"}]},
    "shop_test": {"type": "field", "field": "email", "op": "contains", "value": "@shop.test"},
    "vip_or_beta": {"any": [{"type": "tag", "tag": "vip"}, {"type": "tag", "tag": "beta"}]},
    "left": {"type": "consent", "status": ["unsubscribed", "bounced", "complained"]},
    "subscribed": {"type": "consent", "status": "subscribed"},
    "created_window": {"type": "created", "more_than_days": 10, "within_days": 30},
    "created_dates": {"type": "created", "after": "2000-01-01", "before": "2100-01-01"},
    "nested": {"all": [{"any": [{"type": "tag", "tag": "news"}, {"not": {"type": "consent",
                                                                         "status": "subscribed"}}]},
                       {"not": {"all": [{"type": "visited", "path": "/", "site": "s2"},
                                        {"type": "opened", "last_campaign": True, "days": 10}]}}]},
    "everyone": {"all": []},
}


@pytest.fixture
def world_store(store):
    load(store)
    return store


def test_same_members_as_the_rows_say_on_each_engine(world_store) -> None:
    now = datetime.fromtimestamp(NOW, UTC)
    for name, definition in DEFINITIONS.items():
        expected = expected_members(definition)
        got = [c.contact_id for c in segment_members(world_store, definition, limit=10_000, now=now)]
        assert got == expected, name
        assert segment_size(world_store, definition, now=now) == len(expected), name
        # The data set is rich enough that each definition picks some people but not all.
        if name not in ("everyone", "created_dates", "injection", "percent_is_literal"):
            assert 0 < len(expected) < len(WORLD.people), name
    assert world_store.query("SELECT count() FROM contacts FINAL WHERE email = ''").scalar() == len(
        WORLD.placeholders)


def test_bots_machines_and_placeholders_never_count(world_store) -> None:
    now = datetime.fromtimestamp(NOW, UTC)
    pricing = {c.contact_id for c in segment_members(world_store, {"type": "visited", "path": "/pricing"},
                                                     limit=10_000, now=now)}
    assert WORLD.people[0].contact_id not in pricing  # only bots visited /pricing as that visitor
    assert not pricing & set(WORLD.placeholders)
    machine_only = [p.contact_id for p in WORLD.people
                    if any(e.contact_id == p.contact_id and e.name == "email_open" for e in WORLD.events)
                    and not any(e.contact_id == p.contact_id and e.name == "email_open" and not e.is_machine
                                for e in WORLD.events)]
    assert machine_only, "the generated data should have people with machine opens only"
    opened = {c.contact_id for c in segment_members(world_store, {"type": "opened"}, limit=10_000, now=now)}
    assert not opened & set(machine_only)


def test_members_come_in_resumable_batches(world_store) -> None:
    now = datetime.fromtimestamp(NOW, UTC)
    definition = DEFINITIONS["never_signed_up"]
    batches, after = [], ""
    while batch := segment_members(world_store, definition, after_contact_id=after, limit=17, now=now):
        assert len(batch) <= 17
        batches.append([c.contact_id for c in batch])
        after = batch[-1].contact_id
    flat = [cid for batch in batches for cid in batch]
    assert flat == expected_members(definition) and len(batches) > 3
    member = segment_members(world_store, {"type": "attribute", "name": "city", "op": "exists"}, limit=1,
                             now=now)[0]
    person = next(p for p in WORLD.people if p.contact_id == member.contact_id)
    assert (member.email, member.attrs, list(member.tags), member.status) == (
        person.email, person.attrs, person.tags, consent_of(person))


# -- the CLI ----------------------------------------------------------------------------------------


def test_segments_cli_add_preview_list(tmp_path: Path) -> None:
    env = odnos_env(tmp_path / "data")
    people = tmp_path / "people.csv"
    people.write_text("email,first_name,plan\nann@example.com,Ann,pro\nbob@example.com,Bob,free\n"
                      "cy@example.com,Cy,pro\n")
    assert run_odnos("contacts", "import", str(people), env=env).returncode == 0
    definition = tmp_path / "pro.json"
    definition.write_text(json.dumps({"type": "attribute", "name": "plan", "op": "equals", "value": "pro"}))
    added = run_odnos("segments", "add", "Pro plan", "--file", str(definition), env=env)
    assert added.returncode == 0, added.stderr
    segment_id = added.stdout.strip().splitlines()[-1]
    assert segment_id.isdigit()
    preview = run_odnos("segments", "preview", "Pro plan", "--limit", "1", env=env)
    assert preview.returncode == 0, preview.stderr
    lines = preview.stdout.strip().splitlines()
    assert lines[0] == "segment 'Pro plan': 2 contacts" and len(lines) == 2
    assert lines[1].split("\t")[1] in ("ann@example.com", "cy@example.com")
    assert run_odnos("segments", "preview", segment_id, env=env).stdout.startswith("segment 'Pro plan': 2")
    listed = run_odnos("contacts", "list", "--segment", "Pro plan", env=env).stdout.splitlines()
    assert sorted(line.split("\t")[1] for line in listed) == ["ann@example.com", "cy@example.com"]
    assert run_odnos("segments", "list", env=env).stdout.startswith(f"{segment_id}\tPro plan\t")
    for name, example in EXAMPLES.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(example))
        assert run_odnos("segments", "add", name, "--file", str(path), env=env).returncode == 0
        assert run_odnos("segments", "preview", name, env=env).returncode == 0

    def refused(*args: str) -> str:
        result = run_odnos(*args, env=env)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("odnos: error: ")
        return line

    bad = tmp_path / "bad.json"
    bad.write_text('{"all": [{"type": "visited", "path": "/pricing", "days": "seven"}]}')
    assert "segment definition: all[0].days: must be integer" in refused("segments", "add", "x", "--file",
                                                                          str(bad))
    bad.write_text('{"all": [{"type": "visited", "path": "/pricing", "colour": "red"}]}')
    assert "all[0]: must not contain {'colour'}" in refused("segments", "add", "x", "--file", str(bad))
    bad.write_text('{"all": [')
    assert "is not JSON: line 1, column 10" in refused("segments", "add", "x", "--file", str(bad))
    assert "exists already" in refused("segments", "add", "Pro plan", "--file", str(definition))
    assert "no segment 'nope'" in refused("segments", "preview", "nope")
    assert "no such file" in refused("segments", "add", "x", "--file", str(tmp_path / "missing.json"))
    replaced = run_odnos("segments", "add", "Pro plan", "--file", str(tmp_path / "new_this_week.json"),
                         "--replace", env=env)
    assert replaced.stdout.strip().splitlines()[-1] == segment_id
    assert run_odnos("segments", "preview", "Pro plan", env=env).stdout.startswith("segment 'Pro plan': 3")
