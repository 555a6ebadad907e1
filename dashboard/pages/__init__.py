"""The dashboard's pages, one module each; ``PAGES`` is the navigation, in order.

A page module has ``PATH``, ``TITLE``, ``ROLE`` (the least role that may open it),
``layout(query)`` (the page for the URL's query parameters, built per visit) and
``register(app)`` (its callbacks). Pages call ``tracker.queries`` and ``tracker.crm``; they hold
no SQL.
"""

from __future__ import annotations

from types import ModuleType

from dashboard.pages import behaviour, campaigns, contacts, overview, rules, segments, settings

PAGES: tuple[ModuleType, ...] = (overview, behaviour, campaigns, contacts, segments, rules, settings)
