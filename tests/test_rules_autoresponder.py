"""The autoresponder end to end: `odnos serve` on the embedded store, its own scheduler, a rule on
``event:signup`` added and enabled while the server runs, a visitor who identifies and signs up
through real HTTP beacons, and the SMTP server receiving the answer within a minute (the scheduler
evaluates rules every ODNOS_RULES_INTERVAL seconds; here 1). A crawler's signup is never answered.
The latency is printed (``-s``)."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

from sqlalchemy import select

from tests.fixtures.collector import CHROME, DOMAIN, NEW_KEY
from tests.fixtures.processes import OdnosServer, odnos_env, run_odnos
from tests.test_mailer_smtp import SmtpCapture
from tests.test_rules_world import FROM
from tracker.control.db import ControlPlane
from tracker.control.models import SendLedger
from tracker.control.sites import get_site
from tracker.crm.segments import add_segment
from tracker.tokens import identify_hash

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def _beacon(server: OdnosServer, event: dict, user_agent: str = CHROME) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/e", body=json.dumps(event), headers={"Content-Type": "text/plain",
                                                                "User-Agent": user_agent})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 202, body


def test_a_signup_is_answered_within_a_minute_by_odnos_serve(tmp_path: Path) -> None:
    with SmtpCapture() as smtp:
        env = odnos_env(tmp_path / "data", ODNOS_SECRET_KEYS=NEW_KEY, ODNOS_MAIL_FROM=FROM,
                        ODNOS_SMTP_URL=smtp.url, ODNOS_RULES_INTERVAL="1", ODNOS_BATCH_INTERVAL="0.05",
                        ODNOS_PUBLIC_URL="http://t.example.test")
        site = run_odnos("site", "add", "Shop", "--domain", DOMAIN, env=env)
        assert site.returncode == 0, site.stderr
        site_id = site.stdout.strip().splitlines()[-1]
        control = ControlPlane(f"sqlite:///{tmp_path / 'data' / 'odnos.sqlite3'}")
        with control.session() as session:
            add_segment(session, "people", {"all": [{"type": "consent", "status": "subscribed"}]})
            secret = get_site(session, site_id).identify_secret
        html = tmp_path / "thanks.html"
        html.write_text("<p>Thanks for signing up, {{ contact.email }}!</p>", encoding="utf-8")
        template = run_odnos("templates", "add", "thanks", "--subject", "Welcome aboard", "--html", str(html),
                             env=env)
        assert template.returncode == 0, template.stderr

        with OdnosServer(env) as server:
            # Defined and switched on beside the running server: these need only the control database.
            added = run_odnos("rules", "add", "autoresponder", "--segment", "people", "--template", "thanks",
                              "--trigger", "event:signup", env=env)
            assert added.returncode == 0, added.stderr
            enabled = run_odnos("rules", "enable", "autoresponder", env=env)
            assert enabled.returncode == 0, enabled.stderr

            def visit(email: str, visitor: str, user_agent: str = CHROME) -> float:
                page = {"site": site_id, "url": f"https://{DOMAIN}/join", "visitor": visitor}
                _beacon(server, {**page, "name": "identify", "email": email,
                                 "hash": identify_hash(secret, email)}, user_agent)
                signed_up = time.time()
                _beacon(server, {**page, "name": "signup", "props": {"plan": "free"}}, user_agent)
                return signed_up

            signed_up = visit("new.customer@example.org", "v-person")
            visit("crawled@example.org", "v-bot", GOOGLEBOT)
            deadline = time.monotonic() + 60
            while not smtp.messages and time.monotonic() < deadline:
                time.sleep(0.05)
            assert smtp.messages, "no answer within a minute:\n" + "".join(server.output[-20:])
            latency = time.time() - signed_up
            time.sleep(3)  # more rounds of the scheduler: no second answer, none to the crawler
        [message] = smtp.messages
        assert message.rcpt_tos == ["new.customer@example.org"]
        assert message.message["Subject"] == "Welcome aboard"
        print(f"\nautoresponder: answered {latency:.2f} s after the signup beacon (ODNOS_RULES_INTERVAL=1)")
        assert latency < 60
        with control.sessions() as session:
            keys = session.scalars(select(SendLedger.trigger_key)).all()
        assert len(keys) == 1 and keys[0].startswith("event:")
        control.dispose()
