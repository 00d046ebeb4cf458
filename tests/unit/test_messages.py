"""Golden tests: our Structs reproduce the literal JSON of the Go service
(docs/api.md#encoding-rules, docs/api.md#records)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from customer_manager.errors import NotFound, error_response
from customer_manager.messages import gojson, records, wire
from customer_manager.messages.bodies import (
    AccesskeyCreateBody,
    BodyError,
    CustomerFields,
    decode_body,
    parse_uuid,
)
from customer_manager.messages.records import NIL, SENTINEL, Accesskey, Customer, Metadata, ts

CUSTOMER_JSON = (
    b'{"id":"4b9ff112-02ec-11ee-b037-5b5c308ec044","name":"test1","detail":"detail1",'
    b'"email":"test@voipbin.net","phone_number":"+821100000001","address":"somewhere",'
    b'"webhook_method":"POST","webhook_uri":"test.com",'
    b'"billing_account_id":"00000000-0000-0000-0000-000000000000",'
    b'"email_verified":true,"status":"active","identity_verification_status":"none",'
    b'"metadata":{"rtp_debug":false},"tm_deletion_scheduled":"9999-01-01 00:00:00.000000",'
    b'"tm_create":"2024-04-18 03:22:17.995000","tm_update":"9999-01-01 00:00:00.000000",'
    b'"tm_delete":"9999-01-01 00:00:00.000000"}'
)
LIFE: dict[str, Any] = {
    "email_verified": True,
    "status": "active",
    "identity_verification_status": "none",
    "metadata": Metadata(),
}
_LIFE_JSON = (
    b'"email_verified":true,"status":"active","identity_verification_status":"none",'
    b'"metadata":{"rtp_debug":false}'
)


def test_response_with_minimal_customer() -> None:
    cust = Customer(
        id=uuid.UUID("2cfbb148-7dc7-11ec-85df-47cf2c8492f0"), billing_account_id=NIL, **LIFE
    )
    assert wire.encode(wire.ok(cust)) == (
        b'{"status_code":200,"data_type":"application/json","data":'
        b'{"id":"2cfbb148-7dc7-11ec-85df-47cf2c8492f0",'
        b'"billing_account_id":"00000000-0000-0000-0000-000000000000",' + _LIFE_JSON + b"}}"
    )


def test_response_with_customer_list() -> None:
    ids = ["9f8a7880-7db2-11ec-9602-930411a1581f", "a032c710-7db2-11ec-bfe0-83fa85a82603"]
    rows = [Customer(id=uuid.UUID(i), billing_account_id=NIL, **LIFE) for i in ids]
    assert wire.encode(wire.ok(rows)) == (
        b'{"status_code":200,"data_type":"application/json","data":['
        b'{"id":"9f8a7880-7db2-11ec-9602-930411a1581f",'
        b'"billing_account_id":"00000000-0000-0000-0000-000000000000",' + _LIFE_JSON + b"},"
        b'{"id":"a032c710-7db2-11ec-bfe0-83fa85a82603",'
        b'"billing_account_id":"00000000-0000-0000-0000-000000000000",' + _LIFE_JSON + b"}]}"
    )


def test_valid_and_empty_list_and_bare_errors() -> None:
    assert wire.encode(wire.ok({"valid": True})) == (
        b'{"status_code":200,"data_type":"application/json","data":{"valid":true}}'
    )
    assert (
        wire.encode(wire.ok([])) == b'{"status_code":200,"data_type":"application/json","data":[]}'
    )
    assert wire.encode(wire.Response(status_code=404)) == b'{"status_code":404,"data_type":""}'
    assert wire.encode(wire.Response(status_code=400)) == b'{"status_code":400,"data_type":""}'


def test_typed_error_reply() -> None:
    err = NotFound("customer 5e4a not found", "CUSTOMER_NOT_FOUND")
    assert wire.encode(error_response(err)) == (
        b'{"status_code":404,"data_type":"voipbin_error","data":{"status":"NOT_FOUND",'
        b'"reason":"CUSTOMER_NOT_FOUND","domain":"customer-manager",'
        b'"message":"customer 5e4a not found"}}'
    )


def test_event_envelope_and_customer_roundtrip() -> None:
    cust = msgspec.json.decode(CUSTOMER_JSON, type=Customer)
    assert cust.tm_delete == SENTINEL and not cust.deleted
    assert gojson.encode(cust) == CUSTOMER_JSON
    event = wire.Event(type="customer_created", data=msgspec.Raw(gojson.encode(cust)))
    assert wire.encode(event) == (
        b'{"type":"customer_created","publisher":"customer-manager",'
        b'"data_type":"application/json","data":' + CUSTOMER_JSON + b"}"
    )


def test_go_html_escaping_and_raw_utf8() -> None:
    cust = Customer(
        id=NIL, name="a<b>&c \u2028 h\u00e9llo \U0001f600", billing_account_id=NIL, **LIFE
    )
    out = gojson.encode(cust)
    assert b'"name":"a\\u003cb\\u003e\\u0026c \\u2028 h\xc3\xa9llo \xf0\x9f\x98\x80"' in out
    assert msgspec.json.decode(out, type=Customer) == cust


def test_accesskey_never_shows_empty_token_but_keeps_nil_ids() -> None:
    key = Accesskey(id=NIL, customer_id=NIL, token_prefix="vb_abcdefgh", tm_expire=SENTINEL)
    assert gojson.encode(key) == (
        b'{"id":"00000000-0000-0000-0000-000000000000",'
        b'"customer_id":"00000000-0000-0000-0000-000000000000",'
        b'"token_prefix":"vb_abcdefgh","tm_expire":"9999-01-01 00:00:00.000000"}'
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"uri":"/v1/customers?page_token=2021-11-23+17%3A55%3A39.712000&page_size=10",'
        b'"method":"GET","publisher":"api-manager","data_type":"application/json",'
        b'"data":{"deleted":false}}',
        b'{"uri":"/v1/customers","method":"POST","publisher":"api-manager",'
        b'"data_type":"application/json","data":{"name":"name test","detail":"detail test",'
        b'"email":"test@test.com","phone_number":"+821100000001","address":"somewhere",'
        b'"webhook_method":"POST","webhook_uri":"test.com"}}',
        b'{"uri":"/v1/customers/2cfbb148-7dc7-11ec-85df-47cf2c8492f0","method":"GET",'
        b'"publisher":"api-manager","data_type":"application/json"}',
    ],
)
def test_decode_part_a_example_requests(body: bytes) -> None:
    req = wire.decode_request(body)
    assert req.publisher == "api-manager" and req.method in {"GET", "POST"}
    assert req.uri.startswith("/v1/customers")
    full = msgspec.json.decode(body)
    if "data" in full:
        assert msgspec.json.decode(req.data) == full["data"]
    else:
        assert req.data == wire.EMPTY


def test_request_decoding_go_rules() -> None:
    req = wire.decode_request(b'{"URI":"/v1/x","method":null,"data":null,"extra":1}')
    assert (req.uri, req.method, bytes(req.data)) == ("/v1/x", "", b"null")
    for bad in (b'{"uri":5}', b"not json", b"[]", b""):
        with pytest.raises(wire.EnvelopeError):
            wire.decode_request(bad)


def test_body_decoding_go_rules() -> None:
    body = decode_body(b'{"Email":"a@b.c","email":"x@y.z","name":null,"junk":[1]}', CustomerFields)
    assert body == CustomerFields(email="x@y.z")  # case-insensitive, last wins, null = zero
    assert decode_body(b"null", CustomerFields) == CustomerFields()
    for bad in (b"", b"[1]", b'{"name":5}', b"{"):
        with pytest.raises(BodyError):
            decode_body(bad, CustomerFields)
    for bad in (
        b'{"expire":3.0}',
        b'{"expire":"3"}',
        b'{"expire":2147483648}',
        b'{"customer_id":""}',
    ):
        with pytest.raises(BodyError):
            decode_body(bad, AccesskeyCreateBody)
    assert decode_body(b'{"expire":-2147483648}', AccesskeyCreateBody).expire == -(2**31)


@pytest.mark.parametrize(
    "text",
    [
        "2cfbb148-7dc7-11ec-85df-47cf2c8492f0",
        "2CFBB1487DC711EC85DF47CF2C8492F0",
        "{2cfbb148-7dc7-11ec-85df-47cf2c8492f0}",
        "urn:uuid:2cfbb148-7dc7-11ec-85df-47cf2c8492f0",
    ],
)
def test_uuid_forms_accepted_by_gofrs(text: str) -> None:
    assert parse_uuid(text) == uuid.UUID("2cfbb148-7dc7-11ec-85df-47cf2c8492f0")


@pytest.mark.parametrize("text", ["", "2cfbb148", "2cfbb1487dc711ec85df47cf2c8492f0x", "{abc}"])
def test_uuid_forms_rejected(text: str) -> None:
    with pytest.raises(BodyError):
        parse_uuid(text)


def test_now_is_the_utc_wall_clock_to_the_microsecond(monkeypatch: pytest.MonkeyPatch) -> None:
    before, stamp, later = ts(datetime.now(UTC)), records.now(), ts(datetime.now(UTC))
    assert before <= stamp <= later and len(stamp) == len(SENTINEL)
    # the formatted second is reused only within that second, and the fraction truncates
    clock = iter([1_767_225_599_999_999_999, 1_767_225_600_000_000_999])
    fake = SimpleNamespace(time_ns=lambda: next(clock), strftime=time.strftime, gmtime=time.gmtime)
    monkeypatch.setattr(records, "time", fake)
    assert records.now() == "2025-12-31 23:59:59.999999"
    assert records.now() == "2026-01-01 00:00:00.000000"
