"""Demo data made by the collector's own pipeline, so a newcomer sees a live dashboard at once.

One shop site, a few thousand visitors over 30 days (sessions of several pages with engaged time
and scroll depth, search, social, email and direct traffic, UTM campaigns, devices, countries, a
share of crawlers), 600 contacts, and one sent campaign with human opens and clicks, Apple Mail
Privacy Protection opens and link-scanner clicks, unsubscribes, and the clickers' later visits. The
CRM examples (templates, segments, a disabled rule) come from ``tracker.demo_crm``; the campaign is
its newsletter template, and its clicks are on that email's links, with the mailer's link ids.

No row is written by hand where the collector makes it: the demo plays what browsers and mail
clients would send (beacons as the snippet sends them, pixel loads and clicks with real signed
tokens, the unsubscribe button) through ``tracker.collect.pipeline.Pipeline``, with real user
agents and addresses from real networks, at the moments they would have happened (the pipeline's
``now``). Browser, OS, device, bot and machine verdicts, referrer sources, countries and the
visitor -> contact hand-off are therefore the collector's own, and the ``identities`` rows come from
the materialized view as they do for real traffic. Only what no odnos code makes yet is written
here: the contacts (as an import would), and the campaign's ``email_sent`` rows and send ledger (as the
mailer leaves them, so that sending the campaign again mails nobody twice).

Seeded: the same seed gives the same visitors, sessions, event ids, verdicts and contacts, with
times relative to the moment of loading. The site id, the site's identify secret and the dashboard
password stay random: they are secrets of the control plane, not demo data. The visitor and session
ids travel in the beacons, as the snippet sends them, so no daily salt is involved.
"""

from __future__ import annotations

import random
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
from sqlalchemy import insert

from tracker.collect.beacon import parse_body
from tracker.collect.clients import Client
from tracker.collect.pipeline import Pipeline
from tracker.contacts import contact_id_for
from tracker.control.models import SendStatus
from tracker.crm.campaigns import TRIGGER as CAMPAIGN_TRIGGER
from tracker.crm.mailer.message import message_id_header
from tracker.enrich.sessions import FILE_NAME, SessionTracker
from tracker.events import event_row
from tracker.runtime import Runtime
from tracker.store.base import EventStore
from tracker.tokens import TokenCodec

DEMO_SITE_NAME = "Demo Shop"
DEMO_DOMAIN = "shop.example.com"
DEMO_USER = "demo@example.com"
SHOP = f"https://{DEMO_DOMAIN}"
DEMO_SENDER = f"Shop <news@{DEMO_DOMAIN}>"  # the From of the demo campaign
BATCH_ROWS = 20_000

PAGES = [("/", 30), ("/products", 14), ("/products/blue-shoes", 9), ("/products/red-hat", 7),
         ("/products/green-scarf", 5), ("/blog/choosing-running-shoes", 6), ("/blog/autumn-lookbook", 4),
         ("/pricing", 5), ("/about", 3), ("/signup", 4), ("/cart", 4), ("/checkout", 2)]
LANDINGS = ["/", "/", "/products", "/blog/autumn-lookbook", "/products/blue-shoes"]
SOURCES = [  # referrer, UTM query of the landing page, weight
    ("", "", 30), ("https://www.google.com/", "", 28), ("https://duckduckgo.com/", "", 4),
    ("https://www.bing.com/", "", 4), ("https://www.facebook.com/", "", 7), ("https://t.co/x1y2", "", 4),
    ("https://www.reddit.com/r/running/", "", 3), ("https://news.ycombinator.com/", "", 2),
    ("https://runnersblog.example.org/best-shoes", "", 4),
    ("https://www.instagram.com/", "utm_source=instagram&utm_medium=social&utm_campaign=autumn-sale", 5),
    ("https://www.google.com/", "utm_source=google&utm_medium=cpc&utm_campaign=brand-search", 5),
]
_CHROME = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0"
_IOS = "CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
BROWSERS = [  # user agent, weight
    (f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_CHROME} Safari/537.36", 24),
    (f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_CHROME} Safari/537.36 Edg/124.0.2478.80", 7),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", 4),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Safari/605.1.15", 9),
    (f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_CHROME} Safari/537.36", 7),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 2),
    (f"Mozilla/5.0 (iPhone; {_IOS} Version/17.4.1 Mobile/15E148 Safari/604.1", 21),
    (f"Mozilla/5.0 (Linux; Android 10; K) {_CHROME} Mobile Safari/537.36", 18),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", 3),
    ("Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Mobile/15E148 Safari/604.1", 5),
]
# Two /24 networks of access providers per country, each wholly in that country in geoip2fast's
# database (tests/test_demo.py checks every address); a visitor gets one address in one of them.
COUNTRIES = [  # code, networks, weight
    ("US", ("99.6.240", "24.118.77"), 28), ("DE", ("93.199.7", "91.45.176"), 11),
    ("GB", ("86.150.218", "81.149.134"), 9), ("RS", ("178.149.138", "109.92.200"), 8),
    ("FR", ("92.51.136", "90.57.57"), 7), ("NL", ("77.173.165", "84.82.200"), 5),
    ("CA", ("142.242.34", "142.185.205"), 5), ("IN", ("103.251.94", "117.238.153"), 5),
    ("BR", ("187.127.136", "177.172.176"), 4), ("ES", ("80.102.244", "83.36.99"), 4),
    ("IT", ("151.90.40", "79.57.12"), 4), ("SE", ("90.237.214", "81.237.242"), 3),
    ("PL", ("89.17.250", "89.68.143"), 3), ("JP", ("126.210.248", "61.203.161"), 2),
    ("AU", ("101.162.162", "120.151.91"), 2),
]
BOTS = [  # user agent, network it crawls from
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "66.249.66"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
     "+http://www.google.com/bot.html) Chrome/124.0.6367.118 Safari/537.36", "66.249.66"),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "157.55.39"),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "54.36.148"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 "
     "Safari/537.36", "3.14.207"),
]
APPLE_MPP_NET = "17.58.63"  # Apple's relay, fetching every image when Mail downloads the message
APPLE_MPP_UA = "Mozilla/5.0"
GMAIL_PROXY_UA = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
GMAIL_PROXY_NET = "66.102.8"
SCANNER_NET = "40.94.0"  # a mail security gateway's cloud, following every link of a message
CAMPAIGN_UTM = "utm_source=newsletter&utm_medium=email&utm_campaign=autumn-sale"
FIRST = ["Ana", "Marko", "Jelena", "Nikola", "Sara", "Luka", "Mila", "Stefan", "Eva", "David", "Lena",
         "Petar", "Maja", "Ivan", "Nina", "Tom", "Emma", "Noah", "Olivia", "Liam"]
LAST = ["Petrovic", "Jovanovic", "Smith", "Muller", "Garcia", "Rossi", "Novak", "Dubois", "Kowalski",
        "Johnson", "Nikolic", "Brown", "Schmidt", "Martin", "Horvat"]
SESSION_TIMEOUT = 30 * 60  # the snippet's rule for starting a new session id


@dataclass(frozen=True)
class DemoResult:
    site_id: str
    password: str | None
    events: int
    contacts: int
    crm: str  # the line saying which CRM examples were made (tracker.demo_crm)


class _Batches:
    """The pipeline's queue for the demo: rows inserted in large batches, without spool or writer."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.rows: list[dict[str, Any]] = []
        self.total = 0

    def submit(self, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(rows)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        self.store.insert("events", self.rows)
        self.total += len(self.rows)
        self.rows = []


@dataclass
class _Browser:
    """One browser of one person: its address and agent, and the ids the snippet keeps in storage."""

    client: Client
    visitor: str
    session: str = ""
    last_seen: float = float("-inf")


class _Player:
    """Plays the hits of the demo's people through the pipeline, at simulated times up to ``now``."""

    def __init__(self, runtime: Runtime, site_id: str, campaign_id: str, links: dict[str, str], seed: int,
                 now: float) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - repeatable demo data, nothing secret
        ids = random.Random(f"odnos demo event ids {seed}")  # noqa: S311 - apart, so ids stay stable
        self.site_id, self.campaign_id, self.now = site_id, campaign_id, now
        self.links = links  # the campaign email's link id -> target, as its template has them
        self.clock = now  # what the token codec reads: tokens are signed and checked at hit time
        self.codec = TokenCodec(runtime.keys, clock=lambda: self.clock)
        self.out = _Batches(runtime.store)
        self.control = runtime.control
        self.new_id = lambda: str(uuid.UUID(int=ids.getrandbits(128), version=4))
        # The demo's beacons carry the snippet's ids, so they never consult the sessions table.
        sessions = SessionTracker(runtime.settings.data_path / FILE_NAME)
        self.pipeline = Pipeline(runtime.control, self.codec, self.out, sessions=sessions, new_id=self.new_id)

    def _pick(self, weighted: list[tuple]) -> tuple:
        return self.rng.choices(weighted, weights=[w[-1] for w in weighted])[0]

    def _id(self) -> str:
        """An id in the alphabet of the snippet's ``random()`` (base 36)."""
        value, digits = self.rng.getrandbits(80), []
        while value:
            value, digit = divmod(value, 36)
            digits.append("0123456789abcdefghijklmnopqrstuvwxyz"[digit])
        return "".join(digits) or "0"

    def _address(self, networks: tuple[str, ...] | str) -> str:
        network = networks if isinstance(networks, str) else self.rng.choice(networks)
        return f"{network}.{self.rng.randint(1, 254)}"

    def _person_client(self) -> Client:
        """A person's browser: an address in their country's networks and a browser's user agent."""
        _, networks, _ = self._pick(COUNTRIES)
        return Client(self._address(networks), self._pick(BROWSERS)[0])

    def _at(self, ts: float) -> bool:
        """Move the clock to ``ts``; False when that moment has not come yet (the hit is skipped)."""
        self.clock = ts
        return ts <= self.now

    # -- the site -----------------------------------------------------------------------------

    def _beacon(self, browser: _Browser, ts: float, event: dict[str, Any]) -> None:
        """One beacon as the snippet sends it, parsed and validated like the collector's POST /e."""
        body = {"site": self.site_id, "ts": int(ts * 1000), "visitor": browser.visitor,
                "session": browser.session, **event}
        self.pipeline.beacon(parse_body(orjson.dumps(body), 1), browser.client, now=ts)

    def visit(self, browser: _Browser, start: float, landing: str, referrer: str, odn: str = "") -> None:
        """One visit of 1..8 pages, sent as the snippet sends it; hits after ``now`` are not sent.

        The first pageview carries the referrer (and the hand-off), each page's engagement is reported
        on leaving it, a few pages fire custom events; a new session id after 30 idle minutes.
        """
        rng = self.rng
        if start - browser.last_seen > SESSION_TIMEOUT:
            browser.session = self._id()
        pages = 1 if rng.random() < 0.42 else min(8, 1 + int(rng.expovariate(0.45)))
        ts, url = start, landing
        for index in range(pages):
            if not self._at(ts):
                return
            pageview = {"name": "pageview", "url": url, "referrer": referrer}
            if index == 0 and odn:
                pageview["odn"] = odn
            self._beacon(browser, ts, pageview)
            path = urlsplit(url).path
            engaged = int(min(600_000, rng.lognormvariate(10.2, 0.9)))
            leave = ts + engaged / 1000 + 1
            if path.startswith("/products/") and rng.random() < 0.18:
                self._beacon(browser, ts + engaged / 2000, {"name": "add_to_cart", "url": url,
                                                             "props": {"product": path.rsplit("/", 1)[1]}})
            if path == "/signup" and rng.random() < 0.5:
                self._beacon(browser, ts + engaged / 2000, {"name": "signup", "url": url,
                                                             "props": {"plan": rng.choice(["free", "pro"])}})
            browser.last_seen = leave
            if not self._at(leave):
                return  # still on the page
            self._beacon(browser, leave, {"name": "engagement", "url": url, "engaged_ms": engaged,
                                          "scroll": rng.choice([25, 40, 60, 75, 90, 100])})
            referrer, url = url, SHOP + self._pick(PAGES)[0]
            ts = leave + rng.uniform(3, 40)

    def visitors(self, count: int, days: int) -> None:
        """``count`` people, each on one browser, coming back a few times within days of their first visit."""
        rng, span = self.rng, days * 86400
        for _ in range(count):
            browser = _Browser(self._person_client(), self._id())
            referrer, utm, _ = self._pick(SOURCES)
            first = self.now - span * rng.random() ** 0.8
            starts = sorted(min(self.now - 60, first + rng.uniform(0, 5 * 86400))
                            for _ in range(1 + int(rng.expovariate(1.6))))
            for start in starts:
                landing = SHOP + rng.choice(LANDINGS) + (f"?{utm}" if utm else "")
                self.visit(browser, start, landing, referrer)

    def crawlers(self, count: int, days: int) -> None:
        """Crawlers that run the page's scripts: one page each, with fresh storage every time."""
        for _ in range(count):
            user_agent, network = self.rng.choice(BOTS)
            ts = self.now - days * 86400 * self.rng.random()
            browser = _Browser(Client(self._address(network), user_agent), self._id(), self._id())
            if self._at(ts):
                self._beacon(browser, ts, {"name": "pageview", "url": SHOP + self._pick(PAGES)[0]})

    # -- the campaign -------------------------------------------------------------------------

    def campaign(self, contacts: list[tuple[str, str]], sent_at: float) -> tuple[set[str], list[dict]]:
        """Send the campaign to every contact and play what follows; returns who unsubscribed, and
        the send ledger's rows as the mailer leaves them (so a later send mails nobody twice)."""
        rng, unsubscribed, ledger = self.rng, set(), []
        for number, (contact_id, _email) in enumerate(contacts, 1):
            message_id = f"{self.campaign_id}.{number}"
            send = sent_at + rng.uniform(0, 600)
            at = datetime.fromtimestamp(send, UTC)
            ledger.append({"campaign_id": int(self.campaign_id), "contact_id": contact_id,
                           "trigger_key": CAMPAIGN_TRIGGER, "status": SendStatus.sent, "created_at": at,
                           "sent_at": at, "smtp_message_id": message_id_header(message_id, DEMO_SENDER)})
            self._at(send)  # the mailer signs the message's tokens as it sends
            pixel = self.codec.open(contact_id, message_id)
            links = {link: self.codec.click(contact_id, message_id, link, target)
                     for link, target in self.links.items()}
            unsubscribe = self.codec.unsubscribe(contact_id, self.campaign_id)
            self.out.submit([event_row("email_sent", send, new_id=self.new_id, received_at=int(send),
                                       source="mailer", site_id=self.site_id, contact_id=contact_id,
                                       campaign_id=self.campaign_id, message_id=message_id)])
            if rng.random() < 0.33 and self._at(send + rng.uniform(2, 60)):
                self.pipeline.open(pixel, Client(self._address(APPLE_MPP_NET), APPLE_MPP_UA), now=self.clock)
            if rng.random() < 0.04:  # a security gateway follows every link within seconds
                scanner = Client(self._address(SCANNER_NET), BROWSERS[0][0], rng.choice(["HEAD", "GET"]))
                for token in links.values():
                    if self._at(send + rng.uniform(1, 5)):
                        self.pipeline.click(token, scanner, now=self.clock)
            if rng.random() < 0.31 and self._reader(pixel, links, unsubscribe, send):
                unsubscribed.add(contact_id)
        return unsubscribed, ledger

    def _reader(self, pixel: str, links: dict[str, str], unsubscribe: str, send: float) -> bool:
        """A person opens the message (through Gmail's image proxy or their own client) and maybe
        clicks a link and browses the shop, or unsubscribes; True when they unsubscribed."""
        rng = self.rng
        browser = _Browser(self._person_client(), self._id())
        reader = browser.client
        if rng.random() < 0.3:
            reader = Client(self._address(GMAIL_PROXY_NET), GMAIL_PROXY_UA)
        opened = send + rng.expovariate(1 / 20000)
        for _ in range(1 + int(rng.expovariate(1.5))):
            if self._at(opened):
                self.pipeline.open(pixel, reader, now=opened)
            opened += rng.uniform(600, 86400)
        if rng.random() < 0.3:
            clicked = opened + rng.uniform(5, 300)
            if self._at(clicked):
                token = links[rng.choice(list(links))]
                location = self.pipeline.click(token, browser.client, now=clicked).location
                base, _, query = location.partition("?")
                params = dict(parse_qsl(query))
                odn = params.pop("_odn", "")  # the snippet takes the hand-off out of the address
                landing = f"{base}?{urlencode(params)}"
                self.visit(browser, clicked + 1, landing, "", odn)  # mail apps send no referrer
            return False
        if rng.random() < 0.03 and self._at(opened + 30):
            wanted = self.codec.read_unsubscribe(unsubscribe)  # what the unsubscribe page's button does
            self.pipeline.unsubscribe(wanted.contact_id, wanted.list_id, browser.client, "page",
                                      now=self.clock, sessions=self.control.sessions)
            return True
        return False


def _contacts(rng: random.Random, count: int, now: float) -> list[dict[str, Any]]:
    """Contact rows as an import writes them (the pipeline does not make contacts)."""
    rows = []
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}.{n}@example.com".lower()
        created = int(now - rng.uniform(40, 400) * 86400)
        rows.append({"contact_id": contact_id_for(email), "email": email, "first_name": first,
                     "last_name": last, "status": "subscribed", "source": "import", "created_at": created,
                     "updated_at": created, "version": 1, "deleted": 0, "attrs.key": ["plan", "city"],
                     "attrs.value": [rng.choice(["free", "free", "pro"]),
                                     rng.choice(["Belgrade", "Berlin", "London", "Paris"])]})
    return rows


def load_demo(runtime: Runtime, *, visitors: int = 3000, days: int = 30, contacts: int = 600,
              seed: int = 7, now: float | None = None) -> DemoResult | None:
    """Fill the stores with demo data ending at ``now`` (default: the clock); None when the demo site
    is there already (safe to run twice)."""
    from tracker.control.models import Campaign, CampaignStatus, SendLedger, User
    from tracker.control.sites import add_site, list_sites
    from tracker.control.users import add_user
    from tracker.demo_crm import NEWSLETTER_SUBJECT, add_examples, newsletter_links

    now = time.time() if now is None else now
    sent_at = now - 10 * 86400
    with runtime.control.session() as db:
        if any(site.name == DEMO_SITE_NAME for site in list_sites(db)):
            return None
    crm = add_examples(runtime)
    with runtime.control.session() as db:
        site_id = add_site(db, DEMO_SITE_NAME, [DEMO_DOMAIN]).id
        password = None
        if db.query(User).filter(User.email == DEMO_USER).first() is None:
            password = secrets.token_urlsafe(9)
            add_user(db, DEMO_USER, password, "admin")
        campaign = Campaign(name="Autumn sale", site_id=site_id, subject=NEWSLETTER_SUBJECT,
                            template_id=crm.newsletter_id, status=CampaignStatus.sent,
                            sent_at=datetime.fromtimestamp(sent_at, UTC))
        db.add(campaign)
        db.flush()
        campaign_id = str(campaign.id)
    player = _Player(runtime, site_id, campaign_id, newsletter_links(runtime, crm.newsletter_id), seed, now)
    contact_rows = _contacts(player.rng, contacts, now)
    runtime.store.insert("contacts", contact_rows)
    player.visitors(visitors, days)
    player.crawlers(visitors // 12, days)
    mailed = [(row["contact_id"], row["email"]) for row in contact_rows]
    unsubscribed, ledger = player.campaign(mailed, sent_at)
    player.out.flush()
    with runtime.control.session() as db:
        db.execute(insert(SendLedger), ledger)
    runtime.store.insert("contacts", [{**row, "status": "unsubscribed", "version": 2, "updated_at": int(now)}
                                      for row in contact_rows if row["contact_id"] in unsubscribed])
    return DemoResult(site_id=site_id, password=password, events=player.out.total, contacts=contacts,
                      crm=crm.summary())
