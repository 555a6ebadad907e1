"""Who sent a request: its address (behind trusted proxies, from X-Forwarded-For), agent and method.

Behind a TLS proxy or load balancer every request comes from the proxy's address, which would give
every visitor the same country and the same cookieless id. ``X-Forwarded-For`` is believed only
from the proxies named in ``ODNOS_TRUSTED_PROXIES``: the client is the rightmost address that is
not one of them, so a visitor cannot choose their address by sending the header themselves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Client(NamedTuple):
    """What the request tells about its sender; the IP only feeds country and cookieless ids.

    A named tuple, built once per request: half the cost of a frozen dataclass.
    """

    ip: str
    user_agent: str
    method: str = "GET"


class TrustedProxies:
    """The proxies whose X-Forwarded-For is believed; ``address in proxies`` is cached by address.

    Caching by the address alone matters: a cache keyed by (address, networks) hashes every network
    object on each lookup, in Python, twice per request.
    """

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)
        self._contains = lru_cache(maxsize=4096)(self._check)

    def _check(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def __contains__(self, address: str) -> bool:
        return self._contains(address)

    def __bool__(self) -> bool:
        return bool(self.networks)


NO_PROXIES = TrustedProxies(())


def client_of(environ: dict, trusted: TrustedProxies = NO_PROXIES) -> Client:
    """The client of a WSGI request, looking through trusted proxies only (``Runtime.proxies``)."""
    ip = environ.get("REMOTE_ADDR", "")
    if trusted and ip in trusted:
        for hop in reversed(environ.get("HTTP_X_FORWARDED_FOR", "").split(",")):
            hop = hop.strip()
            if hop:
                ip = hop
                if hop not in trusted:
                    break
    return Client(ip, environ.get("HTTP_USER_AGENT", ""), environ.get("REQUEST_METHOD", "GET"))
