"""A person's data on request, on both engines: the export holds exactly the stored rows tied to that
person (expected sets built here from the rows inserted), and nothing of anyone else; the same for a
visitor id; and `odnos contacts export` prints it as JSON and records it in the audit log."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fixtures.processes import odnos_env, run_odnos
from tracker.contacts import contact_id_for
from tracker.control.consent import suppress
from tracker.control.db import ControlPlane
from tracker.control.models import AuditEntry, Campaign, SendLedger, SendStatus, utcnow
from tracker.crm.contacts import ContactUpdate, set_status, upsert_contacts
from tracker.crm.export import export_contact, export_visitor
from tracker.events import event_row
from tracker.store.migrate import migrate

KEYS = ("test-key-" + "k" * 24,)
ANN, BOB = "ann@example.com", "bob@example.com"
SITE, OTHER_SITE = "s_exportsite", "s_othersite"


@pytest.fixture
def control(tmp_path: Path) -> ControlPlane:
    plane = ControlPlane(f"sqlite:///{tmp_path / 'control.db'}")
    plane.migrate()
    yield plane
    plane.dispose()


def _rows(ann: str, bob: str, t0: float) -> dict[str, dict]:
    """The events of the test, by a short name; the comments say whose each one is."""
    def ev(name: str, minutes: int, **fields) -> dict:
        return event_row(name, t0 + 60 * minutes, **fields)

    return {
        "a_sent": ev("email_sent", 0, contact_id=ann, campaign_id="7", message_id="m1"),  # Ann's
        "a_open": ev("email_open", 5, contact_id=ann, campaign_id="7", message_id="m1"),  # Ann's
        "a_identify": ev("identify", 10, site_id=SITE, visitor_id="v_ann", contact_id=ann),  # Ann's
        "a_view": ev("pageview", 11, site_id=SITE, visitor_id="v_ann", url="https://shop.example.com/p?x=1",
                     pathname="/p", hostname="shop.example.com", props={"plan": "pro"}),  # Ann's (linked)
        "a_engaged": ev("engagement", 12, site_id=SITE, visitor_id="v_ann", engaged_ms=4200),  # Ann's
        "shared_ann": ev("identify", 20, site_id=SITE, visitor_id="v_shared", contact_id=ann),  # Ann's
        "shared_view": ev("pageview", 30, site_id=SITE, visitor_id="v_shared"),  # Bob's: newest link
        "shared_bob": ev("identify", 40, site_id=SITE, visitor_id="v_shared", contact_id=bob),  # Bob's
        # Bob's (an event no identity link comes from: v_ann stays Ann's)
        "ann_device_bob": ev("signup", 50, site_id=SITE, visitor_id="v_ann", contact_id=bob),
        "b_sent": ev("email_sent", 60, contact_id=bob, campaign_id="7", message_id="m2"),  # Bob's
        "stranger": ev("pageview", 70, site_id=SITE, visitor_id="v_x"),  # nobody's
        "other_site": ev("pageview", 80, site_id=OTHER_SITE, visitor_id="v_ann"),  # not linked there
    }


def test_an_export_holds_exactly_the_persons_rows(store, control: ControlPlane) -> None:
    migrate(store)
    ann, bob = contact_id_for(ANN), contact_id_for(BOB)
    upsert_contacts(store, control, KEYS, [ContactUpdate(ANN, first_name="Ann", attrs={"city": "Paris"},
                                                         tags=("vip",)),
                                           ContactUpdate(BOB, first_name="Bob")], source="import")
    set_status(store, control, KEYS, ANN, "unsubscribed", how="api")
    suppress(control.sessions, ann, "news", "page")
    t0 = time.time() - 3 * 86400
    rows = _rows(ann, bob, t0)
    store.insert("events", list(rows.values()))
    with control.session() as db:
        campaign = Campaign(name="spring", subject="Spring")
        db.add(campaign)
        db.flush()
        db.add_all([SendLedger(campaign_id=campaign.id, contact_id=who, trigger_key="once",
                               status=SendStatus.sent, sent_at=utcnow(), smtp_message_id=f"<{who}@x>")
                    for who in (ann, bob)])

    document = export_contact(store, control, ANN)

    anns = {"a_sent", "a_open", "a_identify", "a_view", "a_engaged", "shared_ann"}
    by_id = {row["event_id"]: key for key, row in rows.items()}
    exported = [e for e in document["events"] if e["name"] != "consent"]
    assert sorted(by_id[e["event_id"]] for e in exported) == sorted(anns)
    consent = [e for e in document["events"] if e["name"] == "consent"]
    assert [(e["contact_id"], e["props"]["status"]) for e in consent] == [(ann, "unsubscribed")]
    assert document["consent"]["history"] == consent
    assert document["consent"]["status"] == "unsubscribed"
    assert {(s["list_id"], s["how"]) for s in document["consent"]["suppressions"]} == {("", "unsubscribed"),
                                                                                      ("news", "page")}
    view = next(e for e in exported if e["event_id"] == rows["a_view"]["event_id"])
    inserted = rows["a_view"]
    assert (view["url"], view["pathname"], view["visitor_id"], view["props"]) == (
        inserted["url"], "/p", "v_ann", {"plan": "pro"})
    assert view["ts"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(inserted["ts"])))
    assert next(e for e in exported if e["name"] == "engagement")["engaged_ms"] == 4200
    assert [e["event_id"] for e in document["events"]] == [
        e["event_id"] for e in sorted(document["events"], key=lambda e: e["ts"])]
    contact = document["contact"]
    assert (contact["email"], contact["first_name"], contact["attrs"], contact["tags"]) == (
        ANN, "Ann", {"city": "Paris"}, ["vip"])
    visitors = {(v["site_id"], v["visitor_id"]): v["current"] for v in document["visitors"]}
    assert visitors[(SITE, "v_ann")] is True and visitors.get((SITE, "v_shared"), False) is False
    assert [(m["campaign"], m["status"], m["smtp_message_id"]) for m in document["messages"]] == [
        ("spring", "sent", f"<{ann}@x>")]
    text = json.dumps(document)
    assert bob not in text and BOB not in text and "v_x" not in text and OTHER_SITE not in text


def test_a_visitor_export_holds_that_visitors_rows(store, control: ControlPlane) -> None:
    migrate(store)
    ann, bob = contact_id_for(ANN), contact_id_for(BOB)
    rows = _rows(ann, bob, time.time() - 86400)
    store.insert("events", list(rows.values()))
    by_id = {row["event_id"]: key for key, row in rows.items()}

    on_site = export_visitor(store, "v_ann", SITE)
    assert sorted(by_id[e["event_id"]] for e in on_site["events"]) == sorted(
        ["a_identify", "a_view", "a_engaged", "ann_device_bob"])
    assert [(i["site_id"], i["contact_id"], i["method"]) for i in on_site["identities"]] == [
        (SITE, ann, "identify")]
    everywhere = export_visitor(store, "v_ann")
    assert sorted(by_id[e["event_id"]] for e in everywhere["events"]) == sorted(
        ["a_identify", "a_view", "a_engaged", "ann_device_bob", "other_site"])
    assert "v_shared" not in json.dumps(everywhere) and "v_x" not in json.dumps(everywhere)


@pytest.mark.server
def test_the_command_prints_the_export_and_records_it(tmp_path: Path, clickhouse_server) -> None:
    env = odnos_env(tmp_path / "data", ODNOS_LOG_LEVEL="WARNING",
                    ODNOS_CLICKHOUSE_URL=clickhouse_server.url_for("export_" + uuid.uuid4().hex[:8]))
    people = tmp_path / "people.csv"
    people.write_text(f"email,first_name,status\n{ANN},Ann,subscribed\n{BOB},Bob,unsubscribed\n")
    imported = run_odnos("contacts", "import", str(people), env=env)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    done = run_odnos("contacts", "export", BOB, env=env)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["subject"] == {"email": BOB, "contact_id": contact_id_for(BOB)}
    assert document["consent"]["status"] == "unsubscribed"
    assert [e["props"]["status"] for e in document["consent"]["history"]] == ["unsubscribed"]
    assert ANN not in done.stdout
    for args, message in ((("contacts", "export"), "give an address or --visitor ID"),
                          (("contacts", "export", ANN, "--site", SITE), "--site goes with --visitor"),
                          (("contacts", "export", "nobody@example.com"), "no contact nobody@example.com")):
        refused = run_odnos(*args, env=env)
        assert refused.returncode == 2 and refused.stderr.startswith("odnos: error: "), refused.stderr
        assert message in refused.stderr and refused.stdout == ""
    control = ControlPlane(f"sqlite:///{tmp_path / 'data' / 'odnos.sqlite3'}")
    with control.session() as db:
        logged = db.scalars(select(AuditEntry).where(AuditEntry.action == "contact_exported")).all()
        assert [(e.target, json.loads(e.detail)) for e in logged] == [
            (contact_id_for(BOB), {"events": len(document["events"])})]
    control.dispose()
