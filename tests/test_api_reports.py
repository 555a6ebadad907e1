"""The reports API through the real server on the demo, on chDB and on the ClickHouse server.

Campaign and site figures are compared with plain SQL over the events, read before the server
started (``world.expected``); segment figures with the contacts this test adds. Each report is
read as JSON and as CSV (both ways of asking), and the CSV must say the same as the JSON.
"""

from __future__ import annotations

import csv
import io
import uuid
from urllib.parse import quote

import pytest

from tests.fixtures.api import SEGMENT, SEGMENT_TAG, ApiWorld, api_world_fixture  # noqa: F401

pytestmark = pytest.mark.server


def _json(world: ApiWorld, path: str) -> dict:
    answer = world.call("GET", path, key="reports")
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    return answer.json()


def _csv(world: ApiWorld, path: str, *, header: bool = False) -> list[dict[str, str]]:
    if header:
        answer = world.call("GET", path, key="reports", headers={"Accept": "text/csv"})
    else:
        answer = world.call("GET", path + ("&" if "?" in path else "?") + "format=csv", key="reports")
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.body.decode())))


def test_campaign_results_keep_people_and_machines_apart(world: ApiWorld) -> None:
    expected = world.expected["campaign"]
    rows = {row["campaign_id"]: row for row in _json(world, "/api/v1/reports/campaigns")["campaigns"]}
    row = rows["1"]
    assert (row["kind"], row["sent"]) == ("campaign", expected["sent"])
    assert row["recipients"] == expected["recipients"]
    assert isinstance(row["name"], str) and row["name"]
    # Every open and click event is counted once: as a person's or as a machine's.
    assert row["opens"] + row["machine_opens"] == expected["open_events"]
    assert row["clicks"] + row["scanner_clicks"] == expected["click_events"]
    assert row["machine_opens"] > 0 and row["scanner_clicks"] > 0  # the demo has both
    assert row["delivered"] == row["recipients"] - row["bounced"]
    assert row["open_rate"] == pytest.approx(100 * row["opened"] / row["delivered"])

    for header in (False, True):
        table = {r["campaign_id"]: r for r in _csv(world, "/api/v1/reports/campaigns", header=header)}
        assert int(table["1"]["sent"]) == expected["sent"]
        assert int(table["1"]["machine_opens"]) == row["machine_opens"]


def test_one_campaign_lists_its_machines_by_reason(world: ApiWorld) -> None:
    campaigns = _json(world, "/api/v1/reports/campaigns")["campaigns"]
    listed = next(r for r in campaigns if r["campaign_id"] == "1")
    report = _json(world, "/api/v1/reports/campaigns/1")
    assert report["stats"] == {k: v for k, v in listed.items() if k not in ("kind", "name")}
    opens = [m for m in report["machines"] if m["kind"] == "open"]
    clicks = [m for m in report["machines"] if m["kind"] == "click"]
    assert sum(m["events"] for m in opens) == listed["machine_opens"]
    assert sum(m["events"] for m in clicks) == listed["scanner_clicks"]
    assert all(m["reason"] for m in report["machines"])
    assert set(report["survey"]) == {"responses", "promoters", "passives", "detractors", "nps"}
    table = {r["metric"]: r["value"] for r in _csv(world, "/api/v1/reports/campaigns/1")}
    assert int(table["sent"]) == world.expected["campaign"]["sent"]


def test_campaign_refusals(world: ApiWorld) -> None:
    missing = world.call("GET", "/api/v1/reports/campaigns/no-such-campaign", key="reports")
    assert missing.status == 404 and missing.error["code"] == "unknown_campaign"
    long_id = world.call("GET", f"/api/v1/reports/campaigns/{'x' * 201}", key="reports")
    assert long_id.status == 422 and long_id.error["field"] == "campaign_id"
    bad_format = world.call("GET", "/api/v1/reports/campaigns?format=xml", key="reports")
    assert bad_format.status == 422 and bad_format.error["field"] == "format"


def test_site_stats_match_the_events(world: ApiWorld) -> None:
    expected = world.expected["site"]
    base = f"/api/v1/reports/sites/{world.site_id}"
    stats = _json(world, f"{base}/stats")
    assert stats["period"] == {"from": expected["from"], "to": expected["to"]}
    assert stats["metrics"]["pageviews"] == expected["pageviews"]
    assert stats["metrics"]["visitors"] == expected["visitors"]
    explicit = _json(world, f"{base}/stats?from={expected['from']}&to={expected['to']}")
    assert explicit["metrics"] == stats["metrics"]
    table = {r["metric"]: r for r in _csv(world, f"{base}/stats", header=True)}
    assert int(table["pageviews"]["value"]) == expected["pageviews"]

    home = _json(world, f"{base}/stats?page=/")
    assert home["filters"] == {"page": "/"} and home["metrics"]["pageviews"] == expected["home_pageviews"]

    series = _json(world, f"{base}/timeseries?metric=pageviews&bucket=day")
    assert len(series["points"]) == 30 and series["bucket"] == "day"
    assert sum(p["value"] for p in series["points"]) == expected["pageviews"]
    assert sum(float(r["value"]) for r in _csv(world, f"{base}/timeseries?metric=pageviews&bucket=day")) == (
        expected["pageviews"])

    pages = _json(world, f"{base}/pages?limit=1000")["pages"]
    assert sum(p["pageviews"] for p in pages) == expected["pageviews"]
    assert next(p for p in pages if p["page"] == "/")["pageviews"] == expected["home_pageviews"]
    assert len(_json(world, f"{base}/pages?limit=2")["pages"]) == 2

    by_source = _json(world, f"{base}/sources")
    assert sum(s["visits"] for s in by_source["sources"]) <= stats["metrics"]["visits"]
    everything = _json(world, f"{base}/sources?limit=1000")["sources"]
    assert sum(s["visits"] for s in everything) == stats["metrics"]["visits"]  # every visit has one source
    domains = _json(world, f"{base}/sources?dimension=referrer_domain&limit=1000")["sources"]
    assert domains and all(s["value"] for s in domains)


@pytest.mark.parametrize(("query", "status", "field"), [
    ("from=2026-11-01", 422, "to"),
    ("from=2026-11-10&to=2026-11-01", 422, "from"),
    ("from=yesterday&to=2026-11-01", 422, "from"),
    ("metric=revenue", 422, "metric"),
    ("colour=red", 422, "colour"),
])
def test_site_report_refusals_name_the_parameter(world: ApiWorld, query: str, status: int,
                                                field: str) -> None:
    route = "timeseries" if "metric" in query else "stats"
    answer = world.call("GET", f"/api/v1/reports/sites/{world.site_id}/{route}?{query}", key="reports")
    assert answer.status == status and answer.error["field"] == field, answer.body


def test_an_unknown_site_is_404(world: ApiWorld) -> None:
    answer = world.call("GET", "/api/v1/reports/sites/s_nosuchsite/stats", key="reports")
    assert answer.status == 404 and answer.error["code"] == "unknown_site"


def test_segment_size_and_members_follow_the_contacts(world: ApiWorld) -> None:
    path = f"/api/v1/reports/segments/{quote(SEGMENT)}"
    before = _json(world, f"{path}/size")["size"]
    added = [f"seg-{uuid.uuid4().hex[:10]}@example.com" for _ in range(7)]
    answer = world.call("POST", "/api/v1/contacts/batch",
                        body={"contacts": [{"email": e, "tags": [SEGMENT_TAG]} for e in added]})
    assert answer.status == 200 and answer.json()["created"] == 7, answer.body
    size = _json(world, f"{path}/size")
    assert size["size"] == before + 7 and size["segment"] == SEGMENT
    assert int(_csv(world, f"{path}/size")[0]["size"]) == before + 7

    members, cursor = [], None
    while True:
        page = _json(world, f"{path}/members?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        members += page["members"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(members) == before + 7 and len({m["id"] for m in members}) == len(members)
    assert set(added) <= {m["email"] for m in members}
    assert all(SEGMENT_TAG in m["tags"] for m in members)
    table = _csv(world, f"{path}/members?limit=1000")
    assert {r["email"] for r in table} == {m["email"] for m in members}
    by_id = _json(world, f"/api/v1/reports/segments/{size['id']}/size")
    assert by_id["size"] == before + 7


def test_an_unknown_segment_is_404(world: ApiWorld) -> None:
    answer = world.call("GET", "/api/v1/reports/segments/no%20such%20segment/members", key="reports")
    assert answer.status == 404 and answer.error["code"] == "unknown_segment"
