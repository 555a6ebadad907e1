"""Ingestion: take accepted events from the collector into ClickHouse without losing or doubling any.

``spool`` keeps every acknowledged event on local disk (per worker process) until ``writer`` has
inserted it in batches; together they survive a ClickHouse outage and a ``kill -9`` of the collector.
"""
