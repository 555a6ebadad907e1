"""Tell machine opens and link scanners from people, each verdict with its reason.

Mautic and listmonk count every pixel load and every click as a person (listmonk #1025, Mautic
#16263, #9798); scanners even click unsubscribe links. We flag, never drop: the raw event is kept
with ``is_machine`` and ``reason``, so reports can show humans, machines, or both. What is known:

- ``apple_mpp``: Apple Mail Privacy Protection fetches every image through Apple's relay when the
  Mail app downloads the message, with the user agent exactly ``Mozilla/5.0``.
- ``gmail_prefetch``: Gmail prefetches images seconds after delivery while the recipient has Gmail
  open, from Google addresses, with a fixed old UA (``... Chrome/42.0.2311.135 Safari/537.36
  Edge/12.246 ...``), as SparkPost and Mautic PR #10245 describe. The same signature plus
  ``Gmail-content-sampling`` follows links; on a click it counts as ``scanner_ua``.
- A load through ``GoogleImageProxy`` is a person reading in Gmail: human, but the UA is Google's,
  so ``proxy`` is set and the event's device should be recorded as 'other'.
- Security gateways (Microsoft Safe Links / Defender, Proofpoint, Mimecast, Barracuda, Cisco
  IronPort, Trend Micro, Symantec, FireEye/Trellix, Sophos, Fortinet, ...) fetch every link within
  seconds of delivery: ``head_request`` (HEAD is never a person), ``scanner_ua`` (vendor names in
  the UA), ``too_fast`` (sooner after the send than a person can act), ``burst`` (several links of
  one message, as one contact received it, within a second or two).
- ``link_resolver``: security products' link checkers that describe what they do rather than name
  their vendor ("Link Resolver", "URL Defense", "Safe Browsing", "link protection", ...).
- ``bot_ua``: anything ``bots.py`` calls a bot (crawlers, HTTP libraries, headless browsers, no UA).
- ``trap_link``: the click on the invisible link every message odnos sends carries
  (``tracker.tokens.TRAP_LINK_ID``): no person sees it, so only a machine follows it.
- ``scanner_network``: a hit from a mail-security vendor's network (Proofpoint, Mimecast, Barracuda,
  Cisco IronPort, Trend Micro, Symantec, ...), whatever its agent: gateways fetch with a normal
  browser's agent from their own addresses.
- ``cloud_network``: a click from a cloud provider's network (AWS, Azure, Google Cloud,
  DigitalOcean, OVH, Hetzner, ...), where sandboxes detonate links. Opens are not judged by it:
  webmail providers fetch images for people from their clouds. Networks come from the ASN data
  geoip2fast ships (``tracker.enrich.networks``); the IP is looked up, never stored.

``too_fast`` needs ``sent_at``, the time the message was handed to SMTP, and is skipped without it.
A token's signing time is that time only when odnos sends the message as it signs; a link made by
``odnos link`` for another mail tool carries the send time its maker gave, or says it is unknown,
so the moment a link was made is never taken for the send (``tracker/tokens.py``).

Bursts are counted per message *and contact*: links made by ``odnos link`` name the campaign as the
message, so many people share one message id, and three of them clicking within two seconds are
people, not one scanner. A burst is only visible from its third link on, so the first clicks of a
burst are marked human (or ``too_fast``) when they arrive. Such later verdicts revise earlier
events: the click that reveals a burst, and every trap-link click, carry ``revision_window``, and
the collector writes a ``machine_revision`` event (``REVISION_EVENT``) naming the message, the
contact and that window around the click; the kept events are never changed, and reports,
segments and rules read the revised verdict through ``tracker.queries.machines``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from tracker.enrich.device import parse_device
from tracker.enrich.networks import CLOUD, SCANNER, network_of
from tracker.tokens import TRAP_LINK_ID

OPEN_TOO_FAST = 3.0
"""Seconds after the send within which an open is a machine's: delivery alone takes about that long."""
CLICK_TOO_FAST = 10.0
"""Seconds after the send within which a click is a machine's: a person must receive, open, read, click."""
BURST_WINDOW = 2.0
"""Seconds within which clicks on ``BURST_LINKS`` distinct links of one contact's message are a scanner's."""
BURST_LINKS = 3
TRAP_WINDOW = 60.0
"""Seconds either side of a trap-link click within which that contact's events of the message are the
trap-clicking machine's: gateways and sandboxes fetch a message's links within seconds of each other."""
REVISION_EVENT = "machine_revision"
"""The event a later verdict writes: ``message_id``, ``contact_id``, ``machine_reason`` and the
``window_ms`` property (the events within that many ms either side of its time are a machine's)."""


class MachineReason(StrEnum):
    """Why a request counts as a machine's; kept with the event so reports can split by it."""

    APPLE_MPP = "apple_mpp"
    GMAIL_PREFETCH = "gmail_prefetch"
    HEAD_REQUEST = "head_request"
    SCANNER_UA = "scanner_ua"
    TOO_FAST = "too_fast"
    BURST = "burst"
    BOT_UA = "bot_ua"
    LINK_RESOLVER = "link_resolver"
    TRAP_LINK = "trap_link"
    SCANNER_NETWORK = "scanner_network"
    CLOUD_NETWORK = "cloud_network"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A request judged: machine or person, and why."""

    is_machine: bool
    reason: str = ""  # a MachineReason value, '' for people
    proxy: str = ""  # the mail provider's image proxy that fetched for a person; device unknown
    revision_window: float = 0.0  # > 0: this verdict revises the message's events this many s around it


HUMAN = Verdict(False)
GOOGLE_IMAGE_PROXY = "google_image_proxy"

_APPLE_MPP_UA = "Mozilla/5.0"
_GMAIL_FIXED_UA = "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246"
# Lower-case names security gateways put in their UAs; plain substring tests beat a regex here.
_SCANNER_NAMES = (
    "barracuda",
    "proofpoint",
    "mimecast",
    "ironport",
    "ciscosecure",
    "cisco secure",
    "trend micro",
    "trendmicro",
    "symantec",
    "messagelabs",
    "fireeye",
    "trellix",
    "sophos",
    "fortimail",
    "fortiguard",
    "f-secure",
    "forcepoint",
    "zscaler",
    "hornetsecurity",
    "spamexperts",
    "cloudmark",
    "safelinks",
    "microsoft office existence discovery",
    "microsoft office protocol discovery",
    "kaspersky",
    "bitdefender",
    "eset ",
    "checkpoint",
    "check point",
    "avanan",
    "ironscales",
    "libraesva",
    "vadesecure",
    "retarus",
    "appriver",
    "zix",
    "cyren",
    "trustwave",
    "clearswift",
    "spamtitan",
    "mailguard",
    "paloalto",
    "palo alto",
    "cisco umbrella",
)
# What security products' link checkers call themselves when they do not name their vendor.
_RESOLVER_WORDS = re.compile(
    r"(?i)link[\s_-]?(?:resolv|check|scan|protect|guard|inspect|analy[sz]|defen[cs])|url[\s_-]?(?:defen[cs]e|scan"
    r"|check|protect|resolv|filter|inspect|rewrit)|safe[\s_-]?(?:links?|brows|click|url)|time[\s_-]?of[\s_-]?click"
    r"|phish|malware|threat|sandbox|detonat|anti-?virus|anti-?spam|mail[\s_-]?(?:security|gateway|scan|filter)"
)


def _machine(reason: MachineReason) -> Verdict:
    return Verdict(True, reason)


class BurstDetector:
    """Remembers recent clicks per (message, contact) to spot many links clicked within ``window`` s.

    One contact's copy of a message is what a gateway scans; other contacts' clicks on the same
    message id are other people. Bounded: at most ``max_messages`` (message, contact) pairs (least
    recently clicked dropped), and per pair the clicks of the last ``window`` seconds, at most
    ``_MAX_CLICKS``. Thread-safe.
    """

    _MAX_CLICKS = 64

    def __init__(self, window: float = BURST_WINDOW, min_links: int = BURST_LINKS,
                 max_messages: int = 100_000) -> None:
        self.window = window
        self._min_links = min_links
        self._max = max_messages
        self._recent: OrderedDict[tuple[str, str], list[tuple[float, str]]] = OrderedDict()
        self._revised: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, message_id: str, contact_id: str, link_id: str, ts: float) -> bool:
        """Record a click; True once ``min_links`` distinct links of the pair fall in the window."""
        key = (message_id, contact_id)
        with self._lock:
            clicks = [c for c in self._recent.get(key, ()) if abs(ts - c[0]) <= self.window]
            clicks.append((ts, link_id))
            self._recent[key] = clicks[-self._MAX_CLICKS :]
            self._recent.move_to_end(key)
            while len(self._recent) > self._max:
                self._recent.popitem(last=False)
            return len({link for _, link in clicks}) >= self._min_links

    def take_revision(self, message_id: str, contact_id: str, ts: float) -> bool:
        """True once per burst: for the click that revealed it, not again within ``window`` of that."""
        key = (message_id, contact_id)
        with self._lock:
            last = self._revised.get(key)
            if last is not None and abs(ts - last) <= self.window:
                return False
            self._revised[key] = ts
            self._revised.move_to_end(key)
            while len(self._revised) > self._max:
                self._revised.popitem(last=False)
            return True


BURSTS = BurstDetector()
"""The collector's shared detector; tests pass their own."""


def classify_open(
    user_agent: str, method: str, sent_at: float | None, now: float, *, ip: str = "",
    too_fast: float = OPEN_TOO_FAST
) -> Verdict:
    """Verdict on an open-pixel request from ``ip`` received at ``now`` (Unix seconds).

    ``sent_at`` is when the message was sent (the token's ``sent_at``), None when unknown: then the
    too-fast rule is skipped. Of the networks only mail-security vendors' count for opens.
    """
    if user_agent == _APPLE_MPP_UA:
        return _machine(MachineReason.APPLE_MPP)
    if _GMAIL_FIXED_UA in user_agent:
        return _machine(MachineReason.GMAIL_PREFETCH)
    if method.upper() == "HEAD":
        return _machine(MachineReason.HEAD_REQUEST)
    if "GoogleImageProxy" in user_agent:
        return Verdict(False, "", GOOGLE_IMAGE_PROXY)
    verdict = _common(user_agent, sent_at, now, too_fast)
    if verdict is not None:
        return verdict
    return _machine(MachineReason.SCANNER_NETWORK) if network_of(ip) == SCANNER else HUMAN


def classify_click(
    user_agent: str,
    method: str,
    sent_at: float | None,
    now: float,
    message_id: str,
    link_id: str,
    contact_id: str,
    *,
    ip: str = "",
    bursts: BurstDetector = BURSTS,
    too_fast: float = CLICK_TOO_FAST,
) -> Verdict:
    """Verdict on a tracked-link request from ``ip`` received at ``now`` (Unix seconds).

    ``sent_at`` as in ``classify_open``. Every click is recorded in ``bursts`` under its message and
    contact, machine or not, so a scanner's burst is seen whole. A trap-link click, and the click
    that reveals a burst, carry a ``revision_window``: the collector then marks the contact's events
    of the message around it as a machine's (``REVISION_EVENT``).
    """
    burst = bursts.hit(message_id, contact_id, link_id, now)
    if link_id == TRAP_LINK_ID:
        return Verdict(True, MachineReason.TRAP_LINK, revision_window=TRAP_WINDOW)
    if method.upper() == "HEAD":
        verdict = _machine(MachineReason.HEAD_REQUEST)
    # no browser navigates with a bare "Mozilla/5.0", and Gmail's fixed UA samples links
    elif user_agent == _APPLE_MPP_UA or _GMAIL_FIXED_UA in user_agent:
        verdict = _machine(MachineReason.SCANNER_UA)
    else:
        verdict = _common(user_agent, sent_at, now, too_fast) or _network_verdict(ip) or HUMAN
    if not burst:
        return verdict
    window = bursts.window if bursts.take_revision(message_id, contact_id, now) else 0.0
    reason = verdict.reason if verdict.is_machine else MachineReason.BURST
    return Verdict(True, reason, revision_window=window)


def _network_verdict(ip: str) -> Verdict | None:
    network = network_of(ip)
    if network == SCANNER:
        return _machine(MachineReason.SCANNER_NETWORK)
    if network == CLOUD:
        return _machine(MachineReason.CLOUD_NETWORK)
    return None


@lru_cache(maxsize=20_000)
def _ua_reason(user_agent: str) -> MachineReason | None:
    """scanner_ua, bot_ua or None: depends on the UA alone, so cached like parse_device."""
    lowered = user_agent.lower()
    if any(name in lowered for name in _SCANNER_NAMES):
        return MachineReason.SCANNER_UA
    if _RESOLVER_WORDS.search(user_agent):
        return MachineReason.LINK_RESOLVER
    if parse_device(user_agent).is_bot:
        return MachineReason.BOT_UA
    return None


def _common(user_agent: str, sent_at: float | None, now: float, too_fast: float) -> Verdict | None:
    """The rules opens and clicks share, in order: scanner names, bots, timing."""
    reason = _ua_reason(user_agent)
    if reason is not None:
        return _machine(reason)
    if sent_at is not None and now - sent_at < too_fast:
        return _machine(MachineReason.TOO_FAST)
    return None
