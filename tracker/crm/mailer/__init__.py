"""The mailer: a template rendered for one contact, made trackable, and handed to SMTP.

A message goes through these modules in order: ``render`` (the Jinja2 sandbox and template
checks), ``helpers`` (``recommended()`` and ``survey()`` for templates), ``scan`` (where the links,
``<base>``, ``<body>`` and ``</body>`` are, by the HTML parser), ``links`` (tracked links spliced
into ``href`` values), ``track`` (links, unsubscribe footer, trap link and pixel: what the HTTP API
also returns), ``text`` (the plain-text part), ``message`` (the ``EmailMessage`` and its headers),
``compose`` (all of the above for one contact), ``smtp`` (delivery and its outcomes). The ledger
protocol around them is ``tracker.crm.sending``; saved templates are ``tracker.crm.templates``.
"""
