"""The collector: the part of odnos the whole internet talks to.

``beacon`` parses and validates what the snippet and servers send; ``sites`` caches the registered
sites and their domains; ``pipeline`` turns every kind of hit (beacon event, open pixel, tracked
link, unsubscribe) into complete ``events`` rows through the same enrichment; ``frontend`` is the
thin WSGI layer that answers the hot routes before Flask; ``pages`` holds the Flask routes that are
not hot (unsubscribe page, the snippet file).
"""
