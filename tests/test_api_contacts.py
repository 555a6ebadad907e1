"""The contacts API through the real server, on chDB and on the ClickHouse server.

Every expected value comes from what the test sent, never from the code under test: what one
upsert stored is read back by another route, the pages of the list are compared with the set of
addresses written, and each refusal is checked for its status, its code and the field it names.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from tests.fixtures.api import SEGMENT, SEGMENT_TAG, ApiWorld, api_world_fixture  # noqa: F401

pytestmark = pytest.mark.server


def _address(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


def _batch(world: ApiWorld, rows: list[dict]) -> dict:
    answer = world.call("POST", "/api/v1/contacts/batch", body={"contacts": rows})
    assert answer.status == 200, answer.body
    return answer.json()


def _list(world: ApiWorld, **params: str) -> list[dict]:
    """Every page of the list for these filters, followed through the cursor."""
    found, cursor = [], None
    while True:
        asked = {**params, **({"cursor": cursor} if cursor else {})}
        query = "&".join(f"{k}={quote(v)}" for k, v in asked.items())
        answer = world.call("GET", f"/api/v1/contacts?{query}")
        assert answer.status == 200, answer.body
        page = answer.json()
        found += page["contacts"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def test_put_creates_then_merges_then_is_unchanged(world: ApiWorld) -> None:
    email = _address("ann")
    path = f"/api/v1/contacts/{quote(email.upper())}"  # the address is normalised
    first = world.call("PUT", path, body={"first_name": "Ann", "attrs": {"plan": "pro", "city": "Oslo"},
                                          "tags": ["vip"]})
    assert first.status == 201, first.body
    assert first.json()["outcome"] == "created"
    contact = first.json()["contact"]
    assert (contact["email"], contact["first_name"], contact["attrs"], contact["tags"]) == (
        email, "Ann", {"plan": "pro", "city": "Oslo"}, ["vip"])
    assert contact["source"] == "api"

    second = world.call("PUT", path, body={"last_name": "Berg", "attrs": {"plan": "team"}, "tags": ["beta"]})
    assert second.status == 200 and second.json()["outcome"] == "updated", second.body
    merged = second.json()["contact"]
    assert (merged["first_name"], merged["last_name"]) == ("Ann", "Berg")  # first name kept
    assert merged["attrs"] == {"plan": "team", "city": "Oslo"}  # merged key by key
    assert sorted(merged["tags"]) == ["beta", "vip"]  # union
    assert merged["id"] == contact["id"]

    again = world.call("PUT", path, body={"last_name": "Berg", "tags": ["vip"]})
    assert again.status == 200 and again.json()["outcome"] == "unchanged", again.body

    read = world.call("GET", f"/api/v1/contacts/{quote(email)}", key="contacts_read")
    assert read.status == 200, read.body
    assert read.json()["contact"] == merged | {"updated_at": read.json()["contact"]["updated_at"]}
    assert read.json()["suppressed"] == {} and read.json()["visitors"] == []


def test_batch_is_idempotent_and_reports_each_row(world: ApiWorld) -> None:
    good = [_address(f"b{n}") for n in range(25)]
    rows = [{"email": e, "first_name": f"N{n}", "tags": ["batch"]} for n, e in enumerate(good)]
    rows.insert(3, {"email": "not-an-address"})
    first = _batch(world, rows)
    assert (first["created"], first["updated"], first["unchanged"], first["refused"]) == (25, 0, 0, 1)
    assert [r["email"] for r in first["results"]][:5] == [*good[:3], "not-an-address", good[3]]
    refused = first["results"][3]
    assert (refused["outcome"], refused["id"]) == ("refused", None)
    assert "not a valid email" in refused["reason"]

    again = _batch(world, rows)  # the same batch twice changes nothing
    assert (again["created"], again["updated"], again["unchanged"], again["refused"]) == (0, 0, 25, 1)

    for n in (0, 24):
        stored = world.call("GET", f"/api/v1/contacts/{quote(good[n])}").json()["contact"]
        assert (stored["first_name"], stored["tags"]) == (f"N{n}", ["batch"])


def test_batch_of_a_thousand_is_taken_and_one_more_is_413(world: ApiWorld) -> None:
    tag = "k-" + uuid.uuid4().hex[:6]
    rows = [{"email": _address("k"), "tags": [tag]} for _ in range(1000)]
    result = _batch(world, rows)
    assert result["created"] == 1000
    listed = _list(world, tag=tag, limit="300")  # four pages: 300, 300, 300, 100
    assert sorted(c["email"] for c in listed) == sorted(r["email"] for r in rows)
    assert len({c["id"] for c in listed}) == 1000  # no contact twice across pages

    over = world.call("POST", "/api/v1/contacts/batch", body={"contacts": rows + [{"email": _address("x")}]})
    assert over.status == 413 and over.error["code"] == "too_many" and over.error["field"] == "contacts"


def test_a_body_over_the_limit_is_413_and_stores_nothing(world: ApiWorld) -> None:
    email = _address("huge")
    rows = [{"email": email, "attrs": {f"a{n}": "x" * 4096 for n in range(100)}}] * 11  # ~4.5 MB
    answer = world.call("POST", "/api/v1/contacts/batch", body={"contacts": rows})
    assert answer.status == 413 and answer.error["code"] == "too_large", answer.body
    assert world.call("GET", f"/api/v1/contacts/{quote(email)}").status == 404


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"contacts": [{"email": "a@example.com"}, {"email": 5}]}, "contacts[1].email", "invalid"),
    ({"contacts": [{"email": "a@example.com", "tags": "vip"}]}, "contacts[0].tags", "invalid"),
    ({"contacts": [{"email": "a@example.com", "attrs": {"plan": 3}}]}, "contacts[0].attrs.plan", "invalid"),
    ({"contacts": [{"email": "a@example.com", "status": "gone"}]}, "contacts[0].status", "bad_status"),
    ({"contacts": [{"email": "a@example.com", "nickname": "x"}]}, "contacts[0].nickname", "unknown_field"),
    ({"contacts": [{"first_name": "no address"}]}, "contacts[0].email", "missing_field"),
    ({"contacts": ["a@example.com"]}, "contacts[0]", "invalid"),
    ({"contacts": {"email": "a@example.com"}}, "contacts", "invalid"),
    ({}, "contacts", "missing_field"),
    ([], "", "invalid"),
])
def test_a_batch_of_the_wrong_shape_is_422_naming_the_field(world: ApiWorld, body: object, field: str,
                                                            code: str) -> None:
    answer = world.call("POST", "/api/v1/contacts/batch", body=body)
    assert answer.status == 422, answer.body
    assert (answer.error["code"], answer.error.get("field")) == (code, field)
    assert world.call("GET", "/api/v1/contacts/a%40example.com").status == 404  # nothing stored


def test_malformed_bodies_are_400_and_415(world: ApiWorld) -> None:
    path = f"/api/v1/contacts/{quote(_address('m'))}"
    broken = world.call("PUT", path, raw=b'{"first_name": ')
    assert broken.status == 400 and broken.error["code"] == "bad_json", broken.body
    not_utf8 = world.call("PUT", path, raw=b'{"first_name": "\xff"}')
    assert not_utf8.status == 400 and not_utf8.error["code"] == "bad_json"
    form = world.call("PUT", path, raw=b"first_name=Ann",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 415 and form.error["code"] == "unsupported_media_type"
    bad_address = world.call("PUT", "/api/v1/contacts/not-an-address", body={})
    assert bad_address.status == 422 and bad_address.error["field"] == "email"
    long_name = world.call("PUT", path, body={"first_name": "x" * 201})
    assert long_name.status == 422 and long_name.error["field"] == "first_name"


def test_unknown_contact_and_route_are_404_in_json(world: ApiWorld) -> None:
    missing = world.call("GET", f"/api/v1/contacts/{quote(_address('nobody'))}")
    assert missing.status == 404 and missing.error["code"] == "not_found"
    route = world.call("GET", "/api/v1/no/such/route")
    assert route.status == 404 and route.error["code"] == "unknown_route"
    assert route.headers["content-type"].startswith("application/json")


def test_consent_moves_away_from_subscribed_only(world: ApiWorld) -> None:
    email = _address("c")
    assert world.call("PUT", f"/api/v1/contacts/{quote(email)}", body={}).status == 201
    path = f"/api/v1/contacts/{quote(email)}/consent"
    left = world.call("PUT", path, body={"status": "unsubscribed"})
    assert left.status == 200 and left.json()["contact"]["status"] == "unsubscribed", left.body
    back = world.call("PUT", path, body={"status": "subscribed"})
    assert back.status == 409 and (back.error["code"], back.error["field"]) == ("consent_kept", "status")
    # The upsert cannot subscribe it again either: the note says so and the status stays.
    upsert = world.call("PUT", f"/api/v1/contacts/{quote(email)}", body={"status": "subscribed"})
    assert upsert.status == 200 and "consent kept" in upsert.json()["note"]
    read = world.call("GET", f"/api/v1/contacts/{quote(email)}").json()
    assert read["contact"]["status"] == "unsubscribed" and read["suppressed"] == {"": "unsubscribed"}
    bad = world.call("PUT", path, body={"status": "gone"})
    assert bad.status == 422 and bad.error["field"] == "status"


def test_list_filters_by_tag_status_segment_and_time(world: ApiWorld) -> None:
    tag = "f-" + uuid.uuid4().hex[:6]
    older = [_address("old") for _ in range(4)]
    _batch(world, [{"email": e, "tags": [tag]} for e in older])
    time.sleep(1.1)  # contact times have whole seconds
    since = datetime.now(UTC).replace(microsecond=0).isoformat()
    newer = [_address("new") for _ in range(3)]
    _batch(world, [{"email": e, "tags": [tag, SEGMENT_TAG], "status": "bounced" if n == 0 else None}
                   for n, e in enumerate(newer)])

    assert sorted(c["email"] for c in _list(world, tag=tag)) == sorted(older + newer)
    assert sorted(c["email"] for c in _list(world, tag=tag, updated_since=since)) == sorted(newer)
    assert [c["email"] for c in _list(world, tag=tag, status="bounced")] == [newer[0]]
    assert sorted(c["email"] for c in _list(world, tag=tag, status="subscribed")) == sorted(older + newer[1:])
    in_segment = {c["email"] for c in _list(world, segment=SEGMENT)}
    assert set(newer) <= in_segment and not set(older) & in_segment
    assert _list(world, tag=tag, updated_since="2105-01-01") == []


@pytest.mark.parametrize(("query", "field", "status"), [
    ("limit=0", "limit", 422), ("limit=1001", "limit", 422), ("limit=ten", "limit", 422),
    ("status=gone", "status", 422), ("updated_since=yesterday", "updated_since", 422),
    ("colour=red", "colour", 422), ("segment=no%20such%20segment", "segment", 404),
])
def test_bad_list_parameters_name_the_parameter(world: ApiWorld, query: str, field: str, status: int) -> None:
    answer = world.call("GET", f"/api/v1/contacts?{query}")
    assert answer.status == status and answer.error["field"] == field, answer.body


def test_erase_removes_the_person_and_refuses_them_afterwards(world: ApiWorld) -> None:
    email = _address("gone")
    tag = "e-" + uuid.uuid4().hex[:6]
    assert world.call("PUT", f"/api/v1/contacts/{quote(email)}", body={"tags": [tag]}).status == 201
    erased = world.call("DELETE", f"/api/v1/contacts/{quote(email)}")
    assert erased.status == 200, erased.body
    assert erased.json()["erased"] == email and erased.json()["rows"]["contacts"] >= 1
    assert world.call("GET", f"/api/v1/contacts/{quote(email)}").status == 404
    assert _list(world, tag=tag) == []
    again = world.call("PUT", f"/api/v1/contacts/{quote(email)}", body={"first_name": "Back"})
    assert again.status == 409 and (again.error["code"], again.error["field"]) == ("erased", "email")
    batch = _batch(world, [{"email": email}])
    assert batch["refused"] == 1 and "erased" in batch["results"][0]["reason"]
    assert world.call("DELETE", f"/api/v1/contacts/{quote(email)}").status == 200  # safe to repeat


def test_contact_json_round_trips_through_the_document_shape(world: ApiWorld) -> None:
    """The fields a client sees are exactly the document's Contact schema."""
    schema = json.loads(world.call("GET", "/api/v1/openapi.json", key=None).body)["components"]["schemas"]
    email = _address("shape")
    contact = world.call("PUT", f"/api/v1/contacts/{quote(email)}", body={}).json()["contact"]
    assert set(contact) == set(schema["Contact"]["required"])


def test_what_the_api_changes_is_in_the_audit_log_under_its_key(world: ApiWorld) -> None:
    import sqlite3
    from pathlib import Path

    from tracker.contacts import contact_id_for

    email = _address("audited")
    assert world.call("PUT", f"/api/v1/contacts/{quote(email)}", body={"first_name": "Al"}).status == 201
    assert world.call("PUT", f"/api/v1/contacts/{quote(email)}/consent",
                      body={"status": "unsubscribed"}).status == 200
    assert world.call("DELETE", f"/api/v1/contacts/{quote(email)}").status == 200
    prefix = world.keys["all"].split("_")[1]
    database = Path(world.env["ODNOS_DATA_DIR"]) / "odnos.sqlite3"
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT actor, action, target FROM audit_log WHERE actor = ? ORDER BY id",
                          (f"api-key:{prefix}",)).fetchall()
    person = contact_id_for(email)
    mine = [action for _, action, target in rows if target == person or action == "contact_erased"]
    assert mine[-3:] == ["contacts_imported", "consent_changed", "contact_erased"]
    assert not [row for row in rows if email in row[2]]  # never the address: the id, or the erasure hash
