"""Who is a person: the bot detector measured on agents it was not built from, through the real collector.

Run: .venv/bin/python benchmarks/bots_eval.py [--sample N] [--direct]

The detector (``tracker/enrich/bots.py``) is built from crawler-user-agents (MIT) and ua-parser's
uap-core regexes (Apache-2.0), plus rules on the agent's shape. It is scored here on sources it does
not use, installed as test dependencies (``pip install -e .[test]``), nothing vendored:

- bots: the bot fixtures of Matomo's Device Detector (1,348 real crawler, monitor, scanner and
  tool agents, with the bot's name), shipped in the ``device-detector`` package (its code MIT, the
  data Matomo's, LGPL-3.0). Split by bot name into a *development* half (the shape rules were
  written looking at its misses) and a *held-out* half (never looked at), so one bot's variants sit
  on one side. Each bot is also marked by whether crawler-user-agents lists it (its example, or one
  of its patterns), so coverage is shown on what the shipped list has never seen;
- people, weighted by share: ``fake-useragent``'s browser data (Apache-2.0), real agents with the
  share of traffic each had;
- people, the long tail: Matomo's device fixtures of browsers, in-app browsers and mail clients
  (phones, tablets, TVs, consoles, car browsers, feature phones, wearables; its podcast and media
  player fixtures are left out: those agents fetch feeds and audio, never pages or mail), split in
  halves the same way (the list exclusions in ``bots.py`` came from the development half);
- headless and automation engines that name themselves (``AUTOMATION``, written here from each
  engine's documented agent).

crawler-user-agents' own examples are scored too, as the in-sample figure it is.

By default every agent goes through ``odnos collector`` on a ClickHouse server this script starts:
one beacon per agent (its User-Agent header), verdicts read back from ClickHouse. ``--direct`` calls
``parse_device`` instead (same verdicts, seconds instead of minutes). ``--sample N`` keeps every
N-th agent of each set.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Engines that announce themselves, as their documentation shows their agents.
AUTOMATION = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.85 "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/125.0.6422.60 Safari/537.36",
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
    "Mozilla/5.0 (Windows NT 6.1; rv:38.0) Gecko/20100101 SlimerJS/0.10.3",
    "Mozilla/5.0 (linux) AppleWebKit/537.36 (KHTML, like Gecko) jsdom/22.1.0",
    "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 "
    "Safari/537.36 Chrome-Lighthouse",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36 "
    "PTST/230615.140502",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
    "Prerender (+https://github.com/prerender/prerender)",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534.34 (KHTML, like Gecko) wkhtmltopdf Safari/534.34",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/534.34 (KHTML, like Gecko) wkhtmltoimage Safari/534.34",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) Splash Version/9.0 Safari/538.1 "
    "Splash/3.5",
    "Mozilla/5.0 (compatible; HtmlUnit/2.70.0; Windows NT 10.0)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Cypress/13.6.0 "
    "Chrome/118.0.5993.159 Electron/27.1.3 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 "
    "Playwright/1.45.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36 Selenium",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36 "
    "Puppeteer",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_5) AppleWebKit/537.36 (KHTML, like Gecko) Nightmare/2.10.0 "
    "Electron/1.4.3 Safari/537.36",
    "Mozilla/5.0 (Linux x64) AppleWebKit/537.36 (KHTML, like Gecko) Zombie.js/6.1.4",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.51 "
    "Safari/537.36 Rendertron",
    "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/101.0.4951.64 Mobile Safari/537.36 (compatible; Google Page Speed Insights)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36 "
    "GTmetrix",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36 DynatraceSynthetic/1.301",
)


@dataclass(frozen=True)
class Agent:
    ua: str
    source: str  # where it comes from
    part: str  # "dev" or "held-out" (or "all" for sets that are not split)
    seen: str  # bots: "cua-example", "cua-pattern" or "unseen" by crawler-user-agents; people: ""
    weight: float = 1.0  # share of traffic, for weighted sets


def _half(key: str) -> str:
    return "held-out" if int(hashlib.sha256(key.encode()).hexdigest(), 16) % 2 else "dev"


_NEEDS = "odnos: error: the evaluation needs the test dependencies: .venv/bin/pip install -e .[test]"


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(_NEEDS)
    return Path(spec.submodule_search_locations[0])


def _fixtures() -> Path:
    return _package_folder("device_detector") / "tests" / "fixtures" / "upstream"


def _yaml(path: Path) -> list[dict]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # safe either way; the C one is 10x faster
    return yaml.load(path.read_text(), Loader=loader) or []  # noqa: S506 (a safe loader)


def bot_agents() -> list[Agent]:
    """Matomo's bot fixtures, split by bot name, each marked by what crawler-user-agents knows of it."""
    import re

    from crawleruseragents import CRAWLER_USER_AGENTS_DATA

    examples = {ua for entry in CRAWLER_USER_AGENTS_DATA for ua in entry["instances"]}
    patterns = [re.compile(entry["pattern"]) for entry in CRAWLER_USER_AGENTS_DATA]
    agents = []
    for entry in _yaml(_fixtures() / "bots.yml"):
        ua, name = str(entry["user_agent"]), str((entry.get("bot") or {}).get("name") or entry["user_agent"])
        seen = ("cua-example" if ua in examples else
                "cua-pattern" if any(p.search(ua) for p in patterns) else "unseen")
        agents.append(Agent(ua, "matomo-bots", _half(name), seen))
    return agents


_PEOPLE_TYPES = ("browser", "mobile app", "pim")
_NOT_PAGES = ("podcasting", "mediaplayer", "smart_speaker")


def long_tail_agents() -> list[Agent]:
    """Matomo's device fixtures of browsers, in-app browsers and mail clients, split in halves."""
    agents, seen = [], set()
    for path in sorted(_fixtures().glob("*.yml")):
        if path.name == "bots.yml" or path.stem.split("-")[0] in _NOT_PAGES:
            continue
        for entry in _yaml(path):
            client = entry.get("client")
            ua = str(entry.get("user_agent") or "")
            if isinstance(client, dict) and client.get("type") in _PEOPLE_TYPES and ua and ua not in seen:
                seen.add(ua)
                agents.append(Agent(ua, f"matomo-{client['type'].replace(' ', '-')}", _half(ua), ""))
    return agents


def weighted_agents() -> list[Agent]:
    """fake-useragent's real browser agents with their share of traffic."""
    data = _package_folder("fake_useragent") / "data" / "browsers.jsonl"
    rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    return [Agent(row["useragent"], "fake-useragent", "all", "", float(row["percent"])) for row in rows]


def in_sample_agents() -> list[Agent]:
    from crawleruseragents import CRAWLER_USER_AGENTS_DATA

    return [Agent(ua, "crawler-user-agents", "in-sample", "cua-example")
            for entry in CRAWLER_USER_AGENTS_DATA for ua in entry["instances"]]


def automation_agents() -> list[Agent]:
    return [Agent(ua, "automation", "all", "") for ua in AUTOMATION]


def corpus(sample: int = 1) -> dict[str, list[Agent]]:
    """Every set, each thinned to every ``sample``-th agent.

    Agents with control characters (a few fixtures end in a newline) cannot travel as an HTTP header,
    so they are left out of every set.
    """
    sets = {"bots": bot_agents(), "automation": automation_agents(), "in-sample": in_sample_agents(),
            "weighted people": weighted_agents(), "long-tail people": long_tail_agents()}
    return {name: [a for a in agents if a.ua.isprintable()][::sample] for name, agents in sets.items()}


# -- verdicts ----------------------------------------------------------------------------------------


def direct_verdicts(agents: Iterable[Agent]) -> dict[str, str]:
    from tracker.enrich.device import parse_device

    return {agent.ua: parse_device(agent.ua).bot_reason for agent in agents}


def collector_verdicts(agents: Iterable[Agent], send: Callable[[str, str], None],
                       read: Callable[[list[str]], dict[str, str]]) -> dict[str, str]:
    """Send each agent as a beacon marked with its index; read ``bot_reason`` back by marker."""
    unique = sorted({agent.ua for agent in agents})
    markers = {f"e{i}": ua for i, ua in enumerate(unique)}
    for marker, ua in markers.items():
        send(marker, ua)
    landed = read(list(markers))
    missing = set(markers) - set(landed)
    if missing:
        raise RuntimeError(f"{len(missing)} beacons did not land, e.g. {sorted(missing)[:3]}")
    return {markers[m]: reason for m, reason in landed.items()}


# -- report ------------------------------------------------------------------------------------------


def summarise(sets: dict[str, list[Agent]], verdicts: dict[str, str]) -> list[tuple[str, str, int, int, str]]:
    """Rows of (set, part, flagged, total, note): bots want all flagged, people none."""
    rows = []
    for name, agents in sets.items():
        groups: dict[tuple[str, str], list[Agent]] = {}
        for agent in agents:
            groups.setdefault((agent.part, ""), []).append(agent)
            if agent.seen:
                groups.setdefault((agent.part, agent.seen), []).append(agent)
        for (part, seen), members in sorted(groups.items()):
            flagged = [a for a in members if verdicts[a.ua]]
            note = seen
            weight = sum(a.weight for a in members)
            if name == "weighted people" and weight:
                note = f"{100 * sum(a.weight for a in flagged) / weight:.3f} % of traffic"
            rows.append((name, part, len(flagged), len(members), note))
    return rows


def reasons_of(sets: dict[str, list[Agent]], verdicts: dict[str, str], name: str) -> Counter:
    """How many agents of set ``name`` got each reason ('' for a person)."""
    return Counter(verdicts[a.ua] for a in sets[name])


def print_report(sets: dict[str, list[Agent]], verdicts: dict[str, str], how: str) -> None:
    print(f"verdicts: {how}")
    print(f"{'set':18} {'part':10} {'by crawler-user-agents':22} {'flagged':>8} {'of':>7} {'share':>8}  note")
    for name, part, flagged, total, note in summarise(sets, verdicts):
        seen = note if note in ("cua-example", "cua-pattern", "unseen") else ""
        other = "" if seen else note
        share = 100 * flagged / total if total else 0.0
        print(f"{name:18} {part:10} {seen or 'all':22} {flagged:8,} {total:7,} {share:7.2f}%  {other}")
    for name in ("bots", "long-tail people"):
        counts = reasons_of(sets, verdicts, name).most_common()
        print(f"reasons, {name}: " + ", ".join(f"{r or '(person)'} {n:,}" for r, n in counts))


def _through_collector(sets: dict[str, list[Agent]]) -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    import http.client

    from tests.fixtures.clickhouse import ClickHouseServer
    from tests.fixtures.collector import DOMAIN, running_collector

    every = [agent for agents in sets.values() for agent in agents]
    with tempfile.TemporaryDirectory() as folder:
        server = ClickHouseServer(Path(folder) / "ch")
        server.start()
        try:
            with running_collector(server, Path(folder) / "data") as collector:
                conn = http.client.HTTPConnection("127.0.0.1", collector.server.port, timeout=10)

                def send(marker: str, ua: str) -> None:
                    body = json.dumps({"site": collector.site_id, "name": "pageview",
                                       "url": f"https://{DOMAIN}/", "props": {"t": marker}})
                    # as bytes: a few real agents hold UTF-8, which http.client would refuse as text
                    headers = {"Content-Type": "text/plain", "User-Agent": ua.encode()}
                    conn.request("POST", "/e", body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    if response.status != 202:
                        raise RuntimeError(f"beacon for {ua!r} answered {response.status}")

                def read(markers: list[str]) -> dict[str, str]:
                    deadline = time.monotonic() + 120
                    while True:
                        rows = collector.store.query(
                            "SELECT props.value[indexOf(props.key, 't')] AS m, bot_reason FROM events "
                            "WHERE site_id = %(site)s", {"site": collector.site_id}).rows
                        if len(rows) >= len(markers) or time.monotonic() > deadline:
                            return dict(rows)
                        time.sleep(0.5)

                return collector_verdicts(every, send, read)
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=1, help="keep every N-th agent of each set")
    parser.add_argument("--direct", action="store_true", help="call parse_device, not the collector")
    args = parser.parse_args()
    if args.sample < 1:
        parser.error("--sample is a whole number from 1 up")
    sets = corpus(args.sample)
    started = time.perf_counter()
    if args.direct:
        verdicts, how = direct_verdicts(a for agents in sets.values() for a in agents), "parse_device"
    else:
        verdicts, how = _through_collector(sets), "odnos collector -> ClickHouse 18.16 server"
    print_report(sets, verdicts, f"{how}, {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
