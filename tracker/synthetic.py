"""Synthetic events in bulk, generated inside ClickHouse: millions of realistic rows in minutes.

The demo (``tracker.demo``) plays a few thousand visits through the collector; that is far too slow
for the 10 M and 100 M events the dashboard's speed budget is measured at. Here the rows never
pass through Python: each load is a few ``INSERT INTO events SELECT ... FROM numbers(n)`` whose
columns are derived from ``cityHash64(seed, ...)`` of the row's position, so the same seed gives the
same visitors, sessions, pages and campaigns on chDB and on a server (only ``event_id`` is random,
from ``generateUUIDv4``). Materialized views see these inserts like any other, so rollups fill too.

The shape, per ~100 events: visitors with one to three sessions spread over the days (returning
after 1-13 days, for retention cohorts), 42 % one-page sessions, up to 7 pages otherwise, each
pageview followed by an engagement event with an engaged time of 1-100 s (most pages) and scroll
depth, custom events (``add_to_cart``, ``signup``, ``purchase`` with a value, ``outbound``), 30 % of
sessions walking the shop funnel ``/ -> /products -> /products/blue-shoes -> /cart -> /checkout``,
referrers from search, social, email and direct with UTM tags on some, devices, browsers, systems
and countries by visitor, 4 % crawler hits flagged as bots; and about 5 % email events: campaigns
sent to every contact, Apple Mail Privacy Protection opens and link-scanner clicks flagged as
machines, human opens and clicks, bounces, unsubscribes, survey scores (``survey_response`` with
``props score``), and the clickers' visits to the site carrying their ``contact_id``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from tracker.queries.finish_sessions import finish_sessions
from tracker.store.base import EventStore

DOMAIN = "shop.example.com"
FUNNEL = ["/", "/products", "/products/blue-shoes", "/cart", "/checkout"]
# (value, weight): weighted choices become arrays with each value repeated `weight` times, indexed
# by a hash in SQL.
PAGES = [("/", 24), ("/products", 14), ("/products/blue-shoes", 9), ("/products/red-hat", 7),
         ("/products/green-scarf", 5), ("/blog/choosing-running-shoes", 6), ("/blog/autumn-lookbook", 4),
         ("/pricing", 5), ("/about", 3), ("/signup", 5), ("/cart", 5), ("/checkout", 3), ("/contact", 2)]
LANDINGS = [("/", 6), ("/products", 2), ("/blog/autumn-lookbook", 1), ("/products/blue-shoes", 1),
            ("/blog/choosing-running-shoes", 1)]
SOURCES = [  # (referrer, domain, source, utm_source, utm_medium, utm_campaign), weight
    (("", "", "direct", "", "", ""), 30),
    (("https://www.google.com/", "google.com", "search", "", "", ""), 26),
    (("https://duckduckgo.com/", "duckduckgo.com", "search", "", "", ""), 4),
    (("https://www.bing.com/", "bing.com", "search", "", "", ""), 4),
    (("https://www.facebook.com/", "facebook.com", "social", "", "", ""), 7),
    (("https://t.co/x1y2", "t.co", "social", "", "", ""), 4),
    (("https://www.reddit.com/r/running/", "reddit.com", "social", "", "", ""), 3),
    (("https://runnersblog.example.org/best-shoes", "runnersblog.example.org", "other", "", "", ""), 4),
    (("https://www.instagram.com/", "instagram.com", "social", "instagram", "social", "autumn-sale"), 5),
    (("https://www.google.com/", "google.com", "search", "google", "cpc", "brand-search"), 5),
    (("", "", "email", "newsletter", "email", "weekly"), 4),
]
DEVICES = [  # (device, browser, os), weight
    (("desktop", "Chrome", "Windows"), 24), (("desktop", "Edge", "Windows"), 7),
    (("desktop", "Firefox", "Windows"), 4), (("desktop", "Safari", "Mac OS X"), 9),
    (("desktop", "Chrome", "Mac OS X"), 7), (("desktop", "Firefox", "Linux"), 2),
    (("mobile", "Mobile Safari", "iOS"), 21), (("mobile", "Chrome Mobile", "Android"), 18),
    (("mobile", "Samsung Internet", "Android"), 3), (("tablet", "Mobile Safari", "iOS"), 5),
]
COUNTRIES = [("US", 28), ("DE", 11), ("GB", 9), ("RS", 8), ("FR", 7), ("NL", 5), ("CA", 5), ("IN", 5),
             ("BR", 4), ("ES", 4), ("IT", 4), ("SE", 3), ("PL", 3), ("JP", 2), ("AU", 2)]
BOTS = [("Googlebot", "Other", "crawler_list"), ("bingbot", "Other", "crawler_list"),
        ("AhrefsBot", "Other", "crawler_list"), ("HeadlessChrome", "Linux", "headless")]
LINKS = ["/products/blue-shoes", "/products/red-hat", "/blog/autumn-lookbook"]

COLUMNS = ("event_id, site_id, name, ts, ts_ms, received_at, source, visitor_id, session_id, contact_id, "
           "url, hostname, pathname, referrer, referrer_domain, referrer_source, utm_source, utm_medium, "
           "utm_campaign, browser, os, device, country, is_bot, bot_reason, is_machine, machine_reason, "
           "campaign_id, message_id, link_id, target_url, engaged_ms, scroll, `props.key`, `props.value`")

# One row per session slot (three slots per visitor: the first visit and two possible returns), then
# one row per event of the session through arrayJoin; rows that do not happen are filtered out.
# Page i starts at start + 120 s * i (+ up to 14 s), its engagement event follows after the engaged
# time (at most 100 s), its custom event 5 s in, so a session's events never overlap the next page.
WEB_SQL = """
SELECT
    generateUUIDv4(), %(site)s, name, toDateTime(ts, 'UTC'), toUInt16(hp %% 1000), toDateTime(ts, 'UTC'),
    'synthetic', visitor_id, session_id, '', url, %(domain)s, path, referrer, referrer_domain,
    referrer_source, utm_source, utm_medium, utm_campaign, browser, os, device, country, toUInt8(bot),
    bot_reason, toUInt8(0), '', '', '', '', '', toUInt32(engaged_ms), toUInt8(scroll), props_key, props_value
FROM
(
    SELECT
        *,
        arrayJoin(range(pages * 3)) AS j,
        intDiv(j, 3) AS i,
        j %% 3 AS kind,
        cityHash64(%(seed)s, 'event', s, j) AS hp,
        cityHash64(%(seed)s, 'page', s, i) AS hpage,
        paths[i + 1] AS path,
        start + i * 120 + hpage %% 15 AS page_ts,
        toUInt32(least(100, floor(pow(2, (hpage %% 700) / 100)))) AS engaged_s,
        multiIf(path LIKE '/products/%%' AND hp %% 100 < 18, 'add_to_cart',
                path = '/signup' AND hp %% 100 < 50, 'signup',
                path = '/checkout' AND hp %% 100 < 60, 'purchase',
                hp %% 100 < 3, 'outbound', '') AS custom,
        multiIf(kind = 0, 'pageview', kind = 1, 'engagement', custom) AS name,
        page_ts + multiIf(kind = 0, 0, kind = 1, engaged_s + 1, 5) AS ts,
        kind = 0 AND i = 0 AS landing,
        if(landing, src_utm_source, '') AS utm_source,
        if(landing, src_utm_medium, '') AS utm_medium,
        if(landing, src_utm_campaign, '') AS utm_campaign,
        multiIf(landing, src_referrer, kind = 0, concat('https://', %(domain)s, paths[i]), '') AS referrer,
        multiIf(landing, src_domain, kind = 0, %(domain)s, '') AS referrer_domain,
        multiIf(landing, src_source, kind = 0, 'internal', 'direct') AS referrer_source,
        concat('https://', %(domain)s, path, if(utm_source = '', '', concat('?utm_source=', utm_source,
               '&utm_medium=', utm_medium, '&utm_campaign=', utm_campaign)))
            AS url,
        if(kind = 1, engaged_s * 1000 + hp %% 1000, 0) AS engaged_ms,
        if(kind = 1, [25, 50, 75, 100][1 + hp %% 4], 0) AS scroll,
        multiIf(name = 'add_to_cart', ['product'], name = 'purchase', ['value'], name = 'outbound', ['url'],
                emptyArrayString()) AS props_key,
        multiIf(name = 'add_to_cart', [substring(path, 11)], name = 'purchase', [toString(10 + hp %% 190)],
                name = 'outbound', ['https://partner.example.net/'], emptyArrayString()) AS props_value
    FROM
    (
        SELECT
            number AS s,
            intDiv(s, 3) AS v,
            s %% 3 AS k,
            cityHash64(%(seed)s, 'visitor', v) AS hv,
            cityHash64(%(seed)s, 'session', s) AS hs,
            hs %% 100 < 4 AS bot,
            toUInt64(%(end)s - %(span)s * ((hv %% 1000003) / 1000003)
                     + k * 86400 * (1 + intDiv(hs, 7) %% 13) + intDiv(hs, 11) %% 7200) AS start,
            if(bot, 1, if(intDiv(hs, 13) %% 100 < 42, 1, 2 + intDiv(hs, 17) %% 6)) AS pages,
            NOT bot AND intDiv(hs, 19) %% 100 < 30 AS funnel,
            1 + intDiv(hs, 23) %% length(%(sources_referrer)s) AS src,
            %(sources_referrer)s[src] AS src_referrer,
            %(sources_domain)s[src] AS src_domain,
            %(sources_source)s[src] AS src_source,
            %(sources_utm_source)s[src] AS src_utm_source,
            %(sources_utm_medium)s[src] AS src_utm_medium,
            %(sources_utm_campaign)s[src] AS src_utm_campaign,
            1 + hv %% length(%(devices)s) AS dev,
            1 + intDiv(hs, 29) %% length(%(bots)s) AS bot_index,
            if(bot, 'bot', %(devices)s[dev]) AS device,
            if(bot, %(bots)s[bot_index], %(browsers)s[dev]) AS browser,
            if(bot, %(bot_systems)s[bot_index], %(systems)s[dev]) AS os,
            if(bot, %(bot_reasons)s[bot_index], '') AS bot_reason,
            if(bot, 'US', %(countries)s[1 + intDiv(hv, 31) %% length(%(countries)s)]) AS country,
            lower(hex(if(bot, hs, hv))) AS visitor_id,
            lower(hex(cityHash64(%(seed)s, 'sid', s))) AS session_id,
            arrayMap(x -> if(funnel AND x < 5, %(funnel)s[x + 1],
                             if(x = 0, %(landings)s[1 + intDiv(hs, 37) %% length(%(landings)s)],
                                %(pages)s[1 + cityHash64(%(seed)s, 'path', s, x) %% length(%(pages)s)])),
                     range(pages)) AS paths
        FROM numbers(%(first)s, %(count)s)
        WHERE (k = 0 OR hs %% 100 < 30) AND start < %(end)s - 1200
    )
)
WHERE kind = 0 OR (kind = 1 AND NOT bot AND hp %% 10 != 0) OR (kind = 2 AND NOT bot AND custom != '')
"""

# One row per message (campaign x contact), then one row per event slot of the message: 0 sent,
# 1 bounce, 2 machine open (Apple MPP), 3-5 human opens, 6-8 scanner clicks (every link within
# seconds of the send), 9 human click, 10 unsubscribe, 11 survey answer, 12-14 the clicker's visit.
EMAIL_SQL = """
SELECT
    generateUUIDv4(), %(site)s, name, toDateTime(ts, 'UTC'), toUInt16(hp %% 1000), toDateTime(ts, 'UTC'),
    'synthetic', visitor_id, session_id, contact_id, url, if(visit, %(domain)s, ''), pathname,
    '', '', if(visit AND slot = 12, 'email', if(visit, 'internal', '')),
    if(visit AND slot = 12, 'newsletter', ''), if(visit AND slot = 12, 'email', ''),
    if(visit AND slot = 12, campaign_id, ''),
    browser, os, device, if(person, country, ''), toUInt8(0), '', toUInt8(machine),
    multiIf(slot = 2, 'apple_mpp', slot IN (6, 7, 8), 'scanner_ua', ''),
    if(visit, '', campaign_id), if(visit, '', message_id), link_id, target_url,
    toUInt32(if(slot = 13, 5000 + hp %% 60000, 0)), toUInt8(0), props_key, props_value
FROM
(
    SELECT
        *,
        arrayJoin(range(15)) AS slot,
        cityHash64(%(seed)s, 'mail-event', m, slot) AS hp,
        slot >= 12 AS visit,
        slot IN (2, 6, 7, 8) AS machine,
        multiIf(slot = 0, 'email_sent', slot = 1, 'email_bounce', slot IN (2, 3, 4, 5), 'email_open',
                slot IN (6, 7, 8, 9), 'email_click', slot = 10, 'unsubscribe', slot = 11, 'survey_response',
                slot = 13, 'engagement', slot = 14, 'signup', 'pageview') AS name,
        toUInt64(multiIf(slot <= 1, sent, slot = 2, sent + 2 + hp %% 58,
                         slot <= 5, opened + toUInt64(slot - 3) * 7200,
                         slot <= 8, sent + 1 + hp %% 4, slot = 9, clicked, slot <= 11, opened + 40,
                         clicked + 2 + toUInt64(slot - 12) * 30)) AS ts,
        multiIf(slot IN (6, 7, 8), toUInt64(slot - 5), slot = 9, toUInt64(click_link), toUInt64(0)) AS link,
        if(link = 0, '', toString(link)) AS link_id,
        if(link = 0, '', concat('https://', %(domain)s, %(links)s[greatest(link, 1)])) AS target_url,
        if(visit, %(links)s[click_link], '') AS pathname,
        if(visit, concat('https://', %(domain)s, pathname), '') AS url,
        if(visit, lower(hex(cityHash64(%(seed)s, 'mail-visitor', contact))), '') AS visitor_id,
        if(visit, lower(hex(cityHash64(%(seed)s, 'mail-session', m))), '') AS session_id,
        slot IN (3, 4, 5, 9) OR visit AS person,
        multiIf(machine, 'other', person, device_, '') AS device,
        multiIf(machine, 'Other', person, browser_, '') AS browser,
        if(person, os_, '') AS os,
        multiIf(slot = 11, ['score'], slot = 14, ['plan'], emptyArrayString()) AS props_key,
        multiIf(slot = 11, [toString(score)], slot = 14, ['free'], emptyArrayString()) AS props_value
    FROM
    (
        SELECT
            number AS m,
            m %% %(campaigns)s AS c,
            intDiv(m, %(campaigns)s) AS contact,
            cityHash64(%(seed)s, 'message', m) AS hm,
            %(campaign_ids)s[c + 1] AS campaign_id,
            concat(campaign_id, '.', toString(contact)) AS message_id,
            lower(hex(cityHash64(%(seed)s, 'contact', contact))) AS contact_id,
            toUInt64(%(end)s - 86400 - (%(span)s - 86400) * (c + 1) / (%(campaigns)s + 1)
                     + hm %% 600) AS sent,
            hm %% 100 < 2 AS bounced,
            NOT bounced AND intDiv(hm, 3) %% 100 < 33 AS mpp,
            NOT bounced AND intDiv(hm, 5) %% 100 < 31 AS human_open,
            1 + (intDiv(hm, 7) %% 3 = 0) + (intDiv(hm, 11) %% 9 = 0) AS opens,
            NOT bounced AND intDiv(hm, 13) %% 100 < 4 AS scanned,
            human_open AND intDiv(hm, 17) %% 100 < 30 AS human_click,
            1 + intDiv(hm, 19) %% 3 AS click_link,
            sent + 60 + intDiv(hm, 23) %% 40000 AS opened,
            opened + 5 + intDiv(hm, 29) %% 300 AS clicked,
            human_open AND NOT human_click AND intDiv(hm, 31) %% 100 < 3 AS unsubscribed,
            human_open AND intDiv(hm, 37) %% 100 < 10 AS surveyed,
            toUInt8(intDiv(hm, 41) %% 11) AS score,
            human_click AND intDiv(hm, 43) %% 100 < 50 AS visited,
            1 + intDiv(hm, 47) %% length(%(devices)s) AS dev,
            %(devices)s[dev] AS device_,
            %(browsers)s[dev] AS browser_,
            %(systems)s[dev] AS os_,
            %(countries)s[1 + intDiv(hm, 53) %% length(%(countries)s)] AS country
        FROM numbers(%(first)s, %(count)s)
    )
    WHERE multiIf(slot = 0, 1, slot = 1, bounced, slot = 2, mpp, slot <= 5, human_open AND slot - 3 < opens,
                  slot <= 8, scanned, slot = 9, human_click, slot = 10, unsubscribed, slot = 11, surveyed,
                  slot = 14, visited AND hm %% 5 = 0, visited)
)
"""

CAMPAIGN_IDS = [f"syn-{n}" for n in range(1, 9)]
WEB_SHARE = 0.95
CHUNK_EVENTS = 5_000_000


@dataclass(frozen=True)
class SyntheticLoad:
    site_id: str
    events: int
    seconds: float
    start: int  # epoch seconds: the first possible event time
    end: int  # epoch seconds: no event at or after it


def _weighted(pairs: list[tuple]) -> list:
    return [value for value, weight in pairs for _ in range(weight)]


def _params(site_id: str, seed: int, end: int, days: int) -> dict:
    sources, devices = _weighted(SOURCES), _weighted(DEVICES)
    return {
        "site": site_id, "seed": seed, "end": end, "span": days * 86400, "domain": DOMAIN,
        "pages": _weighted(PAGES), "landings": _weighted(LANDINGS), "funnel": FUNNEL,
        "countries": _weighted(COUNTRIES), "links": LINKS,
        **{f"sources_{name}": [row[n] for row in sources] for n, name in enumerate(
            ("referrer", "domain", "source", "utm_source", "utm_medium", "utm_campaign"))},
        "devices": [d[0] for d in devices], "browsers": [d[1] for d in devices],
        "systems": [d[2] for d in devices], "bots": [b[0] for b in BOTS], "bot_systems": [b[1] for b in BOTS],
        "bot_reasons": [b[2] for b in BOTS],
        "campaign_ids": CAMPAIGN_IDS, "campaigns": len(CAMPAIGN_IDS),
    }


def _rate(store: EventStore, select: str, params: dict, probe: int) -> float:
    """Events one numbers() row yields on average, measured on a probe range (the shape is fixed)."""
    made = store.query(f"SELECT count() FROM ({select})", {**params, "first": 0, "count": probe},  # noqa: S608 - the generator's own SELECT; values bound
                       name="synthetic probe").scalar()
    return made / probe


def _fill(store: EventStore, select: str, params: dict, events: int, rate: float) -> int:
    """Insert about ``events`` rows of ``select`` in chunks; returns the numbers() rows used."""
    rows = math.ceil(events / rate)
    step = max(1, math.ceil(CHUNK_EVENTS / rate))
    for first in range(0, rows, step):
        store.command(f"INSERT INTO events ({COLUMNS}) {select}",
                      {**params, "first": first, "count": min(step, rows - first)})
    return rows


def load_synthetic(store: EventStore, site_id: str, events: int, seed: int = 1, *, days: int = 90,
                   end: int | None = None, finish: bool = True) -> SyntheticLoad:
    """Insert about ``events`` synthetic events for ``site_id`` over the ``days`` before ``end``.

    ``end`` (epoch seconds, default now rounded down to the hour) bounds every timestamp; the count
    lands within a fraction of a percent of ``events`` (the rows a slot yields vary by hash, so the
    number of slots is set from a probe). ``finish`` then finishes the old days' sessions
    (``tracker.queries.finish_sessions``), as the scheduler would. Returns what was loaded, with the
    exact count.
    """
    if events < 0 or days < 1:
        raise ValueError("events must be >= 0 and days >= 1")
    began = time.monotonic()
    end = int(time.time()) // 3600 * 3600 if end is None else int(end)
    params = _params(site_id, seed, end, days)
    before = store.query("SELECT count() FROM events WHERE site_id = %(site)s", params,
                         name="synthetic count").scalar()
    web = round(events * WEB_SHARE)
    if web:
        _fill(store, WEB_SQL, params, web, _rate(store, WEB_SQL, params, 30_000))
    if events - web:
        _fill(store, EMAIL_SQL, params, events - web, _rate(store, EMAIL_SQL, params, 20_000))
    after = store.query("SELECT count() FROM events WHERE site_id = %(site)s", params,
                        name="synthetic count").scalar()
    if finish:
        finish_sessions(store)
    return SyntheticLoad(site_id=site_id, events=after - before, seconds=time.monotonic() - began,
                         start=end - days * 86400, end=end)
