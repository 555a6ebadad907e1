"""The bounce and complaint webhook (``POST /api/v1/bounces``) through real HTTP, on both engines.

The generic JSON form, Amazon SES notifications inside SNS envelopes (posted as ``text/plain``
with the key in ``?key=``, as an SNS subscription URL carries it) and Postmark's bounce and
spam-complaint webhooks mark the contacts ``bounced`` or ``complained``: the contact rows, the
suppressions the mailer obeys, the ``consent`` history, and an ``email_bounce`` event per bounce
(with its campaign when the message is named). Soft bounces change nothing. An SNS subscription
confirmation is answered with its URL; refusals name the field at fault.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fixtures.processes import run_odnos
from tests.test_api_events import Api, start_api
from tests.test_dropin import engine_url
from tracker.contacts import contact_id_for
from tracker.control.models import Suppression

pytestmark = pytest.mark.server
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"
PEOPLE = [(f"{name}@example.com", name.title(), "Test") for name in
          ("ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal")]


def sns(note: dict) -> dict:
    """An SNS notification envelope around an SES notification, as SNS posts it."""
    return {"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", "TopicArn": TOPIC,
            "Message": json.dumps(note), "Timestamp": "2026-12-01T10:00:00.000Z", "SignatureVersion": "1",
            "Signature": "EXAMPLE", "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"}


def ses_bounce(kind: str, *emails: str) -> dict:
    return {"notificationType": "Bounce",
            "mail": {"source": "news@shop.example.com", "destination": list(emails)},
            "bounce": {"bounceType": kind, "bounceSubType": "General", "bouncedRecipients": [
                {"emailAddress": e, "action": "failed", "status": "5.1.1"} for e in emails]}}


@pytest.fixture(params=["chdb", "server"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    people = PEOPLE
    running = start_api(request.param, engine_url(request, "api_bounces_"), tmp_path / "data",
                        lambda env: _import(env, people))
    yield running
    running.served.server.stop()


def _import(env: dict[str, str], people: list[tuple[str, str, str]]) -> None:
    csv = Path(env["ODNOS_DATA_DIR"]) / "more.csv"
    csv.write_text("email,first_name,last_name\n" + "".join(f"{e},{f},{last}\n" for e, f, last in people),
                   encoding="utf-8")
    done = run_odnos("contacts", "import", str(csv), env=env)
    assert done.returncode == 0, done.stderr


def post(api: Api, body: object, *, query_key: str | None = None, key: str | None = "bounces",
         **headers: str) -> tuple[int, object]:
    path = "/api/v1/bounces" + (f"?key={api.keys[query_key]}" if query_key else "")
    status, _, answer = api.call("POST", path, body, key=key, headers=headers)
    return status, answer


def test_providers_reports_mark_contacts_and_stop_mail(api: Api) -> None:
    sns_headers = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"}
    answers = [
        post(api, {"email": "Ann@Example.com", "type": "bounce", "message": "spring-2026.m7"}),
        post(api, {"events": [{"email": "bob@example.com", "type": "complaint"},
                              {"email": "new@example.com", "type": "bounce"}]}),
        post(api, json.dumps(sns(ses_bounce("Permanent", "cy@example.com"))).encode(), query_key="bounces",
             key=None, **sns_headers),
        post(api, json.dumps(sns(ses_bounce("Transient", "dee@example.com"))).encode(), query_key="bounces",
             key=None, **sns_headers),
        post(api, json.dumps(sns({"notificationType": "Complaint", "complaint": {
            "complainedRecipients": [{"emailAddress": "eve@example.com"}], "complaintFeedbackType": "abuse"}})
        ).encode(), query_key="bounces", key=None, **sns_headers),
        post(api, {"RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, "Email": "fay@example.com",
                   "Inactive": True, "Tag": "autumn"}),
        post(api, {"RecordType": "Bounce", "Type": "SoftBounce", "TypeCode": 4096, "Email": "gus@example.com",
                   "Inactive": False}),
        post(api, {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "Email": "hal@example.com"}),
    ]
    assert all(status == 200 for status, _ in answers), answers
    assert answers[0][1] == {"skipped": [], "marked": [
        {"email": "ann@example.com", "status": "bounced", "outcome": "updated"}]}
    assert [m["outcome"] for m in answers[1][1]["marked"]] == ["updated", "created"]
    assert answers[3][1]["marked"] == [] and answers[3][1]["skipped"][0]["email"] == "dee@example.com"
    assert answers[6][1]["skipped"][0]["email"] == "gus@example.com"

    expected = {"ann": "bounced", "bob": "complained", "new": "bounced", "cy": "bounced", "eve": "complained",
                "fay": "bounced", "hal": "complained"}
    control = api.control
    with control.session() as session:
        suppressed = {row.contact_id: row.how for row in session.scalars(select(Suppression))}
    control.dispose()
    assert suppressed == {contact_id_for(f"{name}@example.com"): status for name, status in expected.items()}

    api.finish(expected=4)  # the four bounces' email_bounce events
    statuses = dict(api.sql("SELECT email, argMax(status, version) FROM contacts GROUP BY email"))
    assert statuses == {**{e: "subscribed" for e, _, _ in PEOPLE},
                        **{f"{name}@example.com": status for name, status in expected.items()}}
    bounces = api.sql("SELECT contact_id, campaign_id, message_id FROM events WHERE name = 'email_bounce' "
                      "ORDER BY contact_id")
    assert sorted(bounces) == sorted([
        [contact_id_for("ann@example.com"), "spring-2026", "spring-2026.m7"],
        [contact_id_for("new@example.com"), "", ""],
        [contact_id_for("cy@example.com"), "", ""],
        [contact_id_for("fay@example.com"), "autumn", "autumn"],
    ])
    consent = api.sql("SELECT contact_id, props.value[indexOf(props.key, 'how')] FROM events "
                      "WHERE name = 'consent' ORDER BY contact_id")
    assert dict(consent) == {
        **{contact_id_for(f"{n}@example.com"): "api" for n in ("ann", "bob", "new")},
        **{contact_id_for(f"{n}@example.com"): "ses" for n in ("cy", "eve")},
        **{contact_id_for(f"{n}@example.com"): "postmark" for n in ("fay", "hal")}}


def test_subscription_confirmation_and_refusals(api: Api) -> None:
    confirm = {"Type": "SubscriptionConfirmation", "TopicArn": TOPIC, "Token": "2336412f37",
               "Message": "You have chosen to subscribe to the topic.",
               "SubscribeURL": f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}"
                               "&Token=2336412f37"}
    status, answer = post(api, json.dumps(confirm).encode(), query_key="bounces", key=None,
                          **{"Content-Type": "text/plain; charset=UTF-8"})
    assert status == 200 and answer["subscribe_url"] == confirm["SubscribeURL"]
    assert any(confirm["SubscribeURL"] in line for line in api.served.server.output)

    cases = [
        (post(api, {"email": "ann@example.com", "type": "bounce"}, key=None), 401, "missing_key", None),
        (post(api, {"email": "ann@example.com", "type": "bounce"}, query_key="send", key=None), 403,
         "missing_scope", None),
        (post(api, {"email": "ann@example.com", "type": "soft"}), 422, "invalid", "type"),
        (post(api, {"email": "ann", "type": "bounce"}), 422, "bad_email", "email"),
        (post(api, {"events": [{"email": "ann@example.com", "type": "bounce", "why": "x"}]}), 422,
         "unknown_field", "events[0].why"),
        (post(api, {**sns({}), "Message": "{"}), 422, "invalid", "Message"),
        (post(api, sns({"notificationType": "Bounce", "bounce": {"bounceType": "Permanent",
                                                                 "bouncedRecipients": [{}]}})),
         422, "invalid", "Message.bounce.bouncedRecipients[0].emailAddress"),
        (post(api, {"RecordType": "Bounce", "Type": "HardBounce"}), 422, "missing_field", "Email"),
        (post(api, b"{", **{"Content-Type": "application/json"}), 400, "bad_json", None),
        (post(api, b"email=a", **{"Content-Type": "application/x-www-form-urlencoded"}), 415,
         "unsupported_media_type", None),
    ]
    for (status, answer), want_status, code, field in cases:
        assert status == want_status and answer["error"]["code"] == code, answer
        assert answer["error"].get("field") == field, answer
    time.sleep(0.3)
    control = api.control
    with control.session() as session:
        assert session.scalars(select(Suppression)).all() == []  # no refusal marked anybody
    control.dispose()
