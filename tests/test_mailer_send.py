"""``send_batch`` end to end: real SMTP (aiosmtpd), the real collector over HTTP, the ClickHouse server.

What a recipient gets (headers, parts, links that redirect to their originals through the
collector, pixel, trap link), what the ledger and the event store say afterwards, that the
unsubscribe page's button and the RFC 8058 one-click POST both stop every later mail while a GET
alone does not, survey answers, and every SMTP fault: refused connection (batch stops, the next
run sends each contact once), 421 then accepted, 550 (failed, reported bounced, never retried), a
connection lost after the final dot (left pending, never retried), templates refused at send time;
a compose worker killed mid-batch (``ComposeWorkerDied``, the rest deferred, new workers next time).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import re
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from tests.fixtures.clickhouse import free_port
from tests.fixtures.collector import NEW_KEY, OLD_KEY, Collector, running_collector
from tests.fixtures.processes import kill_a_compose_worker
from tests.test_mailer_smtp import DROP, SmtpCapture
from tracker.collect.pipeline import campaign_of
from tracker.contacts import contact_id_for
from tracker.control.consent import suppress
from tracker.control.db import ControlPlane
from tracker.control.models import Campaign, SendLedger, Template
from tracker.crm.mailer.pool import SMALLEST_BATCH, WORKER_DIED, ComposeWorkerDied, shared_pool
from tracker.crm.mailer.render import TemplateError
from tracker.crm.mailer.smtp import SmtpSender
from tracker.crm.model import Contact
from tracker.crm.sending import CLAIM, BatchResult, Owner, send_batch
from tracker.crm.templates import save_template
from tracker.runtime import Runtime
from tracker.settings import load_settings, signing_keys
from tracker.store import open_store
from tracker.tokens import TRAP_LINK_ID, TokenCodec

pytestmark = pytest.mark.server

BASE = "http://t.example.test"
FROM = "Fernwood Coffee <news@fernwood.example.com>"
FIXTURES = Path(__file__).parent / "fixtures" / "emails"
CODEC = TokenCodec([NEW_KEY, OLD_KEY])
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")


class Env:
    def __init__(self, collector: Collector, smtp: SmtpCapture, runtime: Runtime, overrides: dict) -> None:
        self.collector = collector
        self.smtp = smtp
        self.runtime = runtime
        self.overrides = overrides  # what the runtime's settings were loaded from

    def campaign(self) -> int:
        with self.runtime.control.session() as session:
            campaign = Campaign(name="c-" + uuid.uuid4().hex[:6], subject="-")
            session.add(campaign)
            session.flush()
            return campaign.id

    def template(self, html: str, subject: str = "Hi {{ contact.first_name }}", text: str = "") -> Template:
        return save_template(self.runtime.control, "t-" + uuid.uuid4().hex[:8], subject, html, text)

    def ledger(self, campaign_id: int) -> dict[str, SendLedger]:
        with self.runtime.control.sessions() as session:
            rows = session.scalars(select(SendLedger).where(SendLedger.campaign_id == campaign_id))
            return {row.contact_id: row for row in rows}

    def received(self, email: str) -> list[EmailMessage]:
        return [m.message for m in self.smtp.messages if email in m.rcpt_tos]


def person(first: str, **fields) -> Contact:
    email = f"{first.lower()}.{uuid.uuid4().hex[:6]}@example.org"
    return Contact(contact_id=contact_id_for(email), email=email, first_name=first, last_name="Test",
                   **fields)


@pytest.fixture(scope="module")
def env(clickhouse_server, tmp_path_factory) -> Env:
    data = tmp_path_factory.mktemp("send")
    with running_collector(clickhouse_server, data) as collector, SmtpCapture() as smtp:
        overrides = {
            "data_dir": str(data), "public_url": BASE, "secret_keys": f"{NEW_KEY},{OLD_KEY}",
            "mail_from": FROM, "smtp_url": smtp.url,
            "clickhouse_url": clickhouse_server.url_for(collector.store.database),
        }
        settings = load_settings(overrides, environ={})
        runtime = Runtime(settings=settings, store=open_store(settings),
                          reader=open_store(settings, readonly=True),
                          control=ControlPlane(settings.sqlalchemy_url), keys=signing_keys(settings))
        yield Env(collector, smtp, runtime, overrides)
        runtime.close()


def _hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def _get(env: Env, url: str, method: str = "GET", **kwargs):
    assert url.startswith(BASE + "/")
    return env.collector.request(method, url[len(BASE):], **kwargs)


def test_sent_messages_carry_tracked_links_pixel_trap_and_unsubscribe_headers(env: Env) -> None:
    campaign = env.campaign()
    template = env.template((FIXTURES / "mjml_welcome.html").read_text(encoding="utf-8"),
                            subject="Welcome, {{ contact.first_name }}!")
    ann, bob = person("Ann", attrs={"country": "Portugal"}), person("Bob")
    gone, quiet = person("Cat", status="unsubscribed"), person("Dan")
    suppress(env.runtime.control.sessions, quiet.contact_id, "", "page")
    result = send_batch(env.runtime, Owner.campaign(campaign), "once", template, [ann, bob, gone, quiet])
    assert result.sent == [ann.contact_id, bob.contact_id]
    assert result.skipped == {gone.contact_id: "unsubscribed", quiet.contact_id: "unsubscribed"}
    rows = env.ledger(campaign)
    assert {cid: row.status for cid, row in rows.items()} == {
        ann.contact_id: "sent", bob.contact_id: "sent", gone.contact_id: "skipped",
        quiet.contact_id: "skipped"}
    assert env.received(gone.email) == [] and env.received(quiet.email) == []

    [raw] = [m.data for m in env.smtp.messages if ann.email in m.rcpt_tos]
    [msg] = env.received(ann.email)
    row = rows[ann.contact_id]
    # on the wire, the URLs are plain and unfolded (a folded header would be encoded words)
    assert re.search(rb"\r\nList-Unsubscribe: <http://t\.example\.test/u/[\w.-]+>, <mailto:", raw)
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n", 1)[0]
    message_id = f"{campaign}.{row.id}"
    assert msg["From"] == FROM
    assert msg["To"] == f"Ann Test <{ann.email}>"
    assert msg["Subject"] == "Welcome, Ann!"
    assert msg["X-Odnos-Message"] == message_id
    assert msg["Message-ID"] == row.smtp_message_id and msg["Message-ID"].endswith("@fernwood.example.com>")
    unsubscribe = re.fullmatch(r"<(http://t\.example\.test/u/([\w.-]+))>, "
                               r"<mailto:news@fernwood\.example\.com\?subject=unsubscribe%20([\w.-]+)>",
                               msg["List-Unsubscribe"])
    assert unsubscribe is not None and unsubscribe.group(2) == unsubscribe.group(3)
    assert CODEC.read_unsubscribe(unsubscribe.group(2)).contact_id == ann.contact_id
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Hi Ann," in text and "anywhere in Portugal" in text and f"{BASE}/c/" in text
    assert "Hi Ann,<br><br>Thanks for joining Fernwood." in html

    # Every link, as a recipient's client sees it: tracked ones redirect to the exact original.
    expected_targets = [
        "https://fernwood.example.com/?utm_source=welcome&utm_medium=email&utm_campaign=onboarding",
        "https://fernwood.example.com/shop/roasts?sort=popular&filter%5Borigin%5D=ethiopia#grid",
        f"https://fernwood.example.com/account/preferences?email={quote(ann.email)}",
    ]
    tracked = [h for h in _hrefs(html) if h.startswith(f"{BASE}/c/")]
    trap = [h for h in tracked if CODEC.read_click(h.rsplit("/", 1)[1]).link_id == TRAP_LINK_ID]
    assert len(trap) == 1
    assert re.search(rf'<a href="{re.escape(trap[0])}" aria-hidden="true" tabindex="-1" style="display:none',
                     html)
    landed = []
    for href in tracked:
        if href in trap:
            continue
        status, headers, _ = _get(env, href, headers={"User-Agent": CHROME})
        assert status == 302
        landed.append(headers["location"])
        token = CODEC.read_click(href.rsplit("/", 1)[1])
        assert (token.contact_id, token.message_id) == (ann.contact_id, message_id)
    assert landed == expected_targets
    assert unsubscribe.group(1) in _hrefs(html)  # the template's own {{ unsubscribe_url }}, untracked
    for kept in ("mailto:hello@fernwood.example.com?subject=Question%20about%20my%20order",
                 "tel:+441632960961"):
        assert kept in _hrefs(html)
    pixel = re.search(rf'<img src="({re.escape(BASE)}/o/[\w.-]+)" width="1" height="1" alt=""', html)
    assert pixel is not None and html.index(pixel.group(0)) < html.rindex("</body>")
    status, headers, body = _get(env, pixel.group(1), headers={"User-Agent": CHROME})
    assert (status, headers["content-type"], body[:6]) == (200, "image/gif", b"GIF89a")

    # The store has the denominators, and the collector recorded the open and the clicks.
    sent = env.collector.rows("name = 'email_sent' AND campaign_id = %(c)s", {"c": str(campaign)}, 2)
    assert sorted((r["contact_id"], r["message_id"]) for r in sent) == sorted(
        (c.contact_id, f"{campaign}.{rows[c.contact_id].id}") for c in (ann, bob))
    assert all(r["campaign_id"] == campaign_of(r["message_id"]) for r in sent)
    clicks = env.collector.rows("name = 'email_click' AND message_id = %(m)s", {"m": message_id}, 3)
    assert sorted(r["target_url"] for r in clicks) == sorted(expected_targets)
    opens = env.collector.rows("name = 'email_open' AND message_id = %(m)s", {"m": message_id}, 1)
    assert [r["contact_id"] for r in opens] == [ann.contact_id]

    # The same trigger again mails nobody.
    before = len(env.smtp.messages)
    again = send_batch(env.runtime, Owner.campaign(campaign), "once", template, [ann, bob, gone, quiet])
    assert (again.sent, again.skipped, sorted(again.already)) == (
        [], {}, sorted(c.contact_id for c in (ann, bob, gone, quiet)))
    assert len(env.smtp.messages) == before


def test_template_without_unsubscribe_or_text_gets_footer_and_generated_text(env: Env) -> None:
    campaign = env.campaign()
    template = env.template((FIXTURES / "receipt_transactional.html").read_text(encoding="utf-8"))
    eve = person("Eve")
    assert send_batch(env.runtime, Owner.campaign(campaign), "once", template, [eve]).sent == [eve.contact_id]
    [msg] = env.received(eve.email)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    unsubscribe_url = msg["List-Unsubscribe"].split(">", 1)[0][1:]
    assert f'<a href="{unsubscribe_url}" style="color:#777777">Unsubscribe</a></p>' in html
    assert "[Unsubscribe](" + unsubscribe_url + ")" in text
    assert "# Hi Eve," in text and "Orthopaedic bed, large" in text
    assert "GIF" not in text and TRAP_LINK_ID not in text


def test_own_text_part_is_kept_and_given_the_unsubscribe_link(env: Env) -> None:
    campaign = env.campaign()
    template = env.template("<p>Hi {{ contact.first_name }}</p>", text="Hello {{ contact.first_name }}.\n")
    fay = person("Fay")
    send_batch(env.runtime, Owner.campaign(campaign), "once", template, [fay])
    [msg] = env.received(fay.email)
    unsubscribe_url = msg["List-Unsubscribe"].split(">", 1)[0][1:]
    assert msg.get_body(("plain",)).get_content() == f"Hello Fay.\n\nUnsubscribe: {unsubscribe_url}\n"


def test_unsubscribe_page_button_and_one_click_stop_later_mail_but_a_get_does_not(env: Env) -> None:
    campaign = env.campaign()
    template = env.template("<p>Hi {{ contact.first_name }}, <a href='{{ unsubscribe_url }}'>leave</a></p>")
    ann, bob = person("Ann"), person("Bob")
    owner = Owner.campaign(campaign)
    both = [ann.contact_id, bob.contact_id]
    assert send_batch(env.runtime, owner, "week-1", template, [ann, bob]).sent == both
    [to_ann] = env.received(ann.email)
    [to_bob] = env.received(bob.email)
    page_url = re.search(r"href='([^']+/u/[^']+)'", to_ann.get_body(("html",)).get_content()).group(1)
    one_click_url = to_bob["List-Unsubscribe"].split(">", 1)[0][1:]

    status, _, page = _get(env, page_url)  # a scanner or a curious click: shows the button only
    assert status == 200 and b'id="confirm"' in page
    assert send_batch(env.runtime, owner, "week-2", template, [ann, bob]).sent == both

    status, _, page = _get(env, page_url, "POST", body="confirm=yes",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and b'id="done"' in page
    status, _, answer = _get(env, one_click_url, "POST", body="List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and b'"unsubscribed":true' in answer
    later = send_batch(env.runtime, owner, "week-3", template, [ann, bob])
    assert later.sent == [] and later.skipped == dict.fromkeys(both, "unsubscribed")
    assert len(env.received(ann.email)) == len(env.received(bob.email)) == 2


def test_survey_answers_are_recorded_machines_flagged_and_comments_taken(env: Env) -> None:
    campaign = env.campaign()
    template = env.template("<p>Hi</p>{{ survey('How likely are you to recommend Fernwood?') }}")
    gus = person("Gus")
    send_batch(env.runtime, Owner.campaign(campaign), "once", template, [gus])
    [msg] = env.received(gus.email)
    answers = [h for h in _hrefs(msg.get_body(("html",)).get_content()) if h.startswith(f"{BASE}/r/")]
    assert [CODEC.read_survey(h.rsplit("/", 1)[1]).score for h in answers] == list(range(11))
    message_id = msg["X-Odnos-Message"]

    status, _, page = _get(env, answers[9], headers={"User-Agent": CHROME})  # seconds after the send
    assert status == 200 and b"9 / 10" in page and b'name="comment"' in page
    status, _, _ = _get(env, answers[3], "HEAD", headers={"User-Agent": CHROME})
    assert status == 200
    time.sleep(2.5)  # out of the burst window of the two answers above
    later = CODEC.survey(gus.contact_id, message_id, "How likely are you to recommend Fernwood?", 8,
                         sent_at=time.time() - 3600)  # a person, an hour after the send
    assert _get(env, f"{BASE}/r/{later}", headers={"User-Agent": CHROME})[0] == 200
    status, _, page = _get(env, f"{BASE}/r/{later}", "POST", body="comment=Great+beans%2C+slow+delivery",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and b'id="done"' in page
    assert _get(env, f"{BASE}/r/{later}x")[0] == 400

    rows = env.collector.rows("name IN ('survey_response', 'survey_comment') AND message_id = %(m)s",
                              {"m": message_id}, 4)
    seen = sorted((r["name"], dict(zip(r["props.key"], r["props.value"], strict=True))["score"],
                   r["is_machine"], r["machine_reason"]) for r in rows)
    assert seen == [("survey_comment", "8", 0, ""), ("survey_response", "3", 1, "head_request"),
                    ("survey_response", "8", 0, ""), ("survey_response", "9", 1, "too_fast")]
    comment = next(r for r in rows if r["name"] == "survey_comment")
    assert comment["props.value"][comment["props.key"].index("comment")] == "Great beans, slow delivery"
    assert {r["contact_id"] for r in rows} == {gus.contact_id}


def test_refused_connection_stops_the_batch_and_the_next_run_sends_each_once(env: Env) -> None:
    campaign = env.campaign()
    template = env.template("<p>Hi {{ contact.first_name }}</p>")
    people = [person(f"P{n}") for n in range(8)]
    owner = Owner.campaign(campaign)
    with SmtpSender(f"smtp://127.0.0.1:{free_port()}", attempts=2, backoff=0.01) as dead:
        first = send_batch(env.runtime, owner, "once", template, people, smtp=dead)
    assert first.sent == [] and "cannot be reached" in first.stopped
    ids = [p.contact_id for p in people]
    tried = list(first.deferred)
    # the first message found the server down; the rest of its claim was not sent
    assert tried == ids[:len(tried)] and 1 <= len(tried) <= CLAIM
    assert first.not_attempted == ids[len(tried):]
    rows = env.ledger(campaign)
    assert sorted(rows) == sorted(tried)
    assert all(row.status == "failed" and row.error.startswith("deferred: ") for row in rows.values())

    second = send_batch(env.runtime, owner, "once", template, people)
    assert second.sent == ids
    assert [len(env.received(p.email)) for p in people] == [1] * len(people)
    assert {row.status for row in env.ledger(campaign).values()} == {"sent"}
    third = send_batch(env.runtime, owner, "once", template, people)
    assert third.sent == [] and [len(env.received(p.email)) for p in people] == [1] * len(people)


def test_421_then_accepted_is_sent_once(env: Env) -> None:
    campaign = env.campaign()
    template = env.template("<p>Hi</p>")
    kim = person("Kim")
    env.smtp.answer(f"RCPT {kim.email}", "421 4.7.0 Too many connections, try later")
    with SmtpSender(env.smtp.url, backoff=0.01) as sender:
        result = send_batch(env.runtime, Owner.campaign(campaign), "once", template, [kim], smtp=sender)
    assert result.sent == [kim.contact_id]
    assert len(env.received(kim.email)) == 1 and env.smtp.handler.rcpts.count(kim.email) == 2


def test_550_fails_the_row_reports_the_bounce_and_is_never_retried(env: Env) -> None:
    campaign = env.campaign()
    template = env.template("<p>Hi</p>")
    lea, max_ = person("Lea"), person("Max")
    env.smtp.answer(f"RCPT {lea.email}", "550 5.1.1 <lea>: Recipient address rejected: User unknown")
    bounces = []
    owner = Owner.campaign(campaign)
    result = send_batch(env.runtime, owner, "once", template, [lea, max_],
                        on_bounce=lambda contact, delivery: bounces.append((contact.email, delivery.code)))
    assert result.sent == [max_.contact_id] and result.bounced == [lea.contact_id]
    assert bounces == [(lea.email, 550)]
    row = env.ledger(campaign)[lea.contact_id]
    assert row.status == "failed" and row.error.startswith("permanent: 550 5.1.1")
    again = send_batch(env.runtime, owner, "once", template, [lea, max_])
    assert again.already == [lea.contact_id, max_.contact_id]
    assert env.smtp.handler.rcpts.count(lea.email) == 1 and env.received(lea.email) == []


def test_connection_lost_after_the_message_is_left_pending_and_not_resent(env: Env) -> None:
    campaign = env.campaign()
    template = env.template("<p>Hi</p>")
    ned = person("Ned")
    env.smtp.answer("DATA", DROP)
    owner = Owner.campaign(campaign)
    result = send_batch(env.runtime, owner, "once", template, [ned])
    assert result.unknown == [ned.contact_id]
    row = env.ledger(campaign)[ned.contact_id]
    assert row.status == "pending" and row.error.startswith("unknown: ")
    assert send_batch(env.runtime, owner, "once", template, [ned]).already == [ned.contact_id]
    assert len(env.received(ned.email)) == 1  # the one that may have been delivered, never a second


def test_bad_template_at_send_time_sends_nothing_and_writes_nothing(env: Env) -> None:
    campaign = env.campaign()
    with env.runtime.control.session() as session:  # written behind odnos's back, never checked
        template = Template(name="evil-" + uuid.uuid4().hex[:6], subject="Hi",
                            html="{{ ''.__class__.__mro__ }}")
        session.add(template)
    oli = person("Oli")
    with pytest.raises(TemplateError) as refused:
        send_batch(env.runtime, Owner.campaign(campaign), "once", template, [oli])
    assert refused.value.code == "template_unsafe"
    assert env.ledger(campaign) == {} and env.received(oli.email) == []


def test_a_template_failing_for_one_contact_fails_only_that_row(env: Env) -> None:
    campaign = env.campaign()
    template = env.template("<p>Your plan: {{ contact.attrs.plan }}</p>")
    pia, quin = person("Pia", attrs={"plan": "gold"}), person("Quin")
    result = send_batch(env.runtime, Owner.campaign(campaign), "once", template, [pia, quin])
    assert result.sent == [pia.contact_id] and list(result.failed) == [quin.contact_id]
    assert "plan" in result.failed[quin.contact_id]
    assert env.ledger(campaign)[quin.contact_id].error.startswith("permanent: template html:")
    assert "Your plan: gold" in env.received(pia.email)[0].get_body(("html",)).get_content()


def test_rule_owner_message_ids_group_under_the_rule(env: Env) -> None:
    assert Owner.rule(3).prefix == "r3" and campaign_of("r3.17") == "r3"
    assert Owner.campaign(7).columns() == {"campaign_id": 7} and Owner.rule(3).columns() == {"rule_id": 3}


def _shape(msg: EmailMessage, data: bytes) -> str:
    """A message as received, with what differs per message (ids, tokens, dates, names) blanked:
    its headers as on the wire, and its decoded parts."""
    headers = [line for line in data.decode().split("\r\n\r\n", 1)[0].split("\r\n")
               if not line.startswith(("Date:", "Message-ID:", "X-Odnos-Message:"))]
    parts = [part.get_content_type() + ": " + part.get_content() for part in msg.walk()
             if not part.is_multipart()]
    shape = "\n".join(headers + parts)
    shape = re.sub(rf"{re.escape(BASE)}/([cou])/[\w.-]+", r"/\1/TOKEN", shape)
    shape = re.sub(r"unsubscribe%20[\w.-]+", "unsubscribe%20TOKEN", shape)
    shape = re.sub(r"=+\d+==", "BOUNDARY", shape)
    return re.sub(r"W\dn\d+", "NAME", re.sub(r"[\w.]+@example\.org", "ADDRESS", shape))


def test_a_large_batch_composed_in_workers_sends_what_the_sending_process_would(env: Env) -> None:
    size = SMALLEST_BATCH + 10
    template = env.template('<p>Hi {{ contact.first_name }}, your plan: {{ contact.attrs.plan }}</p>'
                            '<a href="https://shop.example/p?b=2&amp;a=%2F#top">Shop</a> '
                            '<a href="mailto:help@shop.example">Help</a>')
    shared_pool(2).close()  # so workers alive after the send were started by it
    before = {p.pid for p in multiprocessing.active_children()}
    sent: dict[int, tuple[BatchResult, list[Contact], int]] = {}
    for workers in (2, 1):
        runtime = dataclasses.replace(env.runtime, settings=load_settings(
            {**env.overrides, "mail_workers": workers}, environ={}))
        # the first claim has nobody to mail, so its workers are given nothing
        people = [person(f"W{workers}n{n}", attrs={} if n % 10 == 3 else {"plan": "gold"},
                         status="unsubscribed" if n < CLAIM else "subscribed") for n in range(size)]
        campaign = env.campaign()
        result = send_batch(runtime, Owner.campaign(campaign), "once", template, people)
        sent[workers] = result, people, campaign
        if workers == 2:  # the pool's two processes composed
            spawned = {p.pid for p in multiprocessing.active_children()} - before
            assert len(spawned) == 2
    assert {p.pid for p in multiprocessing.active_children()} - before == spawned  # 1: none more

    shapes = {}
    for workers, (result, people, campaign) in sent.items():
        failing = [c.contact_id for n, c in enumerate(people) if n % 10 == 3 and n >= CLAIM]
        assert result.skipped == {c.contact_id: "unsubscribed" for c in people[:CLAIM]}
        assert sorted(result.failed) == sorted(failing)
        assert all("plan" in why for why in result.failed.values())
        assert result.sent == [c.contact_id for c in people[CLAIM:] if c.contact_id not in failing]
        rows = env.ledger(campaign)
        shapes[workers] = []
        for contact in people:
            if contact.contact_id in failing or contact.contact_id in result.skipped:
                assert env.received(contact.email) == []
                continue
            [(msg, data)] = [(m.message, m.data) for m in env.smtp.messages if contact.email in m.rcpt_tos]
            row = rows[contact.contact_id]
            assert msg["X-Odnos-Message"] == f"{campaign}.{row.id}"
            assert msg["Message-ID"] == row.smtp_message_id
            html = msg.get_body(("html",)).get_content()
            assert f"Hi {contact.first_name}, your plan: gold" in html
            [shop] = [h for h in _hrefs(html) if h.startswith(f"{BASE}/c/")
                      and CODEC.read_click(h.rsplit("/", 1)[1]).link_id != TRAP_LINK_ID]
            token = CODEC.read_click(shop.rsplit("/", 1)[1])
            assert (token.contact_id, token.message_id, token.target) == (
                contact.contact_id, f"{campaign}.{row.id}", "https://shop.example/p?b=2&a=%2F#top")
            shapes[workers].append(_shape(msg, data))
    assert len(shapes[2]) == size - CLAIM - len(failing)
    assert "NAME" in shapes[2][0] and "/c/TOKEN" in shapes[2][0]
    assert shapes[2] == shapes[1]


def test_a_compose_worker_killed_mid_batch_defers_what_it_held_up_and_the_next_batch_has_new_workers(
        env: Env) -> None:
    size, kill_at = SMALLEST_BATCH + 10, 3 * CLAIM
    template = env.template("<p>Hi {{ contact.first_name }}</p>")
    runtime = dataclasses.replace(env.runtime, settings=load_settings(
        {**env.overrides, "mail_workers": 2}, environ={}))
    shared_pool(2).close()
    before = {p.pid for p in multiprocessing.active_children()}
    people = [person(f"K{n}") for n in range(size)]
    campaign = env.campaign()
    owner = Owner.campaign(campaign)
    base = len(env.smtp.messages)
    workers: list[int] = []

    def kill_one() -> None:
        while len(env.smtp.messages) - base < kill_at and not done.is_set():
            time.sleep(0.01)
        workers.extend(p.pid for p in multiprocessing.active_children() if p.pid not in before)
        kill_a_compose_worker(workers, lambda: len(env.smtp.messages),
                              lambda: sum(r.status == "pending" for r in env.ledger(campaign).values()),
                              lambda: not done.is_set())

    done = threading.Event()
    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    try:
        with pytest.raises(ComposeWorkerDied) as died:
            send_batch(runtime, owner, "once", template, people)
    finally:
        done.set()
    killer.join(timeout=10)
    assert len(workers) == 2
    rows = env.ledger(campaign)
    sent = [c.contact_id for c in people if c.contact_id in rows and rows[c.contact_id].status == "sent"]
    deferred = [cid for cid, row in rows.items() if row.status == "failed"]
    assert sorted(sent + deferred) == sorted(rows)  # none pending: nothing may have left unrecorded
    assert all(rows[cid].error == "deferred: " + WORKER_DIED for cid in deferred)
    assert kill_at <= len(sent) == len(env.smtp.messages) - base and len(deferred) >= 1
    message = died.value.message
    assert message.startswith(WORKER_DIED) and f"the {len(deferred)} messages it held up are" in message
    assert "ODNOS_MAIL_WORKERS=1" in message and died.value.code == "compose_worker_died"

    again = send_batch(runtime, owner, "once", template, people)
    new = {p.pid for p in multiprocessing.active_children()} - before - set(workers)
    assert len(new) == 2  # the pool started new workers, which composed the rest
    assert again.sent == [c.contact_id for c in people if c.contact_id not in sent]
    assert [len(env.received(p.email)) for p in people] == [1] * size
    assert {row.status for row in env.ledger(campaign).values()} == {"sent"}
