"""Enrichment on the collector's hot path: what a hit's headers and addresses say, computed fast.

Each module does one job, as pure functions over cached, lazily loaded data (nothing heavy loads at
import; each table loads once, on first use, under a lock):

- ``device``: User-Agent -> browser, OS, device class, bot verdict (cached per UA string).
- ``bots``: the bot detector ``device`` uses: crawler list, headless and HTTP-client markers.
- ``referrer``: referrer -> source (search, social, email, direct, internal, other); UTM tags; URL split.
- ``geo``: IP -> country, offline; the IP itself is never stored.
- ``visitor``: cookieless visitor ids from a daily-rotated salt (``SaltSource``).
- ``sessions``: visitor ids -> sessions, 30 minutes of inactivity apart, in a table every collector
  process on the machine shares (a memory-mapped file in the data folder).
- ``email_machines``: machine opens and link scanners, each verdict with its reason.
- ``networks``: IP -> mail-security gateway's or cloud provider's network, from ASN data.
- ``lazy``: the load-once helper the others share.
"""


def preload() -> None:
    """Load the parser tables, crawler patterns, country database and networks now, not on the first hit.

    Called in the server's parent process before it forks workers, so they share these tables
    (about 80 MB) instead of each loading its own copy.
    """
    from tracker.enrich.device import parse_device
    from tracker.enrich.geo import country_of
    from tracker.enrich.networks import network_of

    parse_device("Mozilla/5.0 (X11; Linux x86_64) odnos-preload")
    country_of("192.0.2.1")
    network_of("18.208.0.1")  # a global address: private ones return before the tables load
    parse_device.cache_clear()
    country_of.cache_clear()
    network_of.cache_clear()
