"""Read-side questions to the event store: one module per question, its SQL beside it.

SQL here runs unchanged on chDB 26 and ClickHouse 18.16 (see shared/clickhouse-compat.md) and
takes values only as ``%(name)s`` parameters.
"""
