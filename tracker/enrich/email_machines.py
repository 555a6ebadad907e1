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
- ``bot_ua``: anything ``bots.py`` calls a bot (crawlers, HTTP libraries, headless browsers, no UA).

``too_fast`` needs ``sent_at``, the time the message was handed to SMTP, and is skipped without it.
A token's signing time is that time only when odnos sends the message as it signs; a link made by
``odnos link`` for another mail tool carries the send time its maker gave, or says it is unknown,
so the moment a link was made is never taken for the send (``tracker/tokens.py``).

Bursts are counted per message *and contact*: links made by ``odnos link`` name the campaign as the
message, so many people share one message id, and three of them clicking within two seconds are
people, not one scanner. A burst is only visible from its third link on, so the first clicks of a
burst may be marked human (or ``too_fast``) when they arrive; a report-time pass over the kept
events can re-flag them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from tracker.enrich.device import parse_device

OPEN_TOO_FAST = 3.0
"""Seconds after the send within which an open is a machine's: delivery alone takes about that long."""
CLICK_TOO_FAST = 10.0
"""Seconds after the send within which a click is a machine's: a person must receive, open, read, click."""


class MachineReason(StrEnum):
    """Why a request counts as a machine's; kept with the event so reports can split by it."""

    APPLE_MPP = "apple_mpp"
    GMAIL_PREFETCH = "gmail_prefetch"
    HEAD_REQUEST = "head_request"
    SCANNER_UA = "scanner_ua"
    TOO_FAST = "too_fast"
    BURST = "burst"
    BOT_UA = "bot_ua"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A request judged: machine or person, and why."""

    is_machine: bool
    reason: str = ""  # a MachineReason value, '' for people
    proxy: str = ""  # the mail provider's image proxy that fetched for a person; device unknown


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

    def __init__(self, window: float = 2.0, min_links: int = 3, max_messages: int = 100_000) -> None:
        self._window = window
        self._min_links = min_links
        self._max = max_messages
        self._recent: OrderedDict[tuple[str, str], list[tuple[float, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, message_id: str, contact_id: str, link_id: str, ts: float) -> bool:
        """Record a click; True once ``min_links`` distinct links of the pair fall in the window."""
        key = (message_id, contact_id)
        with self._lock:
            clicks = [c for c in self._recent.get(key, ()) if abs(ts - c[0]) <= self._window]
            clicks.append((ts, link_id))
            self._recent[key] = clicks[-self._MAX_CLICKS :]
            self._recent.move_to_end(key)
            while len(self._recent) > self._max:
                self._recent.popitem(last=False)
            return len({link for _, link in clicks}) >= self._min_links


BURSTS = BurstDetector()
"""The collector's shared detector; tests pass their own."""


def classify_open(
    user_agent: str, method: str, sent_at: float | None, now: float, *, too_fast: float = OPEN_TOO_FAST
) -> Verdict:
    """Verdict on an open-pixel request received at ``now`` (Unix seconds).

    ``sent_at`` is when the message was sent (the token's ``sent_at``), None when unknown: then the
    too-fast rule is skipped.
    """
    if user_agent == _APPLE_MPP_UA:
        return _machine(MachineReason.APPLE_MPP)
    if _GMAIL_FIXED_UA in user_agent:
        return _machine(MachineReason.GMAIL_PREFETCH)
    if method.upper() == "HEAD":
        return _machine(MachineReason.HEAD_REQUEST)
    if "GoogleImageProxy" in user_agent:
        return Verdict(False, "", GOOGLE_IMAGE_PROXY)
    return _common(user_agent, sent_at, now, too_fast) or HUMAN


def classify_click(
    user_agent: str,
    method: str,
    sent_at: float | None,
    now: float,
    message_id: str,
    link_id: str,
    contact_id: str,
    *,
    bursts: BurstDetector = BURSTS,
    too_fast: float = CLICK_TOO_FAST,
) -> Verdict:
    """Verdict on a tracked-link request received at ``now`` (Unix seconds).

    ``sent_at`` as in ``classify_open``. Every click is recorded in ``bursts`` under its message and
    contact, machine or not, so a scanner's burst is seen whole.
    """
    burst = bursts.hit(message_id, contact_id, link_id, now)
    if method.upper() == "HEAD":
        return _machine(MachineReason.HEAD_REQUEST)
    # no browser navigates with a bare "Mozilla/5.0", and Gmail's fixed UA samples links
    if user_agent == _APPLE_MPP_UA or _GMAIL_FIXED_UA in user_agent:
        return _machine(MachineReason.SCANNER_UA)
    verdict = _common(user_agent, sent_at, now, too_fast)
    if verdict is not None:
        return verdict
    return _machine(MachineReason.BURST) if burst else HUMAN


@lru_cache(maxsize=20_000)
def _ua_reason(user_agent: str) -> MachineReason | None:
    """scanner_ua, bot_ua or None: depends on the UA alone, so cached like parse_device."""
    lowered = user_agent.lower()
    if any(name in lowered for name in _SCANNER_NAMES):
        return MachineReason.SCANNER_UA
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
