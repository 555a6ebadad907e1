"""Signed tokens (click, open, unsubscribe, hand-off), redirect targets, identify hashes, contact ids."""

from __future__ import annotations

import hashlib
import hmac
import random
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from tracker.contacts import contact_id_for, normalize_email
from tracker.errors import ConfigError, InvalidToken, OdnosError
from tracker.tokens import (
    DEFAULT_HANDOFF_MAX_AGE,
    DEFAULT_MAX_AGE,
    ClickToken,
    OpenToken,
    TokenCodec,
    UnsubscribeToken,
    identify_hash,
    safe_target,
    verify_identify,
)

TARGET = "https://shop.example.com/products/blue-shoes?size=42"
CID = contact_id_for("ann@example.com")
T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def codec(clock: Clock) -> TokenCodec:
    return TokenCodec(["new-key-0123456789", "old-key-0123456789"], clock=clock)


def make_all(codec: TokenCodec) -> dict[str, str]:
    return {
        "click": codec.click(CID, "m42", 7, TARGET),
        "open": codec.open(CID, "m42"),
        "unsubscribe": codec.unsubscribe(CID, "weekly"),
        "handoff": codec.handoff(CID),
    }


def read(codec: TokenCodec, kind: str, token: str | bytes) -> object:
    return getattr(codec, f"read_{kind}")(token)


# -- round trips -----------------------------------------------------------------------------------


def test_round_trip_every_kind(codec: TokenCodec) -> None:
    tokens = make_all(codec)
    issued = int(T0)
    assert codec.read_click(tokens["click"]) == ClickToken(CID, "m42", 7, TARGET, issued, issued)
    assert codec.read_open(tokens["open"]) == OpenToken(CID, "m42", issued, issued)
    assert codec.read_unsubscribe(tokens["unsubscribe"]) == UnsubscribeToken(CID, "weekly", issued)
    assert codec.read_handoff(tokens["handoff"]) == CID


def test_ids_keep_their_type_and_empty_list_id_means_all(codec: TokenCodec) -> None:
    click = codec.read_click(codec.click(CID, 1234, "cta", TARGET))
    assert (click.message_id, click.link_id) == (1234, "cta")
    assert codec.read_open(codec.open(CID, 99)).message_id == 99
    assert codec.read_unsubscribe(codec.unsubscribe(CID)).list_id == ""
    assert codec.read_click(codec.click(CID, 1, 1, TARGET).encode()).target == TARGET  # bytes accepted


def test_typical_tracked_url_is_short(codec: TokenCodec) -> None:
    url = "https://t.example.com/c/" + codec.click(CID, 1234, 3, TARGET)
    print(f"\ntracked URL ({len(url)} chars): {url}")
    assert len(url) < 200
    assert url.isascii() and "%" not in url  # nothing to escape in a URL path


def test_long_repetitive_target_is_compressed(codec: TokenCodec) -> None:
    target = "https://shop.example.com/?" + "&".join(f"utm_source=newsletter{i}" for i in range(30))
    token = codec.click(CID, 1, 1, target)
    assert token.startswith(".")  # itsdangerous marks compressed payloads with a leading dot
    assert len(token) < len(target)
    assert codec.read_click(token).target == target


def test_bad_ids_fail_at_creation(codec: TokenCodec) -> None:
    with pytest.raises(ValueError):
        codec.click("", 1, 1, TARGET)
    with pytest.raises(ValueError):
        codec.open(CID, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        codec.open(CID, True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        codec.unsubscribe(CID, 3)  # type: ignore[arg-type]


def test_keys_must_be_a_non_empty_list() -> None:
    with pytest.raises(ConfigError, match="list"):
        TokenCodec("newkey,oldkey")
    with pytest.raises(ConfigError):
        TokenCodec([])
    with pytest.raises(ConfigError):
        TokenCodec(["new", ""])


# -- rotation --------------------------------------------------------------------------------------


def test_rotation(clock: Clock) -> None:
    before = TokenCodec(["old"], clock=clock)
    rotated = TokenCodec(["new", "old"], clock=clock)
    only_new = TokenCodec(["new"], clock=clock)
    only_old = TokenCodec(["old"], clock=clock)
    for kind, token in make_all(before).items():
        assert read(rotated, kind, token) == read(before, kind, token)  # links in inboxes still work
        with pytest.raises(InvalidToken) as err:
            read(only_new, kind, token)  # old key removed: the old links stop working
        assert err.value.code == "bad_token"
    for kind, token in make_all(rotated).items():
        read(only_new, kind, token)  # the newest key signs...
        with pytest.raises(InvalidToken):
            read(only_old, kind, token)  # ...not the old one


# -- send time -------------------------------------------------------------------------------------

# Made by the release before tokens carried a send time (newest key of ``codec``, signed at T0). Such
# links sit in inboxes: they must keep verifying and keep meaning "sent when signed".
OLD_CLICK = ("WyJmYjA2YTY2OTAyYmMxNjUyIiwibTQyIiw3LCJodHRwczovL3Nob3AuZXhhbXBsZS5jb20vcHJvZHVjdHMvYmx1ZS1z"
             "aG9lcz9zaXplPTQyIl0.ZVPxAA.1GvJbL7zwiRkiNZtO_pWICnG8S8")
OLD_OPEN = "WyJmYjA2YTY2OTAyYmMxNjUyIiwibTQyIl0.ZVPxAA.R1IdDKcwi9Bf4Nk6ugJKFSQM6v4"


def test_tokens_from_before_send_times_verify_and_mean_sent_when_signed(
        codec: TokenCodec, clock: Clock) -> None:
    clock.now = T0 + 30 * 86400
    assert codec.read_click(OLD_CLICK) == ClickToken(CID, "m42", 7, TARGET, int(T0), int(T0))
    assert codec.read_open(OLD_OPEN) == OpenToken(CID, "m42", int(T0), int(T0))


def test_by_default_the_send_is_the_signing_and_tokens_are_as_before(codec: TokenCodec) -> None:
    """odnos's own mailer signs as it sends: its tokens stay byte for byte what they were."""
    assert codec.click(CID, "m42", 7, TARGET) == OLD_CLICK
    assert codec.open(CID, "m42") == OLD_OPEN


def test_a_known_send_time_travels_in_the_token(codec: TokenCodec) -> None:
    later = T0 + 3600.7  # links made an hour before a scheduled send; seconds are whole
    click = codec.read_click(codec.click(CID, "spring", 7, TARGET, sent_at=later))
    opened = codec.read_open(codec.open(CID, "spring", sent_at=later))
    assert (click.issued_at, click.sent_at) == (int(T0), int(T0) + 3600)
    assert (opened.issued_at, opened.sent_at) == (int(T0), int(T0) + 3600)
    assert codec.read_click(codec.click(CID, "spring", 7, TARGET, sent_at=T0 - 5)).sent_at == int(T0) - 5
    assert codec.read_open(codec.open(CID, 99, sent_at=int(T0))).sent_at == int(T0)


def test_an_unknown_send_time_stays_unknown(codec: TokenCodec) -> None:
    assert codec.read_click(codec.click(CID, "spring", 7, TARGET, sent_at=None)).sent_at is None
    assert codec.read_open(codec.open(CID, "spring", sent_at=None)).sent_at is None


@pytest.mark.parametrize("bad", [True, float("nan"), float("inf"), "2025-03-10T09:00:00Z", [T0]])
def test_send_times_of_the_wrong_type_fail_at_creation(codec: TokenCodec, bad: object) -> None:
    with pytest.raises(ValueError, match="sent_at"):
        codec.click(CID, 1, 1, TARGET, sent_at=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sent_at"):
        codec.open(CID, 1, sent_at=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("offset", [DEFAULT_MAX_AGE + 1, -DEFAULT_MAX_AGE - 1, -T0 - 1])
def test_send_times_beyond_a_tokens_life_are_a_users_mistake(codec: TokenCodec, offset: float) -> None:
    for make in (lambda: codec.click(CID, 1, 1, TARGET, sent_at=T0 + offset),
                 lambda: codec.open(CID, 1, sent_at=T0 + offset)):
        with pytest.raises(OdnosError, match="days from now") as err:
            make()
        assert (err.value.code, err.value.status) == ("bad_sent_at", 400)
    codec.open(CID, 1, sent_at=T0 + DEFAULT_MAX_AGE)  # a send scheduled as far ahead as a token lives


@pytest.mark.parametrize("extra", [["1741600000"], [1.5], [True], [-1], [[]], [{"t": 1}], [None, None],
                                   [1, 2]])
def test_a_signed_token_with_a_malformed_send_time_is_rejected(extra: list) -> None:
    codec = TokenCodec(["k"])
    click = URLSafeTimedSerializer(["k"], salt="odnos.click.v1").dumps([CID, 1, 1, TARGET, *extra])
    opened = URLSafeTimedSerializer(["k"], salt="odnos.open.v1").dumps([CID, 1, *extra])
    for read_it, token in ((codec.read_click, click), (codec.read_open, opened)):
        with pytest.raises(InvalidToken) as err:
            read_it(token)
        assert err.value.code == "bad_token"


def test_a_send_time_keeps_tracked_urls_short(codec: TokenCodec) -> None:
    plain = len(codec.click(CID, 1234, 3, TARGET))
    for sent in (T0 + 86400, None):
        token = codec.click(CID, 1234, 3, TARGET, sent_at=sent)
        assert len("https://t.example.com/c/" + token) < 200
        assert len(token) - plain <= 16, sent  # ",1700086400" is 11 characters of JSON, in base64
    assert len(codec.open(CID, 1234, sent_at=None)) - len(codec.open(CID, 1234)) <= 8


# -- tampering, truncation, garbage ----------------------------------------------------------------


def _flip(token: str, index: int) -> str:
    ch = token[index]
    # Change the high bits of the base64 digit: the last digit of a signature has unused low bits.
    return token[:index] + ("A" if ch not in "Aa" else "z") + token[index + 1 :]


@pytest.mark.parametrize("kind", ["click", "open", "unsubscribe", "handoff"])
def test_tampered_payload_timestamp_or_signature(codec: TokenCodec, kind: str) -> None:
    token = make_all(codec)[kind]
    payload, stamp, signature = token.lstrip(".").split(".")
    offset = len(token) - len(token.lstrip("."))
    spots = {
        "payload": offset + len(payload) // 2,
        "timestamp": offset + len(payload) + 2,
        "signature": len(token) - len(signature) // 2,
    }
    for where, index in spots.items():
        with pytest.raises(InvalidToken) as err:
            read(codec, kind, _flip(token, index))
        assert err.value.code == "bad_token", where


@pytest.mark.parametrize("kind", ["click", "open", "unsubscribe", "handoff"])
def test_every_truncation_is_rejected(codec: TokenCodec, kind: str) -> None:
    token = make_all(codec)[kind]
    for end in range(len(token)):
        with pytest.raises(InvalidToken) as err:
            read(codec, kind, token[:end])
        assert err.value.code == "bad_token"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b.c",
        "....",
        "é" * 40,
        "token\x00",
        "A" * 3000,
        "W10.AAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAA",
        b"\xff\xfe",
        None,
        12345,
    ],
)
def test_garbage_is_bad_token(codec: TokenCodec, token: object) -> None:
    for kind in ("click", "open", "unsubscribe", "handoff"):
        with pytest.raises(InvalidToken) as err:
            read(codec, kind, token)  # type: ignore[arg-type]
        assert err.value.code == "bad_token"
        assert err.value.status == 400 and err.value.message


def test_wrong_kind_never_verifies(codec: TokenCodec) -> None:
    tokens = make_all(codec)
    for made_as, token in tokens.items():
        for read_as in tokens:
            if read_as != made_as:
                with pytest.raises(InvalidToken) as err:
                    read(codec, read_as, token)
                assert err.value.code == "bad_token", (made_as, read_as)


# -- expiry ----------------------------------------------------------------------------------------


def test_long_lived_tokens_expire_after_max_age(codec: TokenCodec, clock: Clock) -> None:
    tokens = make_all(codec)
    clock.now = T0 + DEFAULT_MAX_AGE
    for kind in ("click", "open", "unsubscribe"):
        read(codec, kind, tokens[kind])
    clock.now += 1
    for kind in ("click", "open", "unsubscribe"):
        with pytest.raises(InvalidToken) as err:
            read(codec, kind, tokens[kind])
        assert err.value.code == "expired_token"
        assert "expired" in err.value.message


def test_handoff_lives_one_day(codec: TokenCodec, clock: Clock) -> None:
    token = codec.handoff(CID)
    clock.now = T0 + DEFAULT_HANDOFF_MAX_AGE
    assert codec.read_handoff(token) == CID
    clock.now += 1
    with pytest.raises(InvalidToken) as err:
        codec.read_handoff(token)
    assert err.value.code == "expired_token"


def test_max_ages_are_configurable(clock: Clock) -> None:
    codec = TokenCodec(["k"], max_age=60, handoff_max_age=5, clock=clock)
    click, handoff = codec.click(CID, 1, 1, TARGET), codec.handoff(CID)
    clock.now = T0 + 6
    codec.read_click(click)
    with pytest.raises(InvalidToken, match="expired"):
        codec.read_handoff(handoff)
    clock.now = T0 + 61
    with pytest.raises(InvalidToken, match="expired"):
        codec.read_click(click)


def test_small_clock_skew_is_tolerated_but_not_the_future(codec: TokenCodec, clock: Clock) -> None:
    token = codec.handoff(CID)
    clock.now = T0 - 30  # another collector whose clock is a little behind
    assert codec.read_handoff(token) == CID
    clock.now = T0 - 3600
    with pytest.raises(InvalidToken, match="future") as err:
        codec.read_handoff(token)
    assert err.value.code == "bad_token"


# -- redirect targets ------------------------------------------------------------------------------

BAD_TARGETS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "//evil.example",
    "/relative/path",
    "evil.example",
    "ftp://files.example.com/x",
    "https://",
    "https:///path",
    "https://:443/",
    "https://evil.example\\@good.example/",
    "https:\\\\evil.example",
    "https://good.example\r\nSet-Cookie: x=1",
    "https://good.example/\x00",
    "https://good.example/\x7f",
    "https://good.example/\tx",
    "https://good.example/a b",
    "https://good.example/\u2028",
    " https://good.example/",
    "https://good.example:99999/",
    "https://good.example:port/",
    "https://[::1/",
    "https://exa<mple.com/",
    "https://good.example/" + "a" * 2048,
    "",
    None,
    b"https://good.example/",
]


@pytest.mark.parametrize("url", BAD_TARGETS)
def test_bad_targets_rejected_at_creation(codec: TokenCodec, url: object) -> None:
    with pytest.raises(InvalidToken) as err:
        safe_target(url)  # type: ignore[arg-type]
    assert err.value.code == "bad_target"
    with pytest.raises(InvalidToken) as err:
        codec.click(CID, 1, 1, url)  # type: ignore[arg-type]
    assert err.value.code == "bad_target"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "//evil.example", "https://a\\@b.example/"])
def test_bad_target_rejected_at_read_even_if_signed(clock: Clock, url: str) -> None:
    """A token signed with a leaked key (or by an older, laxer release) still cannot redirect anywhere."""
    forger = URLSafeTimedSerializer(["k"], salt="odnos.click.v1")
    token = forger.dumps([CID, 1, 1, url])
    codec = TokenCodec(["k"])
    with pytest.raises(InvalidToken) as err:
        codec.read_click(token)
    assert err.value.code == "bad_target"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (TARGET, TARGET),
        ("http://localhost:8000/x?y=1#z", "http://localhost:8000/x?y=1#z"),
        ("https://user:pw@good.example/", "https://user:pw@good.example/"),
        ("https://[2001:db8::1]:8443/p", "https://[2001:db8::1]:8443/p"),
        ("HTTPS://GOOD.EXAMPLE/A", "HTTPS://GOOD.EXAMPLE/A"),
        ("https://good.example/a\\b", "https://good.example/a\\b"),  # a backslash in the path is harmless
        ("https://good.example/café?q=ü#ß", "https://good.example/caf%C3%A9?q=%C3%BC#%C3%9F"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
    ],
)
def test_good_targets(codec: TokenCodec, url: str, expected: str) -> None:
    assert safe_target(url) == expected
    assert codec.read_click(codec.click(CID, 1, 1, url)).target == expected


def test_target_that_does_not_fit_in_a_token(codec: TokenCodec) -> None:
    alphabet = string.ascii_letters + string.digits + "-_"  # 6 bits a character: zlib cannot shrink it
    rng = random.Random(1)
    noise = "".join(rng.choice(alphabet) for _ in range(1900))
    url = "https://good.example/" + noise
    safe_target(url)  # fine as a URL...
    with pytest.raises(InvalidToken, match="limit") as err:
        codec.click(CID, 1, 1, url)  # ...but its token would be over 2 KB
    assert err.value.code == "bad_target"


# -- fuzz ------------------------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300), st.from_regex(r"[A-Za-z0-9_.\-]{0,200}")))
def test_fuzz_only_invalid_token(codec: TokenCodec, junk: str | bytes) -> None:
    for kind in ("click", "open", "unsubscribe", "handoff"):
        with pytest.raises(InvalidToken):
            read(codec, kind, junk)


@FUZZ
@given(st.data())
def test_fuzz_mutated_tokens(codec: TokenCodec, data: st.DataObject) -> None:
    """Random edits of a real token: rejected with InvalidToken, or (base64 slack bits) read unchanged."""
    tokens = make_all(codec)
    kind = data.draw(st.sampled_from(sorted(tokens)))
    token = tokens[kind]
    index = data.draw(st.integers(0, len(token) - 1))
    insert = data.draw(st.text(min_size=0, max_size=3))
    cut = data.draw(st.integers(0, 3))
    mutated = token[:index] + insert + token[index + cut :]
    try:
        result = read(codec, kind, mutated)
    except InvalidToken as err:
        assert err.code in ("bad_token", "bad_target")
    else:
        assert result == read(codec, kind, token)


@FUZZ
@given(st.text(max_size=100))
def test_fuzz_safe_target(url: str) -> None:
    try:
        out = safe_target(url)
    except InvalidToken as err:
        assert err.code == "bad_target"
    else:
        assert out.isascii() and out.lower().startswith(("http://", "https://"))
        assert safe_target(out) == out


# -- identify hash and contact ids -----------------------------------------------------------------


def test_identify_hash_matches_an_independent_hmac() -> None:
    expected = hmac.new(b"site-secret", b"ann@example.com", hashlib.sha256).hexdigest()
    assert identify_hash("site-secret", "  Ann@Example.COM ") == expected


def test_verify_identify() -> None:
    digest = identify_hash("s3cret", "ann@example.com")
    assert verify_identify("s3cret", "Ann@example.com", digest)
    assert verify_identify("s3cret", "ann@example.com", digest.upper())
    assert not verify_identify("s3cret", "bob@example.com", digest)
    assert not verify_identify("other", "ann@example.com", digest)
    assert not verify_identify("s3cret", "ann@example.com", digest[:-1])
    assert not verify_identify("s3cret", "not an email", digest)
    assert not verify_identify("s3cret", "ann@example.com", "é" * 64)
    assert not verify_identify("s3cret", "ann@example.com", None)  # type: ignore[arg-type]
    assert not verify_identify("", "ann@example.com", identify_hash("x", "ann@example.com"))
    with pytest.raises(ConfigError):
        identify_hash("", "ann@example.com")  # anyone could compute it


def test_contact_id_is_stable_and_normalised() -> None:
    # Pinned: changing the derivation would split every existing contact in two.
    assert contact_id_for("ann@example.com") == "fb06a66902bc1652"
    assert contact_id_for(" ANN@Example.com\n") == "fb06a66902bc1652"
    assert contact_id_for("bob@example.com") != contact_id_for("ann@example.com")
    assert contact_id_for("jose\u0301@example.com") == contact_id_for("jos\u00e9@example.com")


@pytest.mark.parametrize(
    "email", ["", "ann", "ann@", "@example.com", "ann@example", "ann@@example.com", "a b@example.com",
              "Ann <ann@example.com>", "ann@example..com", "ann@.example.com", "ann@example.com.",
              "ann\x00@example.com", "a" * 65 + "@example.com", "a@" + "b" * 250 + ".com", None]
)  # fmt: skip
def test_bad_emails(email: object) -> None:
    with pytest.raises(OdnosError) as err:
        normalize_email(email)  # type: ignore[arg-type]
    assert err.value.code == "bad_email"
