"""Campaign questions: what each sent campaign (or mailing rule) did, with people and machines apart.

Definitions, shared by every module here:

- An email event belongs to a campaign by its ``campaign_id`` (a mailing rule's sends carry the
  rule's); its site does not matter (an open pixel carries none).
- *Machines* are events with ``is_machine = 1`` (Apple Mail Privacy Protection fetching the pixel,
  Gmail's prefetch, link scanners and security gateways, each with its ``machine_reason``) or
  ``is_bot = 1``, and the opens and clicks a later verdict turned around (a burst over a message's
  links, a click on its trap link: ``tracker.queries.machines``, applied on every path); *people*
  are every other event. People's numbers never include machines, and machines are reported
  beside them, never hidden.
- ``sent`` counts ``email_sent`` events, ``recipients`` the distinct contacts they went to,
  ``bounced`` the distinct contacts with an ``email_bounce``; ``delivered`` = recipients - bounced.
- ``opened``: distinct contacts with a human open *or* a human click (a click proves the message
  was read even when images were blocked); ``opens``: human open events. ``clicked``/``clicks``
  likewise for human clicks. ``machine_opens`` and ``scanner_clicks`` count machine events.
- Rates are over delivered recipients: open rate = opened / delivered, click rate = clicked /
  delivered; click-to-open = clicked / opened; all in percent, 0 when the denominator is 0.
- ``unsubscribed``: distinct contacts with an ``unsubscribe`` event for the campaign.
- NPS, from human ``survey_response`` events whose ``score`` property is a whole number 0-10, each
  contact's latest answer counting once: percent promoters (9-10) minus percent detractors (0-6).

Distinct contacts are counted exactly (``uniqExact``): campaign figures are compared with the
sending tool's. The numbers come from ``rollup_campaigns_daily`` (corrected for later verdicts)
unless ``raw``.
"""
