"""Settings: precedence, validation messages, the ClickHouse URL, generated keys, documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.errors import ConfigError
from tracker.settings import SETTINGS, load_settings, signing_keys

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_embedded() -> None:
    settings = load_settings(environ={})
    assert settings.clickhouse.embedded
    assert settings.clickhouse.path == settings.data_path / "clickhouse"
    assert settings.sqlalchemy_url.startswith("sqlite:///")
    assert settings.port == 8000


def test_precedence_default_toml_env_override(tmp_path: Path) -> None:
    config = tmp_path / "odnos.toml"
    config.write_text('port = 9001\nhost = "0.0.0.0"\nbatch_rows = 500\n')
    env = {"ODNOS_CONFIG": str(config), "ODNOS_PORT": "9002"}
    settings = load_settings(environ=env)
    assert (settings.port, settings.host, settings.batch_rows) == (9002, "0.0.0.0", 500)
    assert load_settings({"port": 9003}, environ=env).port == 9003


def test_server_url_is_parsed() -> None:
    target = load_settings(environ={"ODNOS_CLICKHOUSE_URL": "clickhouse://bob:p%40ss@ch.internal:9440/stats"}
                           ).clickhouse
    assert (target.embedded, target.host, target.port, target.user, target.password, target.database) == (
        False, "ch.internal", 9440, "bob", "p@ss", "stats")


@pytest.mark.parametrize(("env", "fragment"), [
    ({"ODNOS_PORT": "http"}, "ODNOS_PORT"),
    ({"ODNOS_PORT": "70000"}, "between 1 and 65535"),
    ({"ODNOS_CLICKHOUSE_URL": "mysql://x"}, "clickhouse://"),
    ({"ODNOS_DATABASE_URL": "mongodb://x"}, "postgresql://"),
    ({"ODNOS_SECRET_KEYS": "short"}, "at least 16"),
    ({"ODNOS_SPOOL_MAX_BYTES": "lots"}, "ODNOS_SPOOL_MAX_BYTES"),
    ({"ODNOS_LOG_LEVEL": "LOUD"}, "DEBUG, INFO"),
    ({"ODNOS_PROT": "8000"}, "unknown variable ODNOS_PROT"),
])
def test_bad_values_name_the_variable(env: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(environ=env)


def test_bad_toml_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(environ={"ODNOS_CONFIG": str(config)})
    config.write_text("colour = 'blue'")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(environ={"ODNOS_CONFIG": str(config)})


def test_sizes_take_suffixes() -> None:
    settings = load_settings(environ={"ODNOS_SPOOL_MAX_BYTES": "512M", "ODNOS_MAX_BODY_BYTES": "64k"})
    assert settings.spool_max_bytes == 512 * 1024**2
    assert settings.max_body_bytes == 64 * 1024


def test_keys_newest_first_and_generated_once(tmp_path: Path) -> None:
    keys = load_settings(environ={"ODNOS_SECRET_KEYS": "n" * 20 + ", " + "o" * 20}).secret_keys
    assert keys == ("n" * 20, "o" * 20)
    settings = load_settings(environ={"ODNOS_DATA_DIR": str(tmp_path)})
    generated = signing_keys(settings)
    assert len(generated) == 1 and len(generated[0]) >= 32
    assert signing_keys(settings) == generated
    assert (tmp_path / "secret_keys").stat().st_mode & 0o077 == 0


def test_as_env_round_trips() -> None:
    settings = load_settings(environ={"ODNOS_SECRET_KEYS": "k" * 20 + "," + "j" * 20, "ODNOS_PORT": "8123"})
    again = load_settings(environ=settings.as_env())
    assert again.secret_keys == settings.secret_keys and again.port == 8123


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in readme]
    assert missing == []


def test_trusted_proxies_are_networks() -> None:
    settings = load_settings(environ={"ODNOS_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"})
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert load_settings(environ=settings.as_env()).trusted_proxies == settings.trusted_proxies
    with pytest.raises(ConfigError, match="ODNOS_TRUSTED_PROXIES"):
        load_settings(environ={"ODNOS_TRUSTED_PROXIES": "10.0.0.300"})
