"""Questions about contacts: current rows, one profile, its timeline and visitors, and erasure.

Contacts live in a ReplacingMergeTree; every reader here goes through ``FINAL`` (or ``argMax`` by
version), so the newest version is the one seen, on chDB 26 and ClickHouse 18.16 alike.
"""
