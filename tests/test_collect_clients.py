"""The client's address: X-Forwarded-For believed only from trusted proxies, never chosen by the client."""

from __future__ import annotations

import ipaddress

from tracker.collect.clients import TrustedProxies, client_of

PROXIES = TrustedProxies([ipaddress.ip_network("10.0.0.0/8")])


def test_direct_connection_ignores_forwarded_header() -> None:
    environ = {"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}
    assert client_of(environ, PROXIES).ip == "203.0.113.7"
    assert client_of(environ).ip == "203.0.113.7"


def test_behind_trusted_proxies_takes_the_rightmost_untrusted_hop() -> None:
    environ = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.9, 10.0.0.5",
               "HTTP_USER_AGENT": "UA", "REQUEST_METHOD": "HEAD"}
    client = client_of(environ, PROXIES)
    assert (client.ip, client.user_agent, client.method) == ("198.51.100.9", "UA", "HEAD")


def test_all_hops_trusted_or_garbage() -> None:
    inner = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "10.1.1.1"}
    assert client_of(inner, PROXIES).ip == "10.1.1.1"
    assert client_of({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "junk"}, PROXIES).ip == "junk"
    assert client_of({"REMOTE_ADDR": "10.0.0.2"}, PROXIES).ip == "10.0.0.2"
