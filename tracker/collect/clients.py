"""Who sent a request: its address (behind trusted proxies, from X-Forwarded-For), agent and method.

Behind a TLS proxy or load balancer every request comes from the proxy's address, which would give
every visitor the same country and the same cookieless id. ``X-Forwarded-For`` is believed only
from the proxies named in ``ODNOS_TRUSTED_PROXIES``: the client is the rightmost address that is
not one of them, so a visitor cannot choose their address by sending the header themselves.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Client:
    """What the request tells about its sender; the IP only feeds country and cookieless ids."""

    ip: str
    user_agent: str
    method: str = "GET"


@lru_cache(maxsize=4096)
def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_of(environ: dict, trusted: tuple[Network, ...] = ()) -> Client:
    """The client of a WSGI request, looking through trusted proxies only."""
    ip = environ.get("REMOTE_ADDR", "")
    if trusted and _trusted(ip, trusted):
        hops = [hop.strip() for hop in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        for hop in reversed(hops):
            ip = hop
            if not _trusted(hop, trusted):
                break
    return Client(ip=ip, user_agent=environ.get("HTTP_USER_AGENT", ""),
                  method=environ.get("REQUEST_METHOD", "GET"))
