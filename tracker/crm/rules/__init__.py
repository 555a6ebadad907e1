"""Mailing rules: define them (``define``), decide who is due (``due``), send (``runner``), and let one
scheduler at a time do it (``lock``, ``job``).

Each operation is a function of the runtime or its parts, so the CLI (tracker/cli/rules.py), the
scheduler and, later, the HTTP API and the dashboard call the same code.
"""
