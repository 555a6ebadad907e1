"""Drop-in endpoints for other trackers' scripts: Plausible's ``POST /api/event``, Umami's ``POST /api/send``.

A site that runs one of those scripts switches to odnos by pointing the script's endpoint here. Each
module maps its tracker's payload onto odnos beacon events (the shape ``schemas/event.schema.json``
describes) and says how to answer; ``tracker.collect.frontend`` then runs them through the same
pipeline, enrichment, bot checks and spool as ``POST /e``. Nothing here writes: a mapping either
gives complete events or raises ``BadBeacon`` (a 4xx with a JSON reason).
"""

from __future__ import annotations

from tracker.collect.dropin import plausible, umami
from tracker.collect.dropin.mapping import Dropin

ROUTES: dict[str, Dropin] = {"/api/event": plausible.DROPIN, "/api/send": umami.DROPIN}
