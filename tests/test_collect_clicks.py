"""Machine verdicts on clicks and opens through the real collector, read back from ClickHouse.

Links made by `odnos link` name the campaign as the message, so people who share a campaign must
not add up to a scanner's burst; and such a link's signing time is not the send, so clicking it soon
after it was made is not "too fast" unless `--sent-at` says when the message left.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit

import pytest

from tests.fixtures.collector import NEW_KEY, Collector, running_collector
from tests.fixtures.processes import run_odnos
from tracker.tokens import TokenCodec

pytestmark = pytest.mark.server

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Mobile/15E148")
BURST_WINDOW = 2.0  # the collector's BurstDetector: clicks this close together can make a burst


@pytest.fixture(scope="module")
def collector(clickhouse_server, tmp_path_factory) -> Collector:
    with running_collector(clickhouse_server, tmp_path_factory.mktemp("clicks")) as running:
        yield running


def _campaign() -> str:
    """A campaign of this test alone: the collector's burst memory outlives each test."""
    return "spring-" + uuid.uuid4().hex[:12]


def _signed_an_hour_ago() -> TokenCodec:
    """Tokens as odnos's own mailer made them an hour ago: the too-fast rule cannot be what fires."""
    return TokenCodec([NEW_KEY], clock=lambda: time.time() - 3600)


def _verdicts(collector: Collector, message: str, expected: int) -> dict[tuple[str, str], tuple[int, str]]:
    rows = collector.rows("message_id = %(m)s AND name IN ('email_click', 'email_open')", {"m": message},
                          expected)
    assert len(rows) == expected, rows
    return {(r["contact_id"], r["link_id"]): (r["is_machine"], r["machine_reason"]) for r in rows}


def test_three_contacts_clicking_one_campaign_within_a_second_are_people(collector: Collector) -> None:
    campaign = _campaign()
    codec = _signed_an_hour_ago()
    clicks = [(f"c{i}-{campaign}", link) for i, link in enumerate("abc")]
    started = time.monotonic()
    for contact, link in clicks:
        token = codec.click(contact, campaign, link, f"https://shop.example.com/{link}")
        assert collector.request("GET", f"/c/{token}", headers={"User-Agent": IPHONE})[0] == 302
    assert time.monotonic() - started < BURST_WINDOW
    assert _verdicts(collector, campaign, 3) == {click: (0, "") for click in clicks}


def test_one_contact_clicking_three_links_of_a_message_within_a_second_is_a_burst(
        collector: Collector) -> None:
    campaign = _campaign()
    codec = _signed_an_hour_ago()
    contact = "c-" + campaign
    started = time.monotonic()
    for link in "abc":
        token = codec.click(contact, campaign, link, f"https://shop.example.com/{link}")
        assert collector.request("GET", f"/c/{token}")[0] == 302
    assert time.monotonic() - started < BURST_WINDOW
    assert _verdicts(collector, campaign, 3) == {
        (contact, "a"): (0, ""), (contact, "b"): (0, ""), (contact, "c"): (1, "burst")}


def _made_by_cli(collector: Collector, command: str, campaign: str, *sent_at: str) -> str:
    """Run `odnos link|pixel` with the collector's settings; return the printed URL's path."""
    args = ["https://shop.example.com/spring"] if command == "link" else []
    made = run_odnos(command, "--email", f"ann-{campaign}@example.com", "--campaign", campaign, *sent_at,
                     *args, env=collector.server.env)
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip().splitlines()[-1]
    assert url.startswith("http://t.example.test/")
    return urlsplit(url).path


def _hit_one_second_after(collector: Collector, path: str, since: float) -> None:
    time.sleep(max(0.0, since + 1.0 - time.time()))
    status = collector.request("GET", path, headers={"User-Agent": IPHONE})[0]
    assert status == (302 if path.startswith("/c/") else 200)


@pytest.mark.parametrize("command", ["link", "pixel"])
def test_cli_link_without_a_send_time_clicked_a_second_later_is_a_person(
        collector: Collector, command: str) -> None:
    campaign = _campaign()
    path = _made_by_cli(collector, command, campaign)
    _hit_one_second_after(collector, path, time.time())
    assert list(_verdicts(collector, campaign, 1).values()) == [(0, "")]


@pytest.mark.parametrize("command", ["link", "pixel"])
def test_cli_link_sent_a_second_before_the_click_is_too_fast(collector: Collector, command: str) -> None:
    campaign = _campaign()
    sent = int(time.time()) + 5  # a send scheduled for a few seconds after the link is made
    path = _made_by_cli(collector, command, campaign, "--sent-at", str(sent))
    _hit_one_second_after(collector, path, sent)
    assert list(_verdicts(collector, campaign, 1).values()) == [(1, "too_fast")]


def test_cli_link_sent_an_hour_ago_is_a_person_though_signed_just_now(collector: Collector) -> None:
    """The send time given wins over the signing time, which would call the click too fast."""
    campaign = _campaign()
    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    path = _made_by_cli(collector, "link", campaign, "--sent-at", hour_ago)
    _hit_one_second_after(collector, path, time.time())
    assert list(_verdicts(collector, campaign, 1).values()) == [(0, "")]
