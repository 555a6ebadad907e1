"""Mailer benchmark: messages per second rendered, rewritten and accepted by a local SMTP server.

The budget (shared/design.md) is >= 200 messages/s on 2 cores. An aiosmtpd server (a sink that
accepts and drops every message) runs in its own process on a free port; in this process, on one
reused SMTP connection, three rates are measured:

- baseline: one pre-built message sent again and again (SMTP and the server alone);
- compose + SMTP: for each contact, the template rendered, every link rewritten, pixel, trap and
  unsubscribe added, the text part made from the HTML, the email built, and handed to SMTP;
- send_batch: the same through the ledger protocol (a committed SQLite transaction claims
  ``sending.CLAIM`` contacts before their messages leave, one more writes their outcomes) with an
  ``email_sent`` event per message into an embedded chDB store; composed in this process
  (``ODNOS_MAIL_WORKERS=1``), then in two worker processes (``mailer/pool.py``; the workers start
  in the first run, so the best of three is a warm pool, as in a running server).

Each figure is the best of ``--repeat`` runs (the machine is shared; the best run is the one least
disturbed), with this process's CPU time per message beside it.

Run:  .venv/bin/python benchmarks/mailer_bench.py [--messages 500] [--repeat 3] [--fixture NAME ...]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tracker.contacts import contact_id_for
from tracker.crm.mailer.compose import Composer
from tracker.crm.mailer.smtp import SmtpSender
from tracker.crm.model import Contact
from tracker.crm.templates import check_template
from tracker.tokens import TokenCodec

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "emails"
FROM = "Bench <news@bench.example.com>"
BASE = "http://t.example.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_smtp_sink() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                                "-c", "aiosmtpd.handlers.Sink"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"smtp://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the aiosmtpd sink did not start")


def contacts(n: int) -> list[Contact]:
    people = []
    for i in range(n):
        email = f"person{i}@example.org"
        people.append(Contact(contact_id=contact_id_for(email), email=email, first_name=f"Name{i}",
                              last_name="Bench", attrs={"country": "Portugal"}))
    return people


class Timed:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> Timed:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def best(runs: list[Timed], count: int) -> str:
    run = min(runs, key=lambda r: r.wall)
    return (f"{count / run.wall:6.0f} msg/s  ({run.wall * 1000 / count:.2f} ms each, "
            f"{run.cpu * 1000 / count:.2f} ms CPU here)")


def bench_baseline(url: str, n: int) -> Timed:
    composer = Composer(TokenCodec(["bench-key-" + "b" * 20]), BASE, FROM, None)
    template = check_template("Hi", (FIXTURES / "mjml_welcome.html").read_text(encoding="utf-8"))
    data = composer.compose(template, contacts(1)[0], "1.1").email.as_bytes()
    with SmtpSender(url) as sender:
        sender.send(data, sender="news@bench.example.com", recipient="warm@example.org")
        with Timed() as timed:
            for i in range(n):
                delivery = sender.send(data, sender="news@bench.example.com", recipient=f"p{i}@example.org")
                assert delivery.outcome == "sent", delivery
    return timed


def bench_compose(url: str, fixture: str, n: int) -> tuple[Timed, Timed]:
    composer = Composer(TokenCodec(["bench-key-" + "b" * 20]), BASE, FROM, None)
    html = (FIXTURES / fixture).read_text(encoding="utf-8")
    template = check_template("Hello {{ contact.first_name }}", html)
    people = contacts(n)
    with Timed() as compose_only:
        for i, person in enumerate(people):
            composer.compose(template, person, f"1.{i}").email.as_bytes()
    with SmtpSender(url) as sender, Timed() as with_smtp:
        for i, person in enumerate(people):
            message = composer.compose(template, person, f"1.{i}")
            delivery = sender.send(message.email, sender="news@bench.example.com", recipient=person.email)
            assert delivery.outcome == "sent", delivery
    return compose_only, with_smtp


def bench_send_batch(url: str, fixture: str, n: int, workers: int) -> Timed:
    from tracker.control.models import Campaign
    from tracker.crm.sending import Owner, send_batch
    from tracker.crm.templates import save_template
    from tracker.runtime import Runtime
    from tracker.settings import load_settings

    data = Path(tempfile.mkdtemp(prefix="mailer-bench-"))
    settings = load_settings({"data_dir": str(data), "public_url": BASE, "mail_from": FROM, "smtp_url": url,
                              "secret_keys": "bench-key-" + "b" * 20, "mail_workers": workers}, environ={})
    runtime = Runtime.open(settings)
    try:
        template = save_template(runtime.control, "bench", "Hello {{ contact.first_name }}",
                                 (FIXTURES / fixture).read_text(encoding="utf-8"))
        with runtime.control.session() as session:
            campaign = Campaign(name="bench", subject="-")
            session.add(campaign)
            session.flush()
            campaign_id = campaign.id
        people = contacts(n)
        with Timed() as timed:
            result = send_batch(runtime, Owner.campaign(campaign_id), "once", template, people)
        assert len(result.sent) == n, result
        landed = runtime.store.query("SELECT count() FROM events WHERE name = 'email_sent'").scalar()
        assert landed == n, landed
        return timed
    finally:
        runtime.close()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fixture", action="append",
                        help="email fixture(s) from tests/fixtures/emails (default: three of them)")
    args = parser.parse_args()
    fixtures = args.fixture or ["mjml_welcome.html", "mailchimp_newsletter.html", "handwritten_plain.html"]
    n, repeat = args.messages, range(args.repeat)
    process, url = start_smtp_sink()
    try:
        print(f"{n} messages per run, best of {args.repeat}; one SMTP connection to an aiosmtpd sink "
              "in its own process")
        print(f"  baseline, one pre-built message      {best([bench_baseline(url, n) for _ in repeat], n)}")
        for fixture in fixtures:
            size = len((FIXTURES / fixture).read_bytes())
            composed = [bench_compose(url, fixture, n) for _ in repeat]
            print(f"  {fixture} ({size:,} bytes)")
            print(f"    compose only, no SMTP              {best([c[0] for c in composed], n)}")
            print(f"    compose + SMTP, one after other    {best([c[1] for c in composed], n)}")
            here = [bench_send_batch(url, fixture, n, 1) for _ in repeat]
            print(f"    send_batch, composed here          {best(here, n)}")
            pooled = [bench_send_batch(url, fixture, n, 2) for _ in repeat]
            print(f"    send_batch, 2 compose workers      {best(pooled, n)}")
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
