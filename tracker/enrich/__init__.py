"""Enrichment on the collector's hot path: what a hit's headers and addresses say, computed fast.

Each module does one job, as pure functions over cached, lazily loaded data (nothing heavy loads at
import; each table loads once, on first use, under a lock):

- ``device``: User-Agent -> browser, OS, device class, bot verdict (cached per UA string).
- ``bots``: the bot detector ``device`` uses: crawler list, headless and HTTP-client markers.
- ``referrer``: referrer -> source (search, social, email, direct, internal, other); UTM tags; URL split.
- ``geo``: IP -> country, offline; the IP itself is never stored.
- ``visitor``: cookieless visitor ids from a daily-rotated salt (``SaltSource``).
- ``sessions``: visitor ids -> sessions, 30 minutes of inactivity apart, in memory.
- ``email_machines``: machine opens and link scanners, each verdict with its reason.
- ``lazy``: the load-once helper the others share.
"""
