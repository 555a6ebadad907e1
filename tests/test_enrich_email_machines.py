"""Machine opens and link scanners: one test per reason, and people left alone."""

from __future__ import annotations

import threading

import pytest

from tracker.enrich.email_machines import (
    CLICK_TOO_FAST,
    GOOGLE_IMAGE_PROXY,
    HUMAN,
    TRAP_WINDOW,
    BurstDetector,
    MachineReason,
    Verdict,
    classify_click,
    classify_open,
)
from tracker.enrich.networks import network_of
from tracker.tokens import TRAP_LINK_ID

SENT = 1_741_600_000.0
LATER = SENT + 300  # five minutes after the send: a person's pace

IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148"
)
OUTLOOK_DESKTOP = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)"
GOOGLE_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
GMAIL_PREFETCH = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def machine(reason: MachineReason) -> Verdict:
    return Verdict(True, reason)


def click(ua: str = CHROME, method: str = "GET", now: float = LATER, link: str = "l1", contact: str = "c-1",
          **kw) -> Verdict:
    kw.setdefault("bursts", BurstDetector())
    return classify_click(ua, method, SENT, now, "msg-1", link, contact, **kw)


# opens


def test_apple_mail_privacy_protection():
    assert classify_open("Mozilla/5.0", "GET", SENT, LATER) == machine(MachineReason.APPLE_MPP)


def test_gmail_prefetch():
    assert classify_open(GMAIL_PREFETCH, "GET", SENT, SENT + 4) == machine(MachineReason.GMAIL_PREFETCH)


def test_google_image_proxy_is_a_person_with_unknown_device():
    verdict = classify_open(GOOGLE_PROXY, "GET", SENT, LATER)
    assert verdict == Verdict(False, "", GOOGLE_IMAGE_PROXY)


def test_head_open():
    assert classify_open(IPHONE_MAIL, "HEAD", SENT, LATER) == machine(MachineReason.HEAD_REQUEST)


def test_scanner_open():
    ua = "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))"
    assert classify_open(ua, "GET", SENT, LATER) == machine(MachineReason.SCANNER_UA)


def test_bot_open():
    assert classify_open("python-requests/2.32.3", "GET", SENT, LATER) == machine(MachineReason.BOT_UA)
    assert classify_open("", "GET", SENT, LATER) == machine(MachineReason.BOT_UA)


def test_open_right_at_delivery_is_too_fast():
    assert classify_open(IPHONE_MAIL, "GET", SENT, SENT + 1) == machine(MachineReason.TOO_FAST)


@pytest.mark.parametrize("ua", [IPHONE_MAIL, OUTLOOK_DESKTOP, CHROME])
def test_people_opening(ua):
    assert classify_open(ua, "GET", SENT, LATER) == HUMAN


def test_without_a_send_time_timing_is_not_judged():
    """A link made for another mail tool may not know the send: its signing time is not the send."""
    assert classify_open(IPHONE_MAIL, "GET", None, SENT) == HUMAN
    verdict = classify_click(CHROME, "GET", None, SENT + 1, "msg-1", "l1", "c-1", bursts=BurstDetector())
    assert verdict == HUMAN


# clicks


def test_head_click():
    assert click(method="HEAD") == machine(MachineReason.HEAD_REQUEST)
    assert click(method="head") == machine(MachineReason.HEAD_REQUEST)


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))",
        "Proofpoint URL Defense",
        "Mimecast/1.0 (URL Protect)",
        "Mozilla/5.0 (Windows NT 10.0) Cisco IronPort",
        "Microsoft Office Existence Discovery",
        GMAIL_PREFETCH.replace("Mozilla/5.0\u0020", "", 1) + " Gmail-content-sampling",
        "Mozilla/5.0",
    ],
)
def test_scanner_click(ua):
    assert click(ua) == machine(MachineReason.SCANNER_UA)


def test_bot_click():
    assert click("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)") == machine(
        MachineReason.BOT_UA
    )
    assert click("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/131.0.0.0 Safari/537.36") == machine(
        MachineReason.BOT_UA
    )


def test_click_too_fast_after_the_send():
    assert click(now=SENT + CLICK_TOO_FAST - 1) == machine(MachineReason.TOO_FAST)
    assert click(now=SENT + CLICK_TOO_FAST + 1) == HUMAN
    assert click(now=SENT + 2, too_fast=1.0) == HUMAN


def test_burst_of_links_from_one_message():
    bursts = BurstDetector(window=2.0, min_links=3)
    assert click(link="a", now=LATER, bursts=bursts) == HUMAN
    assert click(link="b", now=LATER + 0.3, bursts=bursts) == HUMAN
    # the click that reveals the burst revises the two before it (the collector writes the revision)
    revealing = Verdict(True, MachineReason.BURST, revision_window=2.0)
    assert click(link="c", now=LATER + 0.6, bursts=bursts) == revealing
    # later clicks of the same burst are caught as they come, and need no second revision
    assert click(link="d", now=LATER + 0.9, bursts=bursts) == machine(MachineReason.BURST)


def test_a_new_burst_of_the_same_message_later_is_revised_again():
    bursts = BurstDetector(window=2.0, min_links=3)
    for start in (LATER, LATER + 600):
        verdicts = [click(link=link, now=start + i * 0.2, bursts=bursts) for i, link in enumerate("abc")]
        assert [v.revision_window for v in verdicts] == [0.0, 0.0, 2.0]


def test_trap_link_is_a_machine_and_revises_the_message_around_it():
    verdict = click(CHROME, link=TRAP_LINK_ID, now=LATER)
    assert verdict == Verdict(True, MachineReason.TRAP_LINK, revision_window=TRAP_WINDOW)
    assert TRAP_WINDOW >= 30  # gateways take their time over a message's links; a person never clicks it


def test_a_person__clicking_two_links_or_one_link_twice_is_no_burst():
    bursts = BurstDetector(window=2.0, min_links=3)
    verdicts = [click(link=link, now=LATER + i * 0.2, bursts=bursts) for i, link in enumerate("aabab")]
    assert verdicts == [HUMAN] * 5
    # and links spread over minutes are no burst either
    assert [click(link=link, now=LATER + 100 + i * 60, bursts=bursts) for i, link in enumerate("cde")] == [
        HUMAN
    ] * 3


def test_scanner_clicks_feed_the_burst_detector_too():
    """HEAD requests of a scanner count toward the burst its GET requests then complete."""
    bursts = BurstDetector(window=2.0, min_links=3)
    click(method="HEAD", link="a", bursts=bursts)
    click(method="HEAD", link="b", now=LATER + 0.1, bursts=bursts)
    assert click(link="c", now=LATER + 0.2, bursts=bursts) == Verdict(True, MachineReason.BURST,
                                                                       revision_window=2.0)


def test_bursts_are_per_message():
    bursts = BurstDetector(window=2.0, min_links=3)
    for i, link in enumerate("abc"):
        verdict = classify_click(CHROME, "GET", SENT, LATER + i * 0.1, f"msg-{i}", link, "c-1", bursts=bursts)
        assert verdict == HUMAN


def test_different_contacts_clicking_one_campaigns_links_within_a_second_are_people():
    """`odnos link` names the campaign as the message, so many people share one message id."""
    bursts = BurstDetector(window=2.0, min_links=3)
    verdicts = [click(link=link, contact=f"c-{i}", now=LATER + i * 0.3, bursts=bursts)
                for i, link in enumerate("abc")]
    assert verdicts == [HUMAN] * 3


def test_one_contacts_burst_is_seen_among_other_peoples_clicks():
    bursts = BurstDetector(window=2.0, min_links=3)
    clicks = [("scanned", "a"), ("ann", "b"), ("scanned", "b"), ("bob", "c"), ("scanned", "c"), ("ann", "a")]
    verdicts = [click(link=link, contact=contact, now=LATER + i * 0.1, bursts=bursts)
                for i, (contact, link) in enumerate(clicks)]
    assert verdicts == [HUMAN, HUMAN, HUMAN, HUMAN, Verdict(True, MachineReason.BURST, revision_window=2.0),
                        HUMAN]


def test_burst_detector_is_bounded():
    bursts = BurstDetector(window=2.0, min_links=3, max_messages=2)
    bursts.hit("m1", "c1", "a", 0.0)
    bursts.hit("m1", "c1", "b", 0.1)
    bursts.hit("m2", "c1", "a", 0.2)
    bursts.hit("m1", "c2", "a", 0.3)  # (m1, c1) is the least recently clicked: dropped
    assert not bursts.hit("m1", "c1", "c", 0.4)


def test_burst_detector_is_thread_safe():
    bursts = BurstDetector(window=10.0, min_links=50)
    start = threading.Barrier(10)
    results: list[bool] = []

    def worker(n: int) -> None:
        start.wait()
        for i in range(10):
            results.append(bursts.hit("m", "c", f"link-{n}-{i}", 1.0))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the window keeps at most 64 clicks, so from the 50th distinct link on every hit is a burst
    assert results.count(False) == 49


@pytest.mark.parametrize("ua", [IPHONE_MAIL, OUTLOOK_DESKTOP, CHROME])
def test_people_clicking_five_minutes_later(ua):
    assert click(ua) == HUMAN


# link resolvers that describe themselves, and networks


@pytest.mark.parametrize("ua", [
    "Kaspersky Lab CFR link resolver cfradmins@kaspersky.com",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Safari/537.36 LinkChecker/2.1",
    "URL Defense Gateway/1.0",
    "SafeLinks-Resolver/3.2 (Windows NT 10.0)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0 Safari/537.36 "
    "Time-of-Click Protection",
])
def test_security_link_checkers_in_their_own_words(ua):
    assert click(ua).is_machine
    assert click(ua).reason in (MachineReason.SCANNER_UA, MachineReason.LINK_RESOLVER)


# Addresses in networks geoip2fast's ASN data names: Proofpoint and Mimecast (mail security), Amazon,
# Microsoft and Google Cloud (clouds); and a home broadband and a mobile network.
PROOFPOINT, MIMECAST, AMAZON, MICROSOFT = "148.163.128.1", "207.211.30.1", "18.208.0.1", "13.107.6.152"
HOME = ("81.2.69.160", "2a02:8108::1")  # Andrews & Arnold (UK), Vodafone Germany


@pytest.mark.parametrize(("ip", "kind"), [(PROOFPOINT, "scanner"), (MIMECAST, "scanner"), (AMAZON, "cloud"),
                                          (MICROSOFT, "cloud"), ("::ffff:" + PROOFPOINT, "scanner"),
                                          (HOME[0], ""), (HOME[1], ""), ("10.1.2.3", ""), ("not an ip", "")])
def test_networks_of_addresses(ip, kind):
    assert network_of(ip) == kind


def test_a_scanner_with_a_browsers_agent_is_caught_by_its_network():
    assert click(CHROME, ip=PROOFPOINT) == machine(MachineReason.SCANNER_NETWORK)
    assert click(CHROME, ip=AMAZON) == machine(MachineReason.CLOUD_NETWORK)
    assert click(CHROME, ip=HOME[0]) == HUMAN


def test_opens_from_clouds_are_people_but_from_gateways_machines():
    """Webmail providers fetch images for their readers from their clouds; gateways fetch for nobody."""
    assert classify_open(CHROME, "GET", SENT, LATER, ip=MICROSOFT) == HUMAN
    assert classify_open(CHROME, "GET", SENT, LATER, ip=MIMECAST) == machine(MachineReason.SCANNER_NETWORK)
    assert classify_open(IPHONE_MAIL, "GET", SENT, LATER, ip=HOME[1]) == HUMAN
