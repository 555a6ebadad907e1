"""API keys: the plaintext's shape, what is stored, and which keys verify."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest

from tracker.control.api_keys import create_api_key, revoke_api_key, verify_api_key
from tracker.control.db import ControlPlane
from tracker.control.models import ApiKey, Role, User, utcnow
from tracker.errors import NotFound, OdnosError


@pytest.fixture
def user_id(control: ControlPlane) -> int:
    with control.session() as session:
        user = User(email="ann@example.com", password_hash="unused", role=Role.admin)
        session.add(user)
        session.flush()
        return user.id


@pytest.fixture
def key(control: ControlPlane, user_id: int) -> tuple[int, str]:
    with control.session() as session:
        row, plaintext = create_api_key(session, user_id, " CI uploads ")
        return row.id, plaintext


def _verify(control: ControlPlane, plaintext: str) -> ApiKey | None:
    with control.session() as session:
        return verify_api_key(session, plaintext)


def test_plaintext_has_the_documented_shape_and_only_its_hash_is_stored(
    control: ControlPlane, key: tuple[int, str]
) -> None:
    key_id, plaintext = key
    match = re.fullmatch(r"odn_([0-9a-f]{12})_([A-Za-z0-9_-]{43})", plaintext)
    assert match, plaintext
    with control.session() as session:
        row = session.get(ApiKey, key_id)
    assert (row.name, row.prefix) == ("CI uploads", match[1])
    assert row.key_hash == hashlib.sha256(match[2].encode()).hexdigest()
    assert match[2] not in (row.key_hash, row.prefix, row.name)


def test_right_key_verifies_and_is_marked_used(
    control: ControlPlane, key: tuple[int, str], user_id: int
) -> None:
    verified = _verify(control, key[1])
    assert verified is not None and verified.id == key[0] and verified.user_id == user_id
    assert verified.last_used_at is not None
    with control.session() as session:
        assert session.get(ApiKey, key[0]).last_used_at == verified.last_used_at


def test_last_used_is_refreshed_at_most_once_a_minute(control: ControlPlane, key: tuple[int, str]) -> None:
    first = _verify(control, key[1]).last_used_at
    assert _verify(control, key[1]).last_used_at == first
    with control.session() as session:
        session.get(ApiKey, key[0]).last_used_at = first - timedelta(minutes=2)
    assert _verify(control, key[1]).last_used_at > first - timedelta(minutes=2)


def _tampered(plaintext: str) -> str:
    scheme, prefix, secret = plaintext.split("_", 2)
    return f"{scheme}_{prefix}_{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"


@pytest.mark.parametrize(
    "mangle",
    [
        _tampered,
        lambda p: p[:-1],
        lambda p: p.replace("odn_", "xyz_", 1),
        lambda p: "odn_000000000000_" + p.split("_", 2)[2],  # right secret, unknown prefix
        lambda p: "_".join(p.split("_", 2)[:2]),
        lambda p: "",
        lambda p: None,
    ],
    ids=[
        "wrong-secret",
        "truncated",
        "wrong-scheme",
        "unknown-prefix",
        "missing-part",
        "empty",
        "not-a-string",
    ],
)
def test_wrong_keys_do_not_verify(control: ControlPlane, key: tuple[int, str], mangle) -> None:
    assert _verify(control, mangle(key[1])) is None


def test_revoked_key_does_not_verify(control: ControlPlane, key: tuple[int, str]) -> None:
    with control.session() as session:
        revoked = revoke_api_key(session, key[0])
        assert revoked.revoked_at is not None
    assert _verify(control, key[1]) is None


def test_key_of_a_disabled_user_does_not_verify(
    control: ControlPlane, key: tuple[int, str], user_id: int
) -> None:
    with control.session() as session:
        session.get(User, user_id).disabled = True
    assert _verify(control, key[1]) is None


def test_each_key_is_distinct(control: ControlPlane, user_id: int) -> None:
    with control.session() as session:
        keys = [create_api_key(session, user_id, f"key {n}") for n in range(5)]
    assert len({plaintext for _, plaintext in keys}) == len({row.prefix for row, _ in keys}) == 5
    assert all(_verify(control, plaintext).id == row.id for row, plaintext in keys)


def test_create_refuses_unknown_user_and_bad_name(control: ControlPlane, user_id: int) -> None:
    with pytest.raises(NotFound) as unknown, control.session() as session:
        create_api_key(session, user_id + 1000, "ci")
    assert unknown.value.code == "unknown_user"
    with pytest.raises(OdnosError) as bad, control.session() as session:
        create_api_key(session, user_id, "   ")
    assert bad.value.code == "bad_name"


def test_revoking_an_unknown_key_is_not_found(control: ControlPlane) -> None:
    with pytest.raises(NotFound) as caught, control.session() as session:
        revoke_api_key(session, 12345)
    assert caught.value.code == "unknown_api_key"


def test_revoking_twice_keeps_the_first_time(control: ControlPlane, key: tuple[int, str]) -> None:
    with control.session() as session:
        first = revoke_api_key(session, key[0]).revoked_at
    with control.session() as session:
        assert revoke_api_key(session, key[0]).revoked_at == first <= utcnow()
