"""odnos schemas shipped with the package: ClickHouse DDL migrations and JSON Schemas of requests."""
