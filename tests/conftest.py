"""Shared fixtures: real ClickHouse (server and chDB); more are registered from tests/fixtures."""

pytest_plugins = ["tests.fixtures.browser", "tests.fixtures.clickhouse", "tests.fixtures.cluster",
                  "tests.fixtures.postgres"]
