"""``recommended``: "customers who bought or viewed this also bought or viewed", on chDB and the server.

A seeded random shop (purchases, pageviews by contacts, by visitors linked to contacts through
the hand-off, by anonymous visitors, plus bots, old events and another site's events that must
not count) is written to each engine; the expected recommendations are computed here in plain
Python from the same rows, by the definition in the query module's docstring.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from tracker.crm.mailer.helpers import HelperError, Recommender
from tracker.events import event_row
from tracker.queries.crm.recommended import recommended
from tracker.store.migrate import migrate

NOW = time.time()
SITE, OTHER = "s_shop", "s_other"


def _shop(seed: int = 7) -> tuple[list[dict], list[str]]:
    rng = random.Random(seed)
    contacts = [f"c{n:02d}" for n in range(24)]
    items = [f"item-{n:02d}" for n in range(12)]
    pages = [f"/products/p{n}" for n in range(6)] + ["/", "/about"]
    rows = []

    def at(days: float) -> float:
        return NOW - days * 86400 - rng.random() * 100

    for contact in contacts[:20]:  # contacts 20-23 have no history at all
        for item in rng.sample(items, rng.randint(1, 3)):
            rows.append(event_row("purchase", at(rng.uniform(0, 100)), {"item": item, "value": "10"},
                                  site_id=SITE, contact_id=contact))
    for n, contact in enumerate(contacts[:10]):  # a hand-off links a visitor, whose later views count
        visitor = f"v-linked-{n}"
        rows.append(event_row("pageview", at(50), site_id=SITE, visitor_id=visitor, contact_id=contact,
                              url=f"https://shop.example.com{pages[n % 8]}?utm_source=mail",
                              pathname=pages[n % 8]))
        for page in rng.sample(pages, 2):
            rows.append(event_row("pageview", at(10), site_id=SITE, visitor_id=visitor,
                                  url=f"https://shop.example.com{page}", pathname=page))
    for n in range(15):  # anonymous visitors
        for page in rng.sample(pages, rng.randint(1, 3)):
            rows.append(event_row("pageview", at(5), site_id=SITE, visitor_id=f"v-anon-{n}",
                                  url=f"https://shop.example.com{page}#top", pathname=page))
    for n in range(30):  # none of these may count
        rows.append(event_row("purchase", at(1), {"item": "bot-item"}, site_id=SITE,
                              contact_id=f"c{n % 20:02d}", is_bot=1, bot_reason="test"))
        rows.append(event_row("purchase", at(400), {"item": "ancient-item"}, site_id=SITE,
                              contact_id=f"c{n % 20:02d}"))
        rows.append(event_row("purchase", at(1), {"item": "other-site-item"}, site_id=OTHER,
                              contact_id=f"c{n % 20:02d}"))
    return rows, contacts


def _expected(rows: list[dict], targets: list[str], limit: int, site: str, days: int = 180) -> dict:
    """The definition, in Python: persons, their keys, co-occurrence, popularity, ranking."""
    since = NOW - days * 86400
    linked = {}
    for row in sorted(rows, key=lambda r: r["ts"]):
        if row["name"] == "pageview" and row["contact_id"] and row["visitor_id"]:
            linked[(row["site_id"], row["visitor_id"])] = row["contact_id"]
    keys = defaultdict(set)
    for row in rows:
        if row["ts"] < int(since) or row["is_bot"] or (site and row["site_id"] != site):
            continue
        if row["name"] == "purchase":
            key = "b" + dict(zip(row["props.key"], row["props.value"], strict=True)).get("item", "")
        else:
            key = "v" + row["url"].split("?")[0].split("#")[0]
        person = row["contact_id"] or linked.get((row["site_id"], row["visitor_id"])) or \
            f"v:{row['site_id']}:{row['visitor_id']}"
        keys[person].add(key)
    popularity = defaultdict(int)
    for owned in keys.values():
        for key in owned:
            popularity[key] += 1
    result = {}
    for target in targets:
        mine = keys.get(target, set())
        co = defaultdict(int)
        for person, owned in keys.items():
            if person != target and owned & mine:
                for key in owned - mine:
                    co[key] += 1
        candidates = set(co) | {k for k in popularity if k not in mine}
        ranked = sorted(candidates, key=lambda k: (-co.get(k, 0), -popularity[k], k))[:limit]
        result[target] = [(k[0], k[1:], co.get(k, 0), popularity[k]) for k in ranked]
    return result


def _as_keys(found: dict) -> dict:
    return {target: [("b" if r.kind == "item" else "v", r.url if r.kind == "page" else r.item,
                      r.score, r.popularity) for r in recs] for target, recs in found.items()}


def test_recommendations_match_the_definition_on_both_engines(store) -> None:
    migrate(store)
    rows, contacts = _shop()
    store.insert("events", rows)
    targets = contacts[:6] + contacts[-2:]  # with history, with linked visitors, without any
    found = recommended(store, targets, 5, site_id=SITE)
    expected = _expected(rows, targets, 5, SITE)
    assert _as_keys(found) == expected
    for target in targets:
        assert len(found[target]) == 5
        assert not {r.item for r in found[target]} & {"bot-item", "ancient-item", "other-site-item"}
    # what a contact already has is never recommended, and people with nothing get the bestsellers
    owned = {r["props.value"][0] for r in rows if r["contact_id"] == "c00" and r["name"] == "purchase"}
    assert not owned & {r.item for r in found["c00"]}
    assert all(r.score == 0 for r in found["c23"])
    assert found["c23"] == found["c22"]
    # every site: the other site's purchases count too
    everywhere = recommended(store, ["c23"], 20)
    assert "other-site-item" in {r.item for r in everywhere["c23"]}


def test_kind_and_path_prefix_narrow_the_items(store) -> None:
    migrate(store)
    rows, _ = _shop(seed=11)
    store.insert("events", rows)
    pages = recommended(store, ["c01", "c22"], 4, kind="page", path_prefix="/products/", site_id=SITE)
    for recs in pages.values():
        assert recs and all(r.kind == "page" and r.item.startswith("/products/") for r in recs)
        assert all(r.url == "https://shop.example.com" + r.item for r in recs)
    items = recommended(store, ["c01"], 4, kind="item", site_id=SITE)["c01"]
    assert items and all(r.kind == "item" and r.url == "" for r in items)


def test_one_query_serves_a_whole_batch_and_bad_calls_are_template_errors(store) -> None:
    migrate(store)
    rows, contacts = _shop()
    store.insert("events", rows)
    calls = []

    class Counting:
        def query(self, *args, **kwargs):
            calls.append(args[0][:20])
            return store.query(*args, **kwargs)

    batch = Recommender(Counting(), contacts[:10], site_id=SITE)
    lists = [batch.helper(c)(3) for c in contacts[:10]]
    assert len(calls) == 1 and all(len(found) == 3 for found in lists)
    assert lists[0] == recommended(store, [contacts[0]], 3, site_id=SITE)[contacts[0]]
    assert batch.helper(contacts[20])(2) == recommended(store, [contacts[20]], 2, site_id=SITE)[contacts[20]]
    assert len(calls) == 2  # outside the batch: asked for alone
    chunked = Recommender(Counting(), contacts, site_id=SITE, chunk=8)
    calls.clear()
    assert [chunked.helper(c)(3) for c in contacts] == [
        recommended(store, [c], 3, site_id=SITE)[c] for c in contacts]
    assert len(calls) == 3  # 24 contacts in chunks of 8
    with pytest.raises(HelperError, match="from 1 to 20"):
        batch.helper(contacts[0])(0)
    with pytest.raises(HelperError, match="kind must be one of"):
        batch.helper(contacts[0])(3, kind="services")


def test_window_excludes_old_behaviour(store) -> None:
    migrate(store)
    rows, _ = _shop()
    store.insert("events", rows)
    recent = recommended(store, ["c00"], 20, site_id=SITE, days=3,
                         now=datetime.fromtimestamp(NOW, UTC))["c00"]
    assert _as_keys({"c00": recent}) == _expected(rows, ["c00"], 20, SITE, days=3)
