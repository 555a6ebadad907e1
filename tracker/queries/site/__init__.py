"""Site analytics questions: one module per dashboard panel, each choosing its rollup or raw events.

Every function takes ``(store, site_id, period, filters)`` and returns plain dataclasses. Page-level
numbers follow ``tracker.queries.scope``, visit-level numbers ``tracker.queries.sessions``; both
leave bots out (``bots_excluded`` counts them). ``raw=True`` answers from raw events alone, for tests
that compare both paths and for benchmarks.
"""
