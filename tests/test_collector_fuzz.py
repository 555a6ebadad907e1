"""Property tests of the beacon routes through the real collector and the ClickHouse server.

Every field of ``schemas/event.schema.json`` is drawn from plausible values and from hostile ones
(whole and fractional floats, huge and negative numbers, digits of other scripts, very long digit
strings, lists and objects where strings belong, booleans, null), for ``POST /e`` (one event or a
batch) and ``GET /e.gif``. Two properties: every answer is a 2xx or a 4xx with the JSON error shape,
never a 5xx; and every event answered 2xx lands in ClickHouse exactly once, with its numbers as
integers. Each event carries a unique marker property so the rows can be counted.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.collector import Collector, running_collector

pytestmark = pytest.mark.server

EXAMPLES = 300
NOW_MS = int(time.time() * 1000)


@pytest.fixture(scope="module")
def collector(clickhouse_server, tmp_path_factory) -> Collector:
    with running_collector(clickhouse_server, tmp_path_factory.mktemp("fuzz")) as running:
        yield running


# -- values ---------------------------------------------------------------------------------------

digits_of_any_script = st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=8)
long_digits = st.integers(min_value=20, max_value=6000).map(lambda n: "9" * n)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=100).map(float),
    st.integers(min_value=0, max_value=10**500),
)
hostile = st.one_of(
    st.none(), st.booleans(), numbers, st.text(max_size=30), digits_of_any_script, long_digits,
    st.lists(st.one_of(st.text(max_size=5), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


def whole(low: int, high: int) -> st.SearchStrategy:
    """A count in range, as a JSON integer or a whole-number float (what browsers may send)."""
    value = st.integers(min_value=low, max_value=high)
    return st.one_of(value, value.map(float))


def plausible_values(site_id: str, handoff: str) -> dict[str, st.SearchStrategy]:
    """For each schema field, values a snippet or a site's server might send (not all accepted)."""
    return {
        "site": st.just(site_id),
        "name": st.one_of(st.sampled_from(["pageview", "engagement", "signup", "identify"]),
                          st.text(min_size=1, max_size=120)),
        "url": st.one_of(
            st.text(max_size=40).map(lambda p: "https://shop.example.com/" + p),
            st.text(max_size=20).map(lambda q: "https://www.shop.example.com/p?utm_source=" + q),
            st.sampled_from(["https://shop.example.com", "http://[::1/", "https://evil.example.org/",
                             "javascript:alert(1)", "https://shop.example.com:99999/"])),
        "referrer": st.one_of(st.sampled_from(["", "https://www.google.com/search?q=x", "http://[",
                                               "android-app://com.google.android.gm/", "//x"]),
                              st.text(max_size=60)),
        "visitor": st.text(max_size=64),
        "session": st.text(max_size=64),
        "props": st.dictionaries(st.text(max_size=64), st.one_of(st.text(max_size=40), hostile), max_size=4),
        "engaged_ms": whole(0, 86_400_000),
        "scroll": whole(0, 100),
        "ts": st.one_of(whole(NOW_MS - 2 * 86_400_000, NOW_MS + 86_400_000), whole(0, 4_294_967_295_999)),
        "odn": st.one_of(st.just(handoff), st.text(max_size=60)),
        "email": st.text(max_size=40),
        "hash": st.text(alphabet="0123456789abcdef", max_size=64),
    }


@st.composite
def events(draw: st.DrawFn, site_id: str, handoff: str) -> dict[str, Any]:
    """A plausible event with any of the schema's fields, then up to two fields given hostile values."""
    fields = plausible_values(site_id, handoff)
    required = ("site", "name", "url", "props")  # props always: they carry the marker
    event = draw(st.fixed_dictionaries({name: fields[name] for name in required},
                                       optional={k: v for k, v in fields.items() if k not in required}))
    for name in draw(st.lists(st.sampled_from([*fields, "bogus"]), max_size=2, unique=True)):
        event[name] = draw(hostile)
    return event


def mark(event: dict[str, Any]) -> str | None:
    """Put a unique marker into the event's props (when they are an object); return it."""
    if not isinstance(event.get("props"), dict):
        return None
    marker = uuid.uuid4().hex
    event["props"] = {**event["props"], "fz": marker}
    return marker


def expected_row(event: dict[str, Any]) -> dict[str, Any]:
    """What an accepted event must look like in ClickHouse, from the event as sent."""
    return {"name": event["name"], "url": event["url"], "scroll": int(event.get("scroll", 0)),
            "engaged_ms": int(event.get("engaged_ms", 0))}


def as_parameters(event: dict[str, Any]) -> dict[str, str]:
    """The event as /e.gif parameters: strings as they are, anything else as its JSON text."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in event.items()}


def check_answer(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status < 500, (status, body[:300])
    if status >= 400:
        assert headers["content-type"] == "application/json", (status, body[:300])
        error = json.loads(body)
        assert list(error) == ["error"] and set(error["error"]) == {"code", "message"}, error
        assert all(isinstance(v, str) and v for v in error["error"].values()), error


def assert_all_landed(collector: Collector, accepted: dict[str, dict[str, Any]]) -> None:
    """Every accepted marker is in ``events`` once, with the values it was sent with."""
    assert len(accepted) >= EXAMPLES // 10, f"only {len(accepted)} events accepted: the strategies miss"
    sql = ("SELECT m, count(), any(name), any(url), any(scroll), any(engaged_ms) FROM "
           "(SELECT props.value[indexOf(props.key, 'fz')] AS m, name, url, scroll, engaged_ms FROM events) "
           "WHERE m IN %(markers)s GROUP BY m")
    deadline = time.monotonic() + 30
    while True:
        rows = collector.store.query(sql, {"markers": tuple(accepted)}).rows
        if len(rows) >= len(accepted) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    found = {m: {"count": n, "name": name, "url": url, "scroll": scroll, "engaged_ms": engaged}
             for m, n, name, url, scroll, engaged in rows}
    missing = accepted.keys() - found.keys()
    assert not missing, f"{len(missing)} of {len(accepted)} accepted events did not land"
    for marker, expected in accepted.items():
        assert found[marker] == {"count": 1, **expected}, (marker, found[marker], expected)
    ingestion = collector.health()["ingestion"]
    assert (ingestion["failures"], ingestion["dead_letter_rows"]) == (0, 0), ingestion


# -- properties -----------------------------------------------------------------------------------


def test_post_beacons_never_5xx_and_what_is_accepted_lands(collector: Collector) -> None:
    accepted: dict[str, dict[str, Any]] = {}
    strategy = events(collector.site_id, collector.codec.handoff("c-fuzz"))

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(batch=st.lists(strategy, min_size=1, max_size=3), as_array=st.booleans(),
           content_type=st.sampled_from(["text/plain", "application/json"]))
    def post(batch: list[dict[str, Any]], as_array: bool, content_type: str) -> None:
        batch = batch if as_array else batch[:1]
        markers = [mark(event) for event in batch]
        status, headers, body = collector.post(batch if as_array else batch[0], content_type)
        check_answer(status, headers, body)
        if status < 400:
            assert (status, json.loads(body)) == (202, {"ok": True, "accepted": len(batch)})
            assert None not in markers, f"accepted an event whose props are not an object: {batch}"
            accepted.update((m, expected_row(e)) for m, e in zip(markers, batch, strict=True))

    post()
    assert_all_landed(collector, accepted)


def test_gif_beacons_never_5xx_and_what_is_accepted_lands(collector: Collector) -> None:
    accepted: dict[str, dict[str, Any]] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(event=events(collector.site_id, collector.codec.handoff("c-fuzz")))
    def gif(event: dict[str, Any]) -> None:
        marker = mark(event)
        sent = as_parameters(event)
        status, headers, body = collector.request("GET", "/e.gif?" + urlencode(sent))
        check_answer(status, headers, body)
        if status < 400:
            assert status == 200 and headers["content-type"] == "image/gif"
            assert marker is not None, f"accepted an event whose props are not an object: {event}"
            accepted[marker] = expected_row(sent)

    gif()
    assert_all_landed(collector, accepted)
