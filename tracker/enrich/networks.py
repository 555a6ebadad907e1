"""Which hits come from a mail-security gateway's or a cloud provider's network, from the IP alone.

Mail reads it (``email_machines``: a gateway's fetch, a sandbox's click) and so do web beacons (a
pageview from a datacentre is a bot's, as Plausible counts it). The ranges come from the ASN data
geoip2fast ships; the IP is looked up, never stored. Loaded once per process on first use, or
before the server forks its workers (``tracker.enrich.preload``), so they share the tables.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

from tracker.enrich.lazy import Once

SCANNER = "scanner"
CLOUD = "cloud"
# Autonomous systems (by the names geoip2fast's ASN data gives them) of mail-security gateways, and of
# cloud providers where sandboxes run. Left out on purpose: networks people browse through (Zscaler,
# Netskope, Cloudflare, Akamai and Fastly, which carry iCloud Private Relay, Apple's own).
_SCANNER_ASN = re.compile(
    r"(?i)proofpoint|mimecast|barracuda|ironport|trend-?micro|messagelabs|symantec|fireeye|hornetsecurity"
    r"|spamexperts|n-able|cloudmark|\bzix\b|appriver|cyren|retarus|sophos|fortinet|check ?point|vade"
    r"|libraesva|trustwave|clearswift"
)
_CLOUD_ASN = re.compile(
    r"(?i)^(?:amazon|microsoft-corp-msn|google-cloud|google$|digitalocean|ovh|hetzner|linode|akamai-linode"
    r"|as-choopa|vultr|oracle-bmc|alibaba|tencent|online s\.a\.s|scaleway|leaseweb|contabo|softlayer"
    r"|rackspace|m247)"
)
_ASN_FILE = "geoip2fast-asn-ipv6.dat.gz"


@dataclass(frozen=True, slots=True)
class Networks:
    """Address ranges of the networks above: sorted starts, their ends and kinds, IPv4 and IPv6 apart."""

    starts: tuple[list[int], list[int]]
    ends: tuple[list[int], list[int]]
    kinds: tuple[list[str], list[str]]

    def kind(self, address: int, version: int) -> str:
        side = 0 if version == 4 else 1
        at = bisect.bisect_right(self.starts[side], address) - 1
        return self.kinds[side][at] if at >= 0 and address <= self.ends[side][at] else ""


def extract_networks() -> list[tuple[int, int, str]]:
    """(first, last, kind) of every range of the networks above, from geoip2fast's ASN data file.

    The file is a pickle of module-global tables (~100 MB unpacked); reading it here, not through
    ``GeoIP2Fast``, keeps it from replacing the country tables ``geo.py`` loaded.
    """
    import gzip
    import importlib.util
    import pickle  # noqa: S403 (the data file geoip2fast installs, not input from outside)
    from pathlib import Path

    spec = importlib.util.find_spec("geoip2fast")
    root = Path(spec.submodule_search_locations[0])  # type: ignore[union-attr, index]
    with gzip.open(root / _ASN_FILE, "rb") as data:
        _, _, _, tables = pickle.load(data)  # noqa: S301 (as above)
    names, firsts, ids, lengths = tables[3], tables[5], tables[7], tables[9]
    kinds = {}
    for index, name in enumerate(names):
        if _SCANNER_ASN.search(name):
            kinds[index] = SCANNER
        elif _CLOUD_ASN.search(name):
            kinds[index] = CLOUD
    ranges = []
    for chunk_firsts, chunk_ids, chunk_lengths in zip(firsts, ids, lengths, strict=True):
        for first, asn, length in zip(chunk_firsts, chunk_ids, chunk_lengths, strict=True):
            kind = kinds.get(asn)
            if kind is not None:
                bits = 32 if first < 2**32 else 128
                ranges.append((first, first + (1 << (bits - length)) - 1, kind))
    return ranges


def _load_networks() -> Networks:
    """Extract in a child process: unpacking the ASN tables leaves ~60 MB behind in the process."""
    code = "import json, tracker.enrich.networks as m; print(json.dumps(m.extract_networks()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=120)
    ranges = sorted(json.loads(done.stdout))
    sides: tuple[list, list] = ([], [])
    for first, last, kind in ranges:
        sides[0 if first < 2**32 else 1].append((first, last, kind))
    return Networks(tuple([r[0] for r in side] for side in sides),  # type: ignore[arg-type]
                    tuple([r[1] for r in side] for side in sides),  # type: ignore[arg-type]
                    tuple([r[2] for r in side] for side in sides))  # type: ignore[arg-type]


_NETWORKS: Once[Networks] = Once(_load_networks)


@lru_cache(maxsize=65_536)
def network_of(ip: str) -> str:
    """``SCANNER``, ``CLOUD`` or '' for ``ip`` (IPv4, IPv6, or IPv4 seen through a dual-stack socket)."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ""
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global:
        return ""
    return _NETWORKS.get().kind(int(address), address.version)
