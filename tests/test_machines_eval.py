"""The bot detector on agents it was not built from, through the real collector and ClickHouse.

``benchmarks/bots_eval.py`` builds the sets (Matomo's Device Detector fixtures, fake-useragent's
browser share data, self-naming automation engines; see its docstring for what each is and why it
is held out); here every bot and automation agent, and every fourth person's agent, is sent as a
beacon, and the stored ``bot_reason`` is held to thresholds. The thresholds sit just under what
was measured, so a change that loses coverage or flags people fails.
"""

from __future__ import annotations

import pytest

from benchmarks.bots_eval import collector_verdicts, corpus, summarise
from tests.fixtures.collector import DOMAIN, Collector, running_collector

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def verdicts(clickhouse_server, tmp_path_factory) -> tuple[dict, dict]:
    sets = corpus()
    sets["weighted people"] = sets["weighted people"][::4]
    sets["long-tail people"] = sets["long-tail people"][::4]
    sets.pop("in-sample")
    with running_collector(clickhouse_server, tmp_path_factory.mktemp("eval")) as collector:
        verdicts = collector_verdicts([a for agents in sets.values() for a in agents],
                                      lambda marker, ua: _send(collector, marker, ua),
                                      lambda markers: _read(collector, len(markers)))
    return sets, verdicts


def _send(collector: Collector, marker: str, ua: str) -> None:
    status, _, body = collector.request("POST", "/e", _beacon(collector, marker),
                                        {"Content-Type": "text/plain", "User-Agent": ua.encode()})
    assert status == 202, body


def _beacon(collector: Collector, marker: str) -> str:
    import json

    return json.dumps({"site": collector.site_id, "name": "pageview", "url": f"https://{DOMAIN}/",
                       "props": {"t": marker}})


def _read(collector: Collector, expected: int) -> dict[str, str]:
    rows = collector.rows("site_id = %(s)s", {"s": collector.site_id}, expected,
                          columns="props.value[indexOf(props.key, 't')] AS m, bot_reason")
    return {row["m"]: row["bot_reason"] for row in rows}


def _row(verdicts, name: str, part: str, seen: str = "") -> tuple[int, int, str]:
    sets, found = verdicts
    for set_name, set_part, flagged, total, note in summarise(sets, found):
        of_seen = note == seen if seen else note not in ("cua-example", "cua-pattern", "unseen")
        if (set_name, set_part) == (name, part) and of_seen:
            return flagged, total, note
    raise AssertionError(f"no row {name} {part} {seen}")


def test_held_out_bots_are_flagged(verdicts):
    flagged, total, _ = _row(verdicts, "bots", "held-out")
    assert total > 600
    assert flagged / total >= 0.95


def test_held_out_bots_crawler_user_agents_never_saw(verdicts):
    """The part only the shape rules and uap-core can catch."""
    flagged, total, _ = _row(verdicts, "bots", "held-out", "unseen")
    assert total > 200
    assert flagged / total >= 0.87


def test_every_self_naming_automation_engine(verdicts):
    flagged, total, _ = _row(verdicts, "automation", "all")
    assert flagged == total > 20


def test_no_browser_weighted_by_share_is_a_bot(verdicts):
    flagged, total, _ = _row(verdicts, "weighted people", "all")
    assert total > 1500
    assert flagged == 0


def test_the_long_tail_of_people_is_almost_never_a_bot(verdicts):
    flagged, total, _ = _row(verdicts, "long-tail people", "held-out")
    assert total > 4000
    assert flagged / total <= 0.003
