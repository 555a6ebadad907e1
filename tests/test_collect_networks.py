"""Hits from datacentres and mail gateways, as a trusted proxy forwards them: flagged with their reason.

The collector runs behind a proxy it trusts (ODNOS_TRUSTED_PROXIES), which names the client in
X-Forwarded-For. The addresses are in networks geoip2fast's ASN data names (the same ones
tests/test_enrich_email_machines.py checks one by one): a pageview from a cloud is a bot's, an open
from a cloud is a person's (webmail fetches images from its cloud), a click from a cloud or any hit
from a mail-security gateway is a machine's; a home broadband address is a person's everywhere.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.fixtures.collector import CHROME, Collector, running_collector

PROOFPOINT, AMAZON, HOME = "148.163.128.1", "18.208.0.1", "81.2.69.160"
SENT_LONG_AGO = time.time() - 3600  # no timing rule applies


@pytest.fixture(scope="module")
def collector(clickhouse_server, tmp_path_factory) -> Collector:
    with running_collector(clickhouse_server, tmp_path_factory.mktemp("networks"),
                           ODNOS_TRUSTED_PROXIES="127.0.0.1") as running:
        yield running


def _via(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip, "User-Agent": CHROME}


def test_a_pageview_from_a_datacentre_is_a_bots_and_from_home_a_persons(collector: Collector) -> None:
    marks = {ip: uuid.uuid4().hex[:12] for ip in (AMAZON, PROOFPOINT, HOME)}
    for ip, mark in marks.items():
        status, _, body = collector.post(collector.event(mark), **_via(ip))
        assert status == 202, body
    verdicts = {ip: [(r["is_bot"], r["bot_reason"]) for r in collector.marked(mark, 1)]
                for ip, mark in marks.items()}
    assert verdicts == {AMAZON: [(1, "datacenter")], PROOFPOINT: [(1, "datacenter")], HOME: [(0, "")]}


def test_an_agent_rule_keeps_its_own_reason_from_a_datacentre(collector: Collector) -> None:
    mark = uuid.uuid4().hex[:12]
    collector.post(collector.event(mark), **{**_via(AMAZON), "User-Agent": "curl/8.5.0"})
    [row] = collector.marked(mark, 1)
    assert (row["is_bot"], row["bot_reason"]) == (1, "http_client")


def test_mail_hits_by_network(collector: Collector) -> None:
    message = "netcamp." + uuid.uuid4().hex[:8]
    hits = {("open", AMAZON): "c-a", ("open", PROOFPOINT): "c-p", ("open", HOME): "c-h",
            ("click", AMAZON): "c-a", ("click", PROOFPOINT): "c-p", ("click", HOME): "c-h"}
    for (kind, ip), contact in hits.items():
        if kind == "open":
            token = collector.codec.open(contact, message, sent_at=SENT_LONG_AGO)
            status, _, _ = collector.request("GET", f"/o/{token}", headers=_via(ip))
            assert status == 200
        else:
            token = collector.codec.click(contact, message, "1", "https://shop.example.com/",
                                          sent_at=SENT_LONG_AGO)
            status, _, _ = collector.request("GET", f"/c/{token}", headers=_via(ip))
            assert status == 302
    rows = collector.rows("message_id = %(m)s", {"m": message}, len(hits))
    found = {(r["name"], r["contact_id"]): (r["is_machine"], r["machine_reason"]) for r in rows}
    assert found == {
        ("email_open", "c-a"): (0, ""), ("email_open", "c-p"): (1, "scanner_network"),
        ("email_open", "c-h"): (0, ""),
        ("email_click", "c-a"): (1, "cloud_network"), ("email_click", "c-p"): (1, "scanner_network"),
        ("email_click", "c-h"): (0, ""),
    }
