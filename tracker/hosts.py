"""Whether a host belongs to a set of domains: one normalisation and one suffix rule for every caller.

The collector asks it of a page's host (is it one of the site's domains?), the referrer classifier
of a referrer's host (is the visit internal?), CORS of an Origin. Written once, so a host a site
accepts is also a host whose referrals count as internal. Both sides go through ``normalize_host``:
lower case, no port, no trailing dot, no leading ``www.``, punycode for international names. A host
then matches a domain when it is that domain or a subdomain of it (``www.`` and ``shop.`` included),
never when it merely ends with the same letters (``evilexample.com`` is not ``example.com``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable

_HOST_NAME = re.compile(r"[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*")


def normalize_host(host: str) -> str:
    """``host`` in the form domains are compared in; a name IDNA cannot encode is returned lower-cased.

    ``WWW.Example.COM.:8080`` -> ``example.com``; ``bücher.de`` -> ``xn--bcher-kva.de``;
    ``[2001:db8::1]:443`` -> ``2001:db8::1``.
    """
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, with or without a port
        return host[1:].partition("]")[0]
    if host.count(":") == 1:  # a name or IPv4 address with a port (a bare IPv6 has several colons)
        host = host.partition(":")[0]
    host = host.rstrip(".").removeprefix("www.")
    if not host.isascii():
        with contextlib.suppress(UnicodeError):  # left as it is, it matches no domain (all are ASCII)
            host = host.encode("idna").decode("ascii")
    return host


def host_in_domains(host: str, domains: Iterable[str]) -> bool:
    """True when ``host`` is one of ``domains`` or a subdomain of one, after normalising both.

    A host that is not a dotted name (a path, user info, spaces, empty labels, an IPv6 literal)
    matches nothing, so a crafted value cannot end with ``.example.com`` and pass.
    """
    host = normalize_host(host)
    if not _HOST_NAME.fullmatch(host):
        return False
    for domain in domains:
        domain = normalize_host(domain)
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False
