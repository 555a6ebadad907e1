"""Dashboard users: add_user's checks and duplicates, check_password's answers."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from tracker.control.db import ControlPlane
from tracker.control.models import Role, User
from tracker.control.users import MAX_PASSWORD_LENGTH, add_user, check_password
from tracker.errors import OdnosError

PASSWORD = "correct horse"


def test_add_user_normalises_email_and_hashes_password(control: ControlPlane) -> None:
    with control.session() as session:
        user = add_user(session, "  Ann@Example.COM ", PASSWORD, "marketer")
    assert user.id is not None
    with control.session() as session:
        stored = session.get(User, user.id)
    assert (stored.email, stored.role, stored.disabled) == ("ann@example.com", Role.marketer, False)
    assert PASSWORD not in stored.password_hash
    assert stored.password_hash.startswith(("scrypt:", "pbkdf2:"))


@pytest.mark.parametrize(
    ("email", "password", "role", "code"),
    [
        ("not-an-email", PASSWORD, "admin", "bad_email"),
        ("ann@example.com", "short", "admin", "bad_password"),
        ("ann@example.com", "x" * (MAX_PASSWORD_LENGTH + 1), "admin", "bad_password"),
        ("ann@example.com", None, "admin", "bad_password"),
        ("ann@example.com", PASSWORD, "owner", "bad_role"),
    ],
)
def test_add_user_refuses_bad_input(
    control: ControlPlane, email: str, password: str, role: str, code: str
) -> None:
    with pytest.raises(OdnosError) as caught, control.session() as session:
        add_user(session, email, password, role)
    assert caught.value.code == code
    with control.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_duplicate_email_is_refused_whatever_its_case(control: ControlPlane) -> None:
    with control.session() as session:
        add_user(session, "ann@example.com", PASSWORD, Role.admin)
    with pytest.raises(OdnosError) as caught, control.session() as session:
        add_user(session, "ANN@example.com", PASSWORD, Role.viewer)
    assert (caught.value.code, caught.value.status) == ("duplicate_email", 409)


def test_duplicate_added_concurrently_is_refused_with_the_same_error(control: ControlPlane) -> None:
    """The second insert passes the existence check (the first is not committed yet) and then
    hits the unique constraint; it must still come out as duplicate_email."""
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with control.session() as session:
                add_user(session, "ann@example.com", PASSWORD, Role.viewer)
        except BaseException as exc:
            errors.append(exc)

    with control.session() as session:
        add_user(session, "ann@example.com", PASSWORD, Role.admin)  # flushed, not committed
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)  # the thread checks, finds nothing, and blocks on its insert
    thread.join(30)
    assert len(errors) == 1 and isinstance(errors[0], OdnosError), errors
    assert errors[0].code == "duplicate_email"


@pytest.fixture
def ann(control: ControlPlane) -> int:
    with control.session() as session:
        return add_user(session, "ann@example.com", PASSWORD, Role.admin).id


def test_check_password_accepts_the_right_password(control: ControlPlane, ann: int) -> None:
    with control.session() as session:
        user = check_password(session, "Ann@Example.com", PASSWORD)
    assert user is not None and user.id == ann


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ann@example.com", "wrong password"),
        ("ann@example.com", ""),
        ("bob@example.com", PASSWORD),
        ("not an email", PASSWORD),
        ("ann@example.com", None),
    ],
)
def test_check_password_refuses_wrong_pairs(
    control: ControlPlane, ann: int, email: str, password: str
) -> None:
    with control.session() as session:
        assert check_password(session, email, password) is None


def test_check_password_refuses_a_disabled_user(control: ControlPlane, ann: int) -> None:
    with control.session() as session:
        session.get(User, ann).disabled = True
    with control.session() as session:
        assert check_password(session, "ann@example.com", PASSWORD) is None
