"""Scenario 6: bad input. Hypothesis drives the real envelope decoder, router, worker pools
and storage (SQLite; MySQL for the round trip): every case gets exactly one reply, client
errors are 4xx, never 500 or 503, no worker dies; odd strings round-trip unchanged; a 10 MB
message through the broker is refused with 400 without exhausting memory."""

from __future__ import annotations

import json
import resource
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_manager.bootstrap import System, bootstrap
from customer_manager.config import Settings
from customer_manager.main import Daemon
from customer_manager.messages.ops import Handle
from customer_manager.messages.wire import EnvelopeError, Request, Response, decode_request
from customer_manager.storage.cache_backend import LocalCache
from tests.support.amqp import Client
from tests.support.metrics import total
from tests.support.service import start_daemon

CASES = 3000  # per fuzz test; two tests -> 6,000 cases
FUZZ = settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CLIENT_ERRORS = {400, 404, 409}
NASTY = [
    "'",
    '"',
    "%",
    "%s",
    "%%",
    "\x00",
    "\\",
    "_",
    "😀",
    "👩‍👩‍👧",
    "' OR '1'='1",
    "'; DROP TABLE customer_customers; --",
    "\u202e",
    "</script>",
    "\r\n",
]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), max_size=6).map(
    "".join
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | nasty_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty_text, inner, max_size=3),
    max_leaves=8,
)
ids = st.one_of(st.uuids().map(str), nasty_text, st.just("00000000-0000-0000-0000-000000000000"))
uris = st.one_of(
    st.builds(lambda i: f"/v1/customers/{i}", ids),
    st.builds(lambda i: f"/v1/accesskeys/{i}", ids),
    st.builds(lambda i: f"/v1/customers/{i}/billing_account_id", ids),
    st.builds(lambda i: f"/v1/customers/{i}/is_valid_balance", ids),
    st.builds(lambda q: f"/v1/customers?{q}", nasty_text),
    st.builds(lambda q: f"/v1/accesskeys?{q}", nasty_text),
    st.sampled_from(["/v1/customers", "/v1/accesskeys", "/v1/customers?page_size=-1"]),
    nasty_text,
)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "get", "PATCH", ""])
customer_fields = st.fixed_dictionaries(
    {},
    optional={
        k: st.one_of(nasty_text, json_values)
        for k in ("name", "detail", "email", "phone_number", "address", "webhook_method")
    }
    | {"webhook_uri": st.sampled_from(["", "http://x.test/h", "ftp://x", "https://"])},
)
bodies = st.one_of(
    customer_fields,
    json_values,
    st.fixed_dictionaries(
        {}, optional={"customer_id": ids, "expire": json_values, "name": nasty_text}
    ),
    st.fixed_dictionaries({}, optional={"page_size": json_values, "deleted": json_values}),
)
envelopes = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda uri, method, data, extra: json.dumps(
            {"uri": uri, "method": method, "data_type": "application/json", "data": data} | extra
        ).encode(),
        uris,
        methods,
        bodies,
        st.dictionaries(st.sampled_from(["URI", "Data", "publisher", "x"]), json_values),
    ),
    json_values.map(lambda v: json.dumps(v).encode()),
)


class Harness:
    """The real system on SQLite; ``send`` routes one request and collects every reply."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.replies: list[list[Response]] = []

    def send(self, request: Request, timeout: float = 10) -> Response:
        got: list[Response] = []
        arrived = threading.Event()

        def reply(response: Response) -> None:
            got.append(response)
            arrived.set()

        self.replies.append(got)
        self.system.router.tell(Handle(request=request, reply=reply))
        assert arrived.wait(timeout), f"no reply to {request.method} {request.uri!r}"
        return got[0]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    settings_ = Settings(sqlite_path=str(tmp_path / "fuzz.sqlite3"), agent_check="off")
    system = bootstrap(settings_, cache=LocalCache())
    system.migrate()
    restarts = total("customer_manager_actor_restarts_total")
    dead = total("customer_manager_dead_letters_total")
    yield Harness(system)
    assert total("customer_manager_actor_restarts_total") == restarts, "a worker died"
    assert total("customer_manager_dead_letters_total") == dead
    system.stop()


def check(harness: Harness, body: bytes) -> int:
    try:
        request = decode_request(body)
    except EnvelopeError:
        return 400  # the consumer answers 400 INVALID_BODY (tests/integration)
    response = harness.send(request)
    assert response.status_code in CLIENT_ERRORS | {200}, (request, response)
    if response.status_code != 200:
        error = msgspec.json.decode(response.data)
        assert error["status"] != "INTERNAL" and error["reason"]
    return response.status_code


def test_fuzz_envelopes_every_case_one_reply_never_5xx(
    harness: Harness, report: Callable[..., None]
) -> None:
    seen: dict[int, int] = {}

    @FUZZ
    @given(envelopes)
    def case(body: bytes) -> None:
        code = check(harness, body)
        seen[code] = seen.get(code, 0) + 1

    case()
    assert all(len(r) == 1 for r in harness.replies), "a request got two replies"
    report(cases=sum(seen.values()), routed=len(harness.replies), status_counts=seen)
    assert sum(seen.values()) >= CASES and seen.get(200, 0) > 0 and seen.get(400, 0) > 0


def test_fuzz_customer_bodies_through_create_and_update(
    harness: Harness, report: Callable[..., None]
) -> None:
    seen: dict[int, int] = {}
    base = harness.send(_request("POST", "/v1/customers", {"email": "fuzz-base@x.test"}))
    uri = f"/v1/customers/{msgspec.json.decode(base.data)['id']}"

    @FUZZ
    @given(st.sampled_from(["POST", "PUT"]), customer_fields)
    def case(method: str, fields: dict[str, Any]) -> None:
        body = {"data": fields, "uri": uri if method == "PUT" else "/v1/customers"}
        code = check(harness, json.dumps(body | {"method": method}).encode())
        seen[code] = seen.get(code, 0) + 1

    case()
    assert all(len(r) == 1 for r in harness.replies)
    report(cases=sum(seen.values()), status_counts=seen)
    assert seen.get(200, 0) > 0 and seen.get(400, 0) > 0


def _request(method: str, uri: str, data: Any) -> Request:
    return Request(uri=uri, method=method, data=msgspec.Raw(json.dumps(data).encode()))


FIELDS = ("name", "detail", "phone_number", "address")


def roundtrip(harness: Harness, values: dict[str, str]) -> None:
    email = f"rt-{uuid.uuid4().hex[:12]}@x.test"
    created = harness.send(_request("POST", "/v1/customers", {"email": email} | values))
    assert created.status_code == 200, created
    cid = msgspec.json.decode(created.data)["id"]
    got = msgspec.json.decode(harness.send(_request("GET", f"/v1/customers/{cid}", None)).data)
    assert {k: got.get(k, "") for k in values} == values
    listed = harness.send(_request("GET", "/v1/customers?page_size=1", {"email": email}))
    assert {k: msgspec.json.decode(listed.data)[0].get(k, "") for k in values} == values


odd_values = st.fixed_dictionaries({k: nasty_text for k in FIELDS})


def test_odd_strings_round_trip_on_sqlite(harness: Harness) -> None:
    settings(max_examples=300, deadline=None, derandomize=True)(
        given(odd_values)(lambda values: roundtrip(harness, values))
    )()


@pytest.mark.integration
def test_odd_strings_round_trip_on_mysql(migrated_dsn: str) -> None:
    system = bootstrap(Settings(database_dsn=migrated_dsn, agent_check="off"), cache=LocalCache())
    harness = Harness(system)
    try:
        settings(max_examples=200, deadline=None, derandomize=True)(
            given(odd_values)(lambda values: roundtrip(harness, values))
        )()
    finally:
        system.stop()


@pytest.mark.integration
def test_10_mb_message_is_refused_with_400_without_exhausting_memory(
    client: Client,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    report: Callable[..., None],
) -> None:
    daemons.append(start_daemon(service_settings(agent_check="off")))
    big = json.dumps(
        {"uri": "/v1/customers", "method": "POST", "data": {"name": "x" * 10_000_000}}
    ).encode()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    corrs = [client.send(big) for _ in range(5)]
    replies = client.wait(corrs, 30)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ok = client.call("GET", "/v1/customers?page_size=1")
    growth_mb = (after - before) / 1024
    report(size_mb=round(len(big) / 1e6, 1), sent=5, replies=len(replies), rss_growth_mb=growth_mb)
    assert len(replies) == 5
    for reply in replies.values():
        assert reply["status_code"] == 400
        assert reply["data"]["reason"] == "INVALID_BODY"
        assert "exceeds" in reply["data"]["message"]
    assert ok["status_code"] == 200, "the service did not survive"
    assert growth_mb < 200


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["sqlite", "mysql"])
def test_too_long_fields_are_400_on_every_backend(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """MySQL columns are varchar(255) / varchar(1024) / text: a longer value is the
    client's error (400), not a database error (500), and the same on every backend."""
    dsn = request.getfixturevalue("migrated_dsn") if backend == "mysql" else ""
    system = bootstrap(
        Settings(database_dsn=dsn, sqlite_path=str(tmp_path / "s.db"), agent_check="off"),
        cache=LocalCache(),
    )
    if backend == "sqlite":
        system.migrate()
    harness = Harness(system)
    try:
        for field, limit in (("name", 255), ("address", 1024), ("detail", 16383)):
            email = f"long-{uuid.uuid4().hex[:10]}@x.test"
            too_long = {"email": email, field: "é" * (limit + 1)}
            reply = harness.send(_request("POST", "/v1/customers", too_long))
            assert reply.status_code == 400, (field, reply)
            assert msgspec.json.decode(reply.data)["reason"] == "INVALID_BODY"
            fits = {"email": email, field: "😀" * limit}  # 4 bytes each in utf8mb4
            reply = harness.send(_request("POST", "/v1/customers", fits))
            assert reply.status_code == 200, (field, reply)
    finally:
        system.stop()
