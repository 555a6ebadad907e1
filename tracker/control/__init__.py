"""Control plane: odnos's small mutable configuration in a relational database.

Users, API keys, sites, campaigns, templates, segments, mailing rules, the send ledger and the
daily visitor salts live here (SQLite by default, PostgreSQL in server mode), not in ClickHouse:
they are few rows, changed one at a time, and need transactions and unique constraints.
``db.ControlPlane`` opens and migrates the database; ``models`` declares the tables; ``users``,
``api_keys``, ``sites`` and ``salts`` hold the repository functions for each.
"""
