"""The ``current`` wire profile's edges (docs/profiles.md): times, record shapes, cache
entries, page tokens, the envelope's ``request_id`` and the WIRE_PROFILE setting. The
byte-for-byte comparisons with upstream's own test fixtures are in test_current_goldens.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from click.testing import CliRunner

from customer_manager.cli import main as ctl
from customer_manager.config import Settings, check
from customer_manager.messages import codec
from customer_manager.messages.current import NotATime, internal, rfc3339
from customer_manager.messages.query import parse_list
from customer_manager.messages.records import (
    SENTINEL,
    TS_FORMAT,
    Accesskey,
    Customer,
    ts,
)
from customer_manager.messages.wire import decode_request
from tests.support.harness import Harness
from tests.support.profiles import Wire, both_profiles
from tests.support.storage import accesskey
from tests.support.storage import customer as stored_customer

CURRENT = codec.CODECS["current"]
CID = uuid.UUID("4b9ff112-02ec-11ee-b037-5b5c308ec044")

# docs/profiles.md#times: the database value, the JSON value
TIMES = [
    ("2026-08-22 10:15:30.123456", "2026-08-22T10:15:30.123456Z"),
    ("2026-08-22 10:15:30.120000", "2026-08-22T10:15:30.12Z"),
    ("2026-08-22 10:15:30.000000", "2026-08-22T10:15:30Z"),
    (SENTINEL, None),
]


@pytest.mark.parametrize(("stored", "shown"), TIMES)
def test_times_both_ways(stored: str, shown: str | None) -> None:
    assert rfc3339(stored) == shown
    assert internal(shown) == stored


@pytest.mark.parametrize(
    "text",
    [
        "",
        "9999-01-01 00:00:00.000000",
        "2026-08-22 10:15:30.123456",
        "2026-08-22T10:15:30",
        "x",
        "2026-02-30T10:15:30Z",
        "2026-08-22T25:15:30Z",
    ],
)
def test_what_go_cannot_decode_is_not_a_time(text: str) -> None:
    with pytest.raises(NotATime):
        internal(text)


def test_offsets_and_nine_digits_from_a_go_writer() -> None:
    assert internal("2026-08-22T12:15:30.123456789+02:00") == "2026-08-22 10:15:30.123456"


def customer(**fields: Any) -> Customer:
    """The customer of docs/profiles.md#customer (created, never updated)."""
    example = {
        "id": CID,
        "name": "test1",
        "detail": "detail1",
        "phone_number": "+821100000001",
        "address": "somewhere",
        "webhook_method": "POST",
        "webhook_uri": "https://example.com/hook",
        "webhook_secret": "q3Z0bYk1x8v0F9sJm2r7T4wQe6Lp-aHc",
        "tm_create": "2026-08-22 10:15:30.123450",
    }
    return stored_customer("test@voipbin.net", **{**example, **fields})


def test_customer_json_is_the_newest_go_shape() -> None:
    """The full example of docs/profiles.md#customer, byte for byte."""
    assert CURRENT.encode(customer()) == (
        b'{"id":"4b9ff112-02ec-11ee-b037-5b5c308ec044","name":"test1","detail":"detail1",'
        b'"email":"test@voipbin.net","phone_number":"+821100000001","address":"somewhere",'
        b'"webhook_method":"POST","webhook_uri":"https://example.com/hook",'
        b'"webhook_secret":"q3Z0bYk1x8v0F9sJm2r7T4wQe6Lp-aHc",'
        b'"billing_account_id":"00000000-0000-0000-0000-000000000000","email_verified":true,'
        b'"status":"active","identity_verification_status":"none",'
        b'"metadata":{"rtp_debug":false},"tm_deletion_scheduled":null,'
        b'"tm_create":"2026-08-22T10:15:30.12345Z","tm_update":null,"tm_delete":null}'
    )


def test_accesskey_json_shows_raw_token_and_always_the_prefix() -> None:
    key = Accesskey(
        id=uuid.UUID("9f4e3b52-1c2d-4e8f-a1b2-c3d4e5f60718"),
        customer_id=CID,
        name="ci",
        detail="ci key",
        token="vb_Xk3pQ9aZr7LmN2bV8cT1yW4sH6dF0gJe",
        token_prefix="vb_Xk3pQ9aZ",
        tm_expire="2026-08-23 10:15:30.499871",
        tm_create="2026-08-22 10:15:30.500010",
        tm_update=SENTINEL,
        tm_delete=SENTINEL,
    )
    assert CURRENT.encode(key) == (
        b'{"id":"9f4e3b52-1c2d-4e8f-a1b2-c3d4e5f60718",'
        b'"customer_id":"4b9ff112-02ec-11ee-b037-5b5c308ec044","name":"ci","detail":"ci key",'
        b'"token_prefix":"vb_Xk3pQ9aZ","raw_token":"vb_Xk3pQ9aZr7LmN2bV8cT1yW4sH6dF0gJe",'
        b'"tm_expire":"2026-08-23T10:15:30.499871Z","tm_create":"2026-08-22T10:15:30.50001Z",'
        b'"tm_update":null,"tm_delete":null}'
    )
    bare = msgspec.structs.replace(key, token="", token_prefix="")
    shown = msgspec.json.decode(CURRENT.encode(bare))
    assert shown["token_prefix"] == "" and "raw_token" not in shown and "token" not in shown


def test_a_go_written_cache_entry_is_a_hit_and_ours_round_trips() -> None:
    ours = customer(tm_update="2026-08-23 00:00:00.000000")
    assert CURRENT.decode(CURRENT.encode(ours), Customer) == ours
    go = msgspec.json.decode(CURRENT.encode(ours))
    go["tm_update"] = "2026-08-23T00:00:00Z"  # Go's own trimming
    go["headless"] = False  # an unknown key is ignored, as Go does
    assert CURRENT.decode(msgspec.json.encode(go), Customer) == ours


@pytest.mark.parametrize(
    "change",
    [
        {"tm_update": "9999-01-01 00:00:00.000000"},  # a seed-profile entry
        {"tm_create": ""},
        {"status": None},
        {"metadata": None},
    ],
)
def test_foreign_or_partial_cache_entries_do_not_decode(change: dict[str, object]) -> None:
    entry = msgspec.json.decode(CURRENT.encode(customer()))
    for key, value in change.items():
        if value is None:
            del entry[key]
        else:
            entry[key] = value
    with pytest.raises((msgspec.ValidationError, ValueError)):
        CURRENT.decode(msgspec.json.encode(entry), Customer)


def test_a_seed_entry_never_decodes_as_current_and_the_reverse() -> None:
    seed = codec.CODECS["seed"]
    with pytest.raises((msgspec.ValidationError, ValueError)):
        CURRENT.decode(seed.encode(customer()), Customer)
    with pytest.raises(msgspec.ValidationError):
        seed.decode(CURRENT.encode(customer()), Customer)


@pytest.mark.parametrize(
    ("token", "before"),
    [
        ("2026-08-22T10%3A15%3A30.123456Z", "2026-08-22 10:15:30.123456"),  # api-manager's
        ("2026-08-22%2010:15:30.000000", "2026-08-22 10:15:30.000000"),  # the legacy form
        ("2026-08-22T12:15:30.5%2B02:00", "2026-08-22 10:15:30.500000"),
        ("", "NOW"),
    ],
)
def test_page_token_forms(token: str, before: str) -> None:
    uri = f"/v1/accesskeys?page_token={token}&page_size=10"
    query = parse_list(
        "accesskey", uri, b'{"deleted":false,"token_hash":"' + b"a" * 64 + b'"}', "NOW"
    )
    assert query.before == before and query.before_id is None
    assert query.filters.deleted is False and query.filters.token_hash == "a" * 64


@both_profiles
def test_garbage_page_token_is_400(h: Harness) -> None:
    response = h.send("GET", "/v1/accesskeys?page_token=yesterday&page_size=10")
    assert response.status_code == 400
    assert msgspec.json.decode(response.data)["reason"] == "INVALID_PAGE_TOKEN"


def test_request_id_is_accepted_and_ignored() -> None:
    body = (
        b'{"uri":"/v1/customers/' + str(CID).encode() + b'","method":"GET","publisher":"x",'
        b'"request_id":"7d0e4a4c-0f0e-4c36-9d39-2b7d4d8d9b10","data_type":"","data":null}'
    )
    request = decode_request(body)
    assert (request.uri, request.method) == (f"/v1/customers/{CID}", "GET")


def test_unknown_profile_or_a_seed_takeover_flag_is_refused() -> None:
    with pytest.raises(ValueError, match="WIRE_PROFILE"):
        check(Settings(wire_profile="newest"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="EXPAND_PLAIN_TOKENS"):
        check(Settings(wire_profile="current", expand_plain_tokens=True))
    done = CliRunner().invoke(ctl, ["--wire_profile", "newest", "customer", "list"])
    assert done.exit_code == 1 and "WIRE_PROFILE must be one of seed, current" in done.output


@both_profiles
def test_two_pages_built_with_api_managers_token_formula_lose_no_row(
    h: Harness, wire: Wire
) -> None:
    """api-manager's next page token is the last row's ``tm_create`` as
    ``2006-01-02T15:04:05.000000Z`` (docs/profiles.md#requests)."""
    owner = uuid.UUID(h.customer("pages@example.com")["id"])
    start = datetime(2026, 8, 22, 10, 15, 30, tzinfo=UTC)
    made = set()
    for n in range(150):
        stamp = ts(start + timedelta(milliseconds=7 * n))
        key = accesskey(owner, tm_create=stamp, token="", token_prefix="")
        h.memory.accesskey_insert(key, f"{n:064x}", lambda k: [])
        made.add(str(key.id))
    seen: list[str] = []
    token = ""
    for _ in range(2):
        uri = f"/v1/accesskeys?page_token={quote(token)}&page_size=100"
        page = h.json("GET", uri, {"customer_id": str(owner), "deleted": False})
        seen += [row["id"] for row in page]
        last = wire.decode(msgspec.json.encode(page[-1]), Accesskey).tm_create
        token = datetime.strptime(last, TS_FORMAT).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(seen) == 150 and set(seen) == made
