"""The local key file: how a CLI on this machine finds the `odnos serve` holding its data folder.

At each start the embedded server writes ``<data dir>/cli.key`` (owner-only, 0600): a fresh random
256-bit key, the loopback URL it listens on and its pid; a clean stop removes it. Reading the file
proves the caller may act as the folder's owner (it could open the folder itself were it free), so
the key is what the server's command route asks for. A file left by a crash is recognised as stale:
the folder lock is free, or held by another process than the one the file names.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from tracker.settings import Settings
from tracker.store.lock import is_held, main_pid

KEY_FILE = "cli.key"


@dataclass(frozen=True)
class ServerKey:
    url: str  # loopback, where the server's command route answers
    key: str
    pid: int  # the server's main process: the one to stop
    worker: int  # the worker that holds the store and runs forwarded commands


def key_path(settings: Settings) -> Path:
    return settings.data_path / KEY_FILE


def loopback_url(host: str, port: int) -> str | None:
    """The URL a local client reaches ``host:port`` at over loopback, or None if it cannot."""
    if host == "localhost":
        return f"http://127.0.0.1:{port}"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_unspecified:  # 0.0.0.0 or :: listen on loopback too
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    if not address.is_loopback:
        return None
    return f"http://[{address}]:{port}" if address.version == 6 else f"http://{address}:{port}"


def publish(settings: Settings) -> ServerKey | None:
    """Write a new key file for this server; None when it listens where loopback cannot reach it."""
    url = loopback_url(settings.host, settings.port)
    if url is None:
        return None
    served = ServerKey(url=url, key=secrets.token_urlsafe(32), pid=main_pid(), worker=os.getpid())
    path = key_path(settings)
    draft = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, json.dumps(asdict(served)).encode())
    finally:
        os.close(fd)
    os.replace(draft, path)  # a reader never sees half a file
    return served


def withdraw(settings: Settings, served: ServerKey) -> None:
    """Remove the key file at a clean stop, unless it is no longer this server's."""
    if read(settings) == served:
        key_path(settings).unlink(missing_ok=True)


def read(settings: Settings) -> ServerKey | None:
    """What the key file says, or None when there is none (or it is not one odnos wrote)."""
    try:
        fields = json.loads(key_path(settings).read_text())
        return ServerKey(url=str(fields["url"]), key=str(fields["key"]), pid=int(fields["pid"]),
                         worker=int(fields["worker"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(settings: Settings) -> ServerKey | None:
    """The live embedded server on this folder that takes commands, if there is one."""
    served = read(settings)
    target = settings.clickhouse
    if served is None or not target.embedded or target.path is None:
        return None
    lock = target.path.with_name(target.path.name + ".lock")
    if not is_held(lock):
        return None
    try:  # a key left by a server killed outright, with the folder now held by another process
        holder = lock.read_text(errors="replace")
    except OSError:
        return None
    return served if holder.split()[:2] == ["pid", str(served.pid)] else None
