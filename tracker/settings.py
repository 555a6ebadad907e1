"""Settings: one table of every option, read from defaults, a TOML file and ODNOS_* variables.

Each option is a ``Setting(name, default, help, parse)`` row in ``SETTINGS``; the same table feeds
validation, the README's settings table and the tests that check it is documented. Precedence, low
to high: defaults, the TOML file named by ``ODNOS_CONFIG`` (keys are the setting names in lower
case, without the prefix), ``ODNOS_*`` variables, then explicit overrides (command-line flags,
test mappings). Everything is validated once at start, and a bad value raises ``ConfigError`` whose
message names the variable, what was wrong and a valid example.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tracker.errors import ConfigError

PREFIX = "ODNOS_"


@dataclass(frozen=True)
class Setting:
    """One option: its name (lower case), default, one-line help and a parser that validates it."""

    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any]

    @property
    def env(self) -> str:
        return PREFIX + self.name.upper()


def _text(value: Any) -> str:
    return str(value).strip()


def _int(minimum: int, maximum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"must be a whole number from {minimum} to {maximum}") from None
        if not minimum <= number <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return number

    return parse


def _float(minimum: float, maximum: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"must be a number from {minimum} to {maximum}, with a point for "
                             "decimals") from None
        if not minimum <= number <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return number

    return parse


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def _size(value: Any) -> int:
    """Bytes, with an optional K, M or G suffix (powers of 1024): ``512M``, ``2G``, ``1048576``."""
    text = str(value).strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in "KMG" else ""
    try:
        number = float(text[: len(text) - len(unit)])
    except ValueError:
        raise ValueError("must be a number of bytes with an optional K, M or G (powers of 1024), "
                         "such as 512M or 2G") from None
    if number <= 0:
        raise ValueError("must be a positive size such as 512M or 2G")
    return int(number * _SIZE_UNITS[unit])


def _url(*schemes: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        if not text:
            return ""
        expected = f"must start with {' or '.join(s + '://' for s in schemes)}"
        try:
            parts = urlsplit(text)
            host = parts.hostname
        except ValueError:  # a malformed [IPv6] host
            raise ValueError(f"{expected}, then a valid host") from None
        if parts.scheme not in schemes or not (host or parts.path):
            raise ValueError(expected)
        return text

    return parse


def _keys(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        items = [k.strip() for k in str(value).split(",")]
    keys = tuple(k for k in items if k)
    for key in keys:
        if len(key) < 16:
            raise ValueError("each key must be at least 16 characters (generate one with "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return keys


def _networks(value: Any) -> tuple:
    """Addresses or CIDR ranges (``10.0.0.0/8``, ``127.0.0.1``)."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    try:
        return tuple(ipaddress.ip_network(str(item).strip(), strict=False)
                     for item in items if str(item).strip())
    except ValueError:
        raise ValueError("must be addresses or CIDR ranges separated by commas, such as "
                         "10.0.0.0/8,192.168.1.5") from None


def _address(value: Any) -> str:
    """An email address with an optional display name: ``news@shop.example`` or ``Shop <news@...>``."""
    text = str(value).strip()
    if not text:
        return ""
    _, address = parseaddr(text)
    local, at, domain = address.rpartition("@")
    if not (at and local and "." in domain) or "\r" in text or "\n" in text:
        raise ValueError("must be an address such as `Shop <news@shop.example.com>`")
    return text


def _yes_no(value: Any) -> bool:
    text = str(value).strip().lower()
    if text not in {"true", "false", "1", "0", "yes", "no"}:
        raise ValueError("must be true or false")
    return text in {"true", "1", "yes"}


def _cluster(value: Any) -> str:
    name = str(value).strip()
    if name and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError("must be the name of a cluster in remote_servers: letters, digits, underscores")
    return name


def _level(value: Any) -> str:
    level = str(value).strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "./odnos-data", "Folder for the embedded chDB store, the SQLite database, the "
            "ingestion spool and generated secret keys.", _text),
    Setting("clickhouse_url", "", "Unset: embedded chDB under the data folder. "
            "`clickhouse://user:pass@host:9000/db`: a ClickHouse server (native protocol for queries; "
            "inserts go to its HTTP port, 8123 unless `?http_port=N` says otherwise). "
            "`clickhouses://user:pass@host:9440/db` (or `?secure=1`): the same over TLS, to the secure "
            "native port and HTTPS (8443 unless `?http_port=N`), verified against public CAs or "
            "`?ca_certs=/path/ca.pem`; `?verify=0` skips verification.",
            _url("clickhouse", "clickhouses")),
    Setting("clickhouse_cluster", "", "Unset: one ClickHouse server. A cluster name from the servers' "
            "`remote_servers` (e.g. `odnos`): migrations make local tables on every node of it and "
            "`Distributed` tables over them (events sharded by visitor, contacts by contact), "
            "`Replicated` when the servers have ZooKeeper. ODNOS_CLICKHOUSE_URL names any one node.",
            _cluster),
    Setting("database_url", "", "Unset: SQLite under the data folder. `postgresql://user:pass@host/db` "
            "in production. Holds users, sites, API keys, campaigns, segments, rules, the send ledger.",
            _url("sqlite", "postgresql")),
    Setting("secret_keys", (), "Comma-separated signing keys, newest first: the newest signs, all "
            "verify, so keys rotate without breaking links in inboxes. Unset: generated once and kept "
            "in the data folder.", _keys),
    Setting("public_url", "", "Base URL put into tracked links, pixels and the snippet tag, e.g. "
            "`https://t.example.com`. Unset: http://HOST:PORT of `odnos serve`.", _url("http", "https")),
    Setting("host", "127.0.0.1", "Address `odnos serve` and `odnos collector` listen on.", _text),
    Setting("port", 8000, "Port `odnos serve` and `odnos collector` listen on.", _int(1, 65535)),
    Setting("workers", 2, "Collector worker processes in server mode (`odnos collector`); embedded "
            "mode always runs one, since chDB holds its folder for one process.", _int(1, 64)),
    Setting("chdb_max_memory", "2G", "Memory limit of the embedded chDB engine (it may take 90% of RAM "
            "otherwise).", _size),
    Setting("spool_max_bytes", "1G", "Disk the ingestion spool may use per worker while ClickHouse is "
            "down; past it the collector answers 503.", _size),
    Setting("batch_rows", 10000, "Most events written to ClickHouse in one insert.", _int(1, 1_000_000)),
    Setting("batch_interval", 0.5, "Seconds between inserts when batches are not full.",
            _float(0.01, 60.0)),
    Setting("max_body_bytes", "64K", "Largest beacon body accepted; larger ones get 413.", _size),
    Setting("max_batch_events", 100, "Most events in one beacon array.", _int(1, 10_000)),
    Setting("trusted_proxies", (), "Comma-separated addresses or CIDR ranges of the proxies in front of "
            "the collector (e.g. `10.0.0.0/8`); only their X-Forwarded-For is believed. Unset: the "
            "connecting address is the visitor's.", _networks),
    Setting("smtp_url", "", "SMTP server mailing rules send through: `smtp://user:pass@host:587` "
            "(STARTTLS) or `smtps://...:465`; e.g. `smtp://mailpit:1025` in docker-compose.",
            _url("smtp", "smtps")),
    Setting("mail_from", "", "From address of the mail odnos sends, e.g. `Shop <news@shop.example.com>`; "
            "its domain names the Message-IDs, and it is the `mailto:` of `List-Unsubscribe` (subject "
            "`unsubscribe <token>`). Required to send.", _address),
    Setting("mail_workers", 0, "Processes that compose the messages of a large send (200 or more) in "
            "parallel; 0: one per CPU core; 1: compose in the sending process.", _int(0, 64)),
    Setting("rules_interval", 60, "Seconds between two evaluations of the enabled mailing rules by the "
            "scheduler (the autoresponder answers within about this long).", _int(1, 3600)),
    Setting("landing_alert_seconds", 60, "The dashboard warns when an event has waited this many seconds to "
            "be stored in ClickHouse.", _float(1, 86400)),
    Setting("retention_months", 0, "Months of events (and their rollups) to keep; older whole months are "
            "dropped by the scheduler once a day. 0 keeps everything.", _int(0, 1200)),
    Setting("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR.", _level),
    Setting("session_idle_timeout", 7200, "Seconds a dashboard session may sit unused before it asks to "
            "sign in again.", _int(1, 31_536_000)),
    Setting("session_max_age", 43200, "Seconds after sign-in that a dashboard session ends, however "
            "busy.", _int(1, 31_536_000)),
    Setting("admin_two_factor", False, "true: admins must sign in with a TOTP code (an admin without "
            "one sets it up at their next sign-in).", _yes_no),
    Setting("api_rate_per_second", 20.0, "Requests per second one API key may make, counted per worker; "
            "past it (and the burst) the API answers 429 with `Retry-After`.", _float(0.01, 100_000.0)),
    Setting("api_burst", 100, "Requests an idle API key may make at once above its rate.",
            _int(1, 1_000_000)),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where the event store lives: embedded chDB at ``path``, or a server reached natively."""

    embedded: bool
    database: str
    path: Path | None = None
    host: str = ""
    port: int = 9000
    http_port: int = 8123
    user: str = "default"
    password: str = ""
    secure: bool = False  # TLS on both ports: the secure native port and HTTPS
    ca_certs: str = ""  # PEM file of the CA that signed the server's certificate; "" = public CAs
    verify: bool = True  # False only when the URL says verify=0
    cluster: str = ""  # ODNOS_CLICKHOUSE_CLUSTER: a cluster of the servers' remote_servers, or ""


class Settings:
    """Validated settings; attribute access by setting name (``settings.data_dir``)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_env(self) -> dict[str, str]:
        """The settings as ODNOS_* variables, for child processes (workers) to read back."""
        env = {}
        for setting in SETTINGS:
            value = self._values[setting.name]
            env[setting.env] = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        return env

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def clickhouse(self) -> ClickHouseTarget:
        if not self.clickhouse_url:
            if self.clickhouse_cluster:
                raise ConfigError("ODNOS_CLICKHOUSE_CLUSTER needs ClickHouse servers: set "
                                  "ODNOS_CLICKHOUSE_URL to one node of the cluster (the embedded "
                                  "store is one process)")
            return ClickHouseTarget(embedded=True, database="odnos", path=self.data_path / "clickhouse")
        parts = urlsplit(self.clickhouse_url)
        query = dict(parse_qsl(parts.query))
        secure = parts.scheme == "clickhouses" or _url_flag(query.pop("secure", "0"), "secure")
        try:
            port = parts.port or (9440 if secure else 9000)
        except ValueError:
            shown = parts.netloc.rpartition(":")[2]
            raise ConfigError(f"ODNOS_CLICKHOUSE_URL: the port {shown!r} must be a number from 1 to 65535, "
                              "e.g. clickhouse://user:pass@host:9000/db") from None
        database = parts.path.strip("/") or "odnos"
        if not database.replace("_", "").isalnum():
            raise ConfigError(f"ODNOS_CLICKHOUSE_URL: database name {database!r} must be letters, digits "
                              "and underscores, e.g. clickhouse://default@localhost:9000/odnos")
        http_port = query.pop("http_port", "8443" if secure else "8123")
        verify = _url_flag(query.pop("verify", "1"), "verify")
        ca_certs = query.pop("ca_certs", "")
        if query or not http_port.isdigit():
            raise ConfigError(f"ODNOS_CLICKHOUSE_URL: the options are http_port (the server's HTTP "
                              "port, or HTTPS port with TLS: 8123 or 8443 unless changed), secure=1, "
                              f"ca_certs=/path/ca.pem and verify=0; got {parts.query!r}")
        if (ca_certs or not verify) and not secure:
            raise ConfigError("ODNOS_CLICKHOUSE_URL: ca_certs and verify apply to TLS only; use "
                              "clickhouses://user:pass@host:9440/db (or add secure=1)")
        if ca_certs and not verify:
            raise ConfigError("ODNOS_CLICKHOUSE_URL: give either ca_certs (verify the server against "
                              "that CA) or verify=0 (no verification), not both")
        if ca_certs and not Path(ca_certs).expanduser().is_file():
            raise ConfigError(f"ODNOS_CLICKHOUSE_URL: ca_certs file {ca_certs} does not exist; give the "
                              "PEM file of the CA that signed the server's certificate")
        return ClickHouseTarget(embedded=False, database=database, host=parts.hostname or "localhost",
                                port=port, http_port=int(http_port),
                                user=unquote(parts.username or "default"),
                                password=unquote(parts.password or ""), secure=secure,
                                ca_certs=str(Path(ca_certs).expanduser().resolve()) if ca_certs else "",
                                verify=verify, cluster=self.clickhouse_cluster)

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'odnos.sqlite3'}"

    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def _url_flag(value: str, name: str) -> bool:
    """A yes/no option of ODNOS_CLICKHOUSE_URL (``secure=1``, ``verify=0``)."""
    flag = value.strip().lower()
    if flag in {"1", "true", "yes"}:
        return True
    if flag in {"0", "false", "no"}:
        return False
    raise ConfigError(f"ODNOS_CLICKHOUSE_URL: {name}={value!r} must be 1 or 0")


def _parse(setting: Setting, raw: Any, origin: str) -> Any:
    try:
        return setting.parse(raw)
    except (ValueError, TypeError) as exc:
        numeric = type(setting.default) in (int, float)
        example = f", for example {setting.default} (the default)" if numeric else ""
        raise ConfigError(f"{setting.env} (from {origin}): {_shown(setting, raw)} is not valid: {exc}"
                          f"{example}. {setting.help}") from None


_SECRET_SETTINGS = frozenset({"secret_keys"})
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def _shown(setting: Setting, raw: Any) -> str:
    """A refused value as its error message quotes it: never a key, never the password in a URL."""
    if setting.name in _SECRET_SETTINGS:
        return "the value (not shown: it is secret)"
    return repr(_URL_PASSWORD.sub(r"\1***@", str(raw)) if isinstance(raw, str) else raw)


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise ConfigError with a fix-it message on the first bad one."""
    environ = os.environ if environ is None else environ
    raw: dict[str, tuple[Any, str]] = {s.name: (s.default, "default") for s in SETTINGS}
    config_file = environ.get(PREFIX + "CONFIG")
    if config_file:
        raw.update(_read_toml(Path(config_file)))
    for setting in SETTINGS:
        if setting.env in environ:
            raw[setting.name] = (environ[setting.env], setting.env)
    for name, value in (overrides or {}).items():
        if name not in _BY_NAME:
            raise ConfigError(f"unknown setting {name!r}; known: {', '.join(_BY_NAME)}")
        if value is not None:
            raw[name] = (value, "command line")
    unknown = sorted(k for k in environ if k.startswith(PREFIX) and k != PREFIX + "CONFIG"
                     and k[len(PREFIX):].lower() not in _BY_NAME)
    if unknown:
        raise ConfigError(f"unknown variable {unknown[0]}; known: "
                          f"{', '.join(s.env for s in SETTINGS)}, ODNOS_CONFIG")
    return Settings({name: _parse(_BY_NAME[name], value, origin) for name, (value, origin) in raw.items()})


def _read_toml(path: Path) -> dict[str, tuple[Any, str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"ODNOS_CONFIG: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"ODNOS_CONFIG: {path} is not valid TOML: {exc}") from None
    values = {}
    for key, value in data.items():
        if key not in _BY_NAME:
            raise ConfigError(f"{path}: unknown setting {key!r}; known: {', '.join(_BY_NAME)}")
        values[key] = (value, str(path))
    return values


def ensure_data_dir(settings: Settings) -> Path:
    """Create the data folder for the owner only, and fail clearly if it cannot be written or anyone can.

    It holds the signing keys and the SQLite database: a folder any local user may write to would
    let them swap either. The SQLite file is made readable by the owner only before SQLite opens it
    (SQLite gives its WAL and shared-memory files the same mode).
    """
    path = settings.data_path
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = path / f".write-test.{os.getpid()}"  # per process: workers start together
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"ODNOS_DATA_DIR: the data folder {path} is not writable ({exc.strerror}); "
                          "choose another with ODNOS_DATA_DIR=/path or fix its permissions") from None
    if path.stat().st_mode & stat.S_IWOTH:
        raise ConfigError(f"ODNOS_DATA_DIR: the data folder {path} is writable by every user of this "
                          f"machine, and it holds keys and data: `chmod 700 {path}`, or choose another")
    if not settings.database_url:
        database = path / "odnos.sqlite3"
        # Only a missing file is opened: closing any descriptor of a file drops every POSIX lock this
        # process holds on it, and SQLite's locks are what keep another process from deleting the WAL
        # that this one's open connections still use.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        for file in (database, path / "odnos.sqlite3-wal", path / "odnos.sqlite3-shm"):
            if file.exists() and file.stat().st_mode & 0o077:
                file.chmod(0o600)
    return path


def signing_keys(settings: Settings) -> tuple[str, ...]:
    """The configured keys, or a key generated once and kept in ``<data_dir>/secret_keys``."""
    if settings.secret_keys:
        return settings.secret_keys
    path = ensure_data_dir(settings) / "secret_keys"
    if not path.exists():
        # Write aside, then link into place: two processes starting at once agree on one key.
        tmp = path.with_name(f".secret_keys.{os.getpid()}")
        tmp.write_text(secrets.token_urlsafe(32) + "\n")
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    keys = _keys(path.read_text().replace("\n", ","))
    if not keys:
        raise ConfigError(f"{path} holds no key; delete it to generate a new one")
    return keys
