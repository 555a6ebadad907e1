"""The parts of tracker.remote that need no server: per-thread streams, client paths, loopback URLs."""

from __future__ import annotations

import argparse
import io
import os
import sys
import threading
from pathlib import Path

from tracker.remote import output
from tracker.remote.keyfile import loopback_url
from tracker.remote.paths import resolve_paths


def test_only_the_routed_thread_writes_to_its_target(monkeypatch) -> None:
    real_out, real_err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", real_out)
    monkeypatch.setattr(sys, "stderr", real_err)
    monkeypatch.setattr(sys, "stdin", io.StringIO("the server's own input"))
    output.install()
    output.install()  # once: a second call wraps nothing twice
    assert isinstance(sys.stdout, output.Router) and sys.stdout._real is real_out
    mine_out, mine_err = io.StringIO(), io.StringIO()
    started, go = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def command() -> None:
        with output.routed(mine_out, mine_err):
            started.set()
            go.wait(5)
            print("for the client")
            print("oops", file=sys.stderr)
            seen["stdin"] = sys.stdin.read(), sys.stdin.isatty()
        print("after the block")

    thread = threading.Thread(target=command)
    thread.start()
    started.wait(5)
    print("the server's log line")  # while the other thread is routed
    go.set()
    thread.join(5)
    assert mine_out.getvalue() == "for the client\n" and mine_err.getvalue() == "oops\n"
    assert seen["stdin"] == ("", False)  # a forwarded command reads no input
    assert real_out.getvalue() == "the server's log line\nafter the block\n" and real_err.getvalue() == ""


def test_relative_paths_open_beside_the_client_and_print_as_typed(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "a.csv").write_text("email\n")
    args = argparse.Namespace(file=Path("lists/a.csv"), other=Path("/abs/x"), name="lists/a.csv")
    resolve_paths(args, str(tmp_path))
    assert str(args.file) == "lists/a.csv" and args.file.read_text() == "email\n"
    assert os.fspath(args.file) == str(tmp_path / "lists" / "a.csv") and args.file.is_file()
    assert os.fspath(args.file.parent) == str(tmp_path / "lists")  # derived paths open beside it too
    assert args.other == Path("/abs/x") and type(args.other) is type(Path()) and args.name == "lists/a.csv"


def test_the_key_file_url_is_a_loopback_one_or_none() -> None:
    assert loopback_url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert loopback_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"  # noqa: S104
    assert loopback_url("::", 8000) == "http://[::1]:8000"
    assert loopback_url("localhost", 80) == "http://127.0.0.1:80"
    assert loopback_url("192.0.2.7", 8000) is None  # loopback cannot reach it: no forwarding
    assert loopback_url("shop.example.com", 8000) is None
