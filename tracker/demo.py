"""Realistic demo data, so a newcomer sees a live dashboard at once.

One shop site, a few thousand visitors over 30 days (sessions of several pages with engaged time
and scroll depth, search, social, email and direct traffic, UTM campaigns, devices, countries,
a share of crawlers flagged as bots), contacts, and one sent campaign with human opens and clicks,
Apple Mail Privacy Protection opens and link-scanner clicks flagged as machines, unsubscribes, and
the clickers' later visits tied to their contacts. Seeded, so two runs give the same data.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tracker.contacts import contact_id_for
from tracker.enrich.referrer import classify_referrer
from tracker.events import event_row
from tracker.runtime import Runtime

DEMO_SITE_NAME = "Demo Shop"
DEMO_DOMAIN = "shop.example.com"
DEMO_USER = "demo@example.com"

PAGES = [("/", 30), ("/products", 14), ("/products/blue-shoes", 9), ("/products/red-hat", 7),
         ("/products/green-scarf", 5), ("/blog/choosing-running-shoes", 6), ("/blog/autumn-lookbook", 4),
         ("/pricing", 5), ("/about", 3), ("/signup", 4), ("/cart", 4), ("/checkout", 2)]
SOURCES = [  # referrer, utm (source, medium, campaign), weight
    ("", ("", "", ""), 30), ("https://www.google.com/", ("", "", ""), 28),
    ("https://duckduckgo.com/", ("", "", ""), 4), ("https://www.bing.com/", ("", "", ""), 4),
    ("https://www.facebook.com/", ("", "", ""), 7), ("https://t.co/x1y2", ("", "", ""), 4),
    ("https://www.reddit.com/r/running/", ("", "", ""), 3),
    ("https://news.ycombinator.com/", ("", "", ""), 2),
    ("https://runnersblog.example.org/best-shoes", ("", "", ""), 4),
    ("https://www.instagram.com/", ("instagram", "social", "autumn-sale"), 5),
    ("https://www.google.com/", ("google", "cpc", "brand-search"), 5),
]
DEVICES = [  # device, browser, os, weight
    ("desktop", "Chrome", "Windows", 24), ("desktop", "Edge", "Windows", 7),
    ("desktop", "Firefox", "Windows", 4), ("desktop", "Safari", "Mac OS X", 9),
    ("desktop", "Chrome", "Mac OS X", 7), ("desktop", "Firefox", "Linux", 2),
    ("mobile", "Mobile Safari", "iOS", 21), ("mobile", "Chrome Mobile", "Android", 18),
    ("mobile", "Samsung Internet", "Android", 3), ("tablet", "Mobile Safari", "iOS", 5),
]
COUNTRIES = [("US", 28), ("DE", 11), ("GB", 9), ("RS", 8), ("FR", 7), ("NL", 5), ("CA", 5), ("IN", 5),
             ("BR", 4), ("ES", 4), ("IT", 4), ("SE", 3), ("PL", 3), ("JP", 2), ("AU", 2)]
BOTS = [("Googlebot", "Other"), ("bingbot", "Other"), ("AhrefsBot", "Other"), ("HeadlessChrome", "Linux")]
FIRST = ["Ana", "Marko", "Jelena", "Nikola", "Sara", "Luka", "Mila", "Stefan", "Eva", "David", "Lena",
         "Petar", "Maja", "Ivan", "Nina", "Tom", "Emma", "Noah", "Olivia", "Liam"]
LAST = ["Petrovic", "Jovanovic", "Smith", "Muller", "Garcia", "Rossi", "Novak", "Dubois", "Kowalski",
        "Johnson", "Nikolic", "Brown", "Schmidt", "Martin", "Horvat"]


@dataclass(frozen=True)
class DemoResult:
    site_id: str
    password: str | None
    events: int
    contacts: int


def _pick(rng: random.Random, weighted: list[tuple]) -> tuple:
    return rng.choices(weighted, weights=[w[-1] for w in weighted])[0]


def _visit(rng: random.Random, site_id: str, visitor: str, start: float, device: tuple,
           country: str, source: tuple, contact_id: str = "") -> Iterator[dict[str, Any]]:
    """One session: 1..8 pages, each followed by its engagement event."""
    referrer, (utm_source, utm_medium, utm_campaign), _ = source
    session = secrets.token_hex(8)
    pages = 1 if rng.random() < 0.42 else min(8, 1 + int(rng.expovariate(0.45)))
    ts = start
    previous = referrer
    common = {"site_id": site_id, "visitor_id": visitor, "session_id": session, "device": device[0],
              "browser": device[1], "os": device[2], "country": country, "contact_id": contact_id,
              "hostname": DEMO_DOMAIN, "source": "beacon"}
    for index in range(pages):
        path = _pick(rng, PAGES)[0] if index else rng.choice(["/", "/", "/products", "/blog/autumn-lookbook",
                                                              "/products/blue-shoes"])
        query = ""
        if index == 0 and utm_source:
            query = f"?utm_source={utm_source}&utm_medium={utm_medium}&utm_campaign={utm_campaign}"
        url = f"https://{DEMO_DOMAIN}{path}{query}"
        first_page = index == 0
        kind = classify_referrer(previous, DEMO_DOMAIN, [DEMO_DOMAIN], utm_medium if first_page else "")
        source_fields = {
            "referrer": previous, "referrer_domain": kind.domain, "referrer_source": kind.source,
            "utm_source": utm_source if first_page else "", "utm_medium": utm_medium if first_page else "",
            "utm_campaign": utm_campaign if first_page else "",
        }
        yield event_row("pageview", ts, url=url, pathname=path, **common, **source_fields)
        engaged = int(min(600_000, rng.lognormvariate(10.2, 0.9)))
        yield event_row("engagement", ts + engaged / 1000 + 1, url=url, pathname=path,
                        engaged_ms=engaged, scroll=rng.choice([25, 40, 60, 75, 90, 100]), **common)
        if path.startswith("/products/") and rng.random() < 0.18:
            yield event_row("add_to_cart", ts + 5, {"product": path.rsplit("/", 1)[1]}, url=url,
                            pathname=path, **common)
        if path == "/signup" and rng.random() < 0.5:
            yield event_row("signup", ts + 20, {"plan": rng.choice(["free", "pro"])}, url=url,
                            pathname=path, **common)
        previous = url
        ts += engaged / 1000 + rng.uniform(3, 40)


def generate(rng: random.Random, site_id: str, now: float, visitors: int, days: int,
             contacts: list[tuple[str, str]], campaign_id: str) -> Iterator[dict[str, Any]]:
    """Every demo event: site visits, bot hits, and the campaign's sends, opens, clicks."""
    span = days * 86400
    for n in range(visitors):
        visitor = f"v{n:06d}{secrets.token_hex(4)}"
        device, country, source = _pick(rng, DEVICES), _pick(rng, COUNTRIES)[0], _pick(rng, SOURCES)
        first = now - span * rng.random() ** 0.8
        for _ in range(1 + int(rng.expovariate(1.6))):
            start = min(now - 60, first + rng.uniform(0, 5 * 86400))
            yield from _visit(rng, site_id, visitor, start, device, country, source)
    for _ in range(visitors // 12):
        name, os_name = rng.choice(BOTS)
        path = _pick(rng, PAGES)[0]
        yield event_row("pageview", now - span * rng.random(), site_id=site_id,
                        url=f"https://{DEMO_DOMAIN}{path}", pathname=path, hostname=DEMO_DOMAIN,
                        browser=name, os=os_name, device="bot", is_bot=1,
                        bot_reason="crawler_list" if name != "HeadlessChrome" else "headless",
                        visitor_id=secrets.token_hex(8), source="beacon", referrer_source="direct")
    yield from _campaign(rng, site_id, now, contacts, campaign_id)


def _campaign(rng: random.Random, site_id: str, now: float, contacts: list[tuple[str, str]],
              campaign_id: str) -> Iterator[dict[str, Any]]:
    sent_at = now - 10 * 86400
    links = {"1": f"https://{DEMO_DOMAIN}/products/blue-shoes", "2": f"https://{DEMO_DOMAIN}/products/red-hat",
             "3": f"https://{DEMO_DOMAIN}/blog/autumn-lookbook"}
    source = ("", ("newsletter", "email", "autumn-sale"), 0)
    for contact_id, _email in contacts:
        message_id = f"{campaign_id}-{contact_id[:8]}"
        base = {"site_id": site_id, "contact_id": contact_id, "campaign_id": campaign_id,
                "message_id": message_id}
        send = sent_at + rng.uniform(0, 600)
        yield event_row("email_sent", send, source="mailer", **base)
        if rng.random() < 0.33:  # Apple Mail Privacy Protection fetches the pixel at once
            yield event_row("email_open", send + rng.uniform(2, 60), source="pixel", is_machine=1,
                            machine_reason="apple_mpp", browser="Other", device="other", **base)
        if rng.random() < 0.04:  # a security gateway pre-clicks every link within seconds
            for link_id, target in links.items():
                yield event_row("email_click", send + rng.uniform(1, 5), source="link", is_machine=1,
                                machine_reason="scanner_ua", link_id=link_id, target_url=target, **base)
        if rng.random() < 0.31:
            opened = send + rng.expovariate(1 / 20000)
            device = _pick(rng, DEVICES)
            for _ in range(1 + int(rng.expovariate(1.5))):
                yield event_row("email_open", opened, source="pixel", device=device[0], browser=device[1],
                                os=device[2], **base)
                opened += rng.uniform(600, 86400)
            if rng.random() < 0.3:
                link_id = rng.choice(list(links))
                clicked = opened + rng.uniform(5, 300)
                yield event_row("email_click", clicked, source="link", link_id=link_id,
                                target_url=links[link_id], device=device[0], browser=device[1], os=device[2],
                                **base)
                visitor = secrets.token_hex(8)
                yield from _visit(rng, site_id, visitor, clicked + 1, device, _pick(rng, COUNTRIES)[0],
                                  source, contact_id)
            elif rng.random() < 0.03:
                yield event_row("unsubscribe", opened + 30, source="unsubscribe", **base)


def load_demo(runtime: Runtime, *, visitors: int = 3000, days: int = 30, contacts: int = 600,
              seed: int = 7) -> DemoResult | None:
    """Fill the stores with demo data; None when the demo site is there already (safe to run twice)."""
    from tracker.control.models import Campaign, CampaignStatus, User
    from tracker.control.sites import add_site, list_sites
    from tracker.control.users import add_user

    with runtime.control.session() as db:
        if any(site.name == DEMO_SITE_NAME for site in list_sites(db)):
            return None
        site = add_site(db, DEMO_SITE_NAME, [DEMO_DOMAIN])
        site_id = site.id
        password = None
        if db.query(User).filter(User.email == DEMO_USER).first() is None:
            password = secrets.token_urlsafe(9)
            add_user(db, DEMO_USER, password, "admin")
        campaign = Campaign(name="Autumn sale", site_id=site_id, subject="Autumn sale: 20% off shoes",
                            status=CampaignStatus.sent)
        db.add(campaign)
        db.flush()
        campaign_id = str(campaign.id)
    rng = random.Random(seed)  # noqa: S311 - repeatable demo data, nothing secret
    people = []
    contact_rows = []
    now = time.time()
    for n in range(contacts):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}.{n}@example.com".lower()
        contact_id = contact_id_for(email)
        people.append((contact_id, email))
        created = int(now - rng.uniform(40, 400) * 86400)
        contact_rows.append({"contact_id": contact_id, "email": email, "first_name": first, "last_name": last,
                             "status": "subscribed", "source": "import", "created_at": created,
                             "updated_at": created, "version": 1, "deleted": 0,
                             "attrs.key": ["plan", "city"],
                             "attrs.value": [rng.choice(["free", "free", "pro"]),
                                             rng.choice(["Belgrade", "Berlin", "London", "Paris"])]})
    runtime.store.insert("contacts", contact_rows)
    batch: list[dict[str, Any]] = []
    total = 0
    identities = []
    unsubscribed = set()
    for row in generate(rng, site_id, now, visitors, days, people, campaign_id):
        batch.append(row)
        if row["name"] == "unsubscribe":
            unsubscribed.add(row["contact_id"])
        if row["name"] == "pageview" and row["contact_id"] and row["visitor_id"]:
            identities.append({"site_id": site_id, "visitor_id": row["visitor_id"],
                               "contact_id": row["contact_id"], "method": "email_link", "ts": row["ts"]})
        if len(batch) >= 20_000:
            runtime.store.insert("events", batch)
            total += len(batch)
            batch = []
    runtime.store.insert("events", batch)
    total += len(batch)
    runtime.store.insert("identities", identities)
    runtime.store.insert("contacts", [{**row, "status": "unsubscribed", "version": 2, "updated_at": int(now)}
                                      for row in contact_rows if row["contact_id"] in unsubscribed])
    return DemoResult(site_id=site_id, password=password, events=total, contacts=contacts)
