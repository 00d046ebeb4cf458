"""The ``current`` codec (issue 15) against the newest Go, through its public interface only
(``codec.CODECS["current"]`` and the internal records): byte-exact against the upstream test
literals (tests/support/data/current_golden.txt) with our values substituted, the
docs/profiles.md#times time table, every output readable by the strict Go reader, and cache decoding
that misses exactly where Go misses (docs/profiles.md#redis)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from customer_manager.messages.codec import CODECS
from customer_manager.messages.records import SENTINEL, Accesskey, Customer, Metadata
from tests.support.go_current import (
    TIME_GOLDEN,
    GoCustomer,
    customer_json,
    decode_accesskey,
    decode_customer,
    golden,
    parse_go_time,
)

CURRENT = CODECS["current"]
NIL = uuid.UUID(int=0)
CREATED = "2026-08-22 10:15:30.120000"  # internal form (UTC, 6 digits)
CREATED_AT = datetime(2026, 8, 22, 10, 15, 30, 120000, tzinfo=UTC)
DECODE_ERRORS = (ValueError, msgspec.MsgspecError)


def customer(**fields: Any) -> Customer:
    """An internal customer; times not set unless given."""
    base: dict[str, Any] = {
        "billing_account_id": NIL,
        "email_verified": False,
        "status": "",
        "identity_verification_status": "",
        "metadata": Metadata(),
        "tm_deletion_scheduled": SENTINEL,
        "tm_create": CREATED,
        "tm_update": SENTINEL,
        "tm_delete": SENTINEL,
    }
    return Customer(**{**base, **fields})


def key(**fields: Any) -> Accesskey:
    base: dict[str, Any] = {
        "customer_id": NIL,
        "tm_expire": SENTINEL,
        "tm_create": CREATED,
        "tm_update": SENTINEL,
        "tm_delete": SENTINEL,
    }
    return Accesskey(**{**base, **fields})


# -- the upstream literals, our timestamps substituted ------------------------------


def test_customer_create_literal() -> None:
    """v1_customers_test.go:171."""
    record = customer(
        id=uuid.UUID("2043c49e-7db4-11ec-92b7-73af5ed663c9"),
        name="name test",
        detail="detail test",
        email="test@test.com",
        phone_number="+821100000001",
        address="somewhere",
        webhook_method="POST",
        webhook_uri="test.com",
        billing_account_id=uuid.UUID("57e13956-0e84-11ee-886f-972ac028efa9"),
    )
    assert CURRENT.encode(record) == golden("customer_create", tm_create=CREATED_AT)


def test_customer_metadata_literal() -> None:
    """v1_customers_test.go:509."""
    record = customer(
        id=uuid.UUID("cc2cedde-0f90-11ee-a04e-1723e1a00731"), metadata=Metadata(rtp_debug=True)
    )
    assert CURRENT.encode(record) == golden("customer_metadata", tm_create=CREATED_AT)


def test_accesskey_create_literal() -> None:
    """v1_accesskeys_test.go:147: ``token_prefix`` printed empty, no ``raw_token`` when the
    record has no plain token."""
    record = key(id=uuid.UUID("bd461f74-ab35-11ef-80dd-67cc72d376f4"))
    assert CURRENT.encode(record) == golden("accesskey_create", tm_create=CREATED_AT)


def test_signup_and_email_verify_literals() -> None:
    """v1_customers_signup_test.go:62 and :198."""
    owner = uuid.UUID("e1e2e3e4-0000-0000-0000-000000000001")
    signed_up = customer(
        id=owner,
        name="test signup",
        detail="signup detail",
        email="signup@voipbin.net",
        phone_number="+821100000001",
        address="somewhere",
        webhook_method="POST",
        webhook_uri="test.com",
    )
    default_key = key(
        id=uuid.UUID("a1a2a3a4-0000-0000-0000-000000000001"),
        customer_id=owner,
        name="default",
        detail="Auto-provisioned API key",
    )
    expected = golden(
        "signup", **{"customer.tm_create": CREATED_AT, "accesskey.tm_create": CREATED_AT}
    )
    assert CURRENT.encode({"customer": signed_up, "accesskey": default_key}) == expected
    verified = customer(
        id=uuid.UUID("f1f2f3f4-0000-0000-0000-000000000001"),
        email="verify@voipbin.net",
        email_verified=True,
    )
    expected = golden("email_verify", **{"customer.tm_create": CREATED_AT})
    assert CURRENT.encode({"customer": verified}) == expected


# -- times --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("db", "text"), TIME_GOLDEN)
def test_time_table_through_the_codec(db: str | None, text: str) -> None:
    record = customer(id=uuid.uuid4(), status="active", identity_verification_status="none")
    record = msgspec.structs.replace(record, tm_update=db if db is not None else SENTINEL)
    encoded = CURRENT.encode(record)
    assert b'"tm_update":' + text.encode() + b"," in encoded
    decoded = decode_customer(encoded)  # and Go's json.Unmarshal takes it
    if db is not None:
        assert decoded.tm_update == parse_go_time(text[1:-1])


def test_every_output_reads_as_go() -> None:
    live = customer(
        id=uuid.uuid4(),
        email="a@example.com",
        webhook_secret="s" * 32,
        email_verified=True,
        status="active",
        identity_verification_status="none",
    )
    assert decode_customer(CURRENT.encode(live)).status == "active"
    gone = msgspec.structs.replace(
        live, status="deleted", tm_delete="2026-08-22 11:00:00.000001", tm_update=CREATED
    )
    assert decode_customer(CURRENT.encode(gone)).deleted
    made = key(id=uuid.uuid4(), token="vb_" + "A" * 32, token_prefix="vb_AAAAAAAA")
    assert decode_accesskey(CURRENT.encode(made), raw_token="required").raw_token == made.token
    stored = msgspec.structs.replace(made, token="")
    assert decode_accesskey(CURRENT.encode(stored)).token_prefix == "vb_AAAAAAAA"


# -- docs/profiles.md#redis: the codec reads cache entries as Go does ------------------------------

GO_ENTRY = customer_json(
    GoCustomer(
        id=uuid.UUID("4b9ff112-02ec-11ee-b037-5b5c308ec044"),
        email="test@voipbin.net",
        webhook_secret="q" * 32,
        email_verified=True,
        status="active",
        identity_verification_status="none",
        tm_create=CREATED_AT,
    )
)


def test_a_go_written_entry_is_a_hit() -> None:
    record = CURRENT.decode(GO_ENTRY, Customer)
    assert record.tm_create == CREATED and record.tm_update == SENTINEL
    assert record.status == "active" and record.webhook_secret == "q" * 32
    assert CURRENT.encode(record) == GO_ENTRY


@pytest.mark.parametrize(
    "time",
    [
        '""',
        '"9999-01-01 00:00:00.000000"',
        '"2026-08-22 10:15:30.12Z"',
        '"2026-13-01T00:00:00Z"',
        '"2026-02-30T10:15:30Z"',
        '"2026-08-22T25:15:30Z"',
        '"2026-08-22T10:61:30Z"',
        "1661163330",
    ],
)
def test_an_entry_go_cannot_decode_is_a_miss(time: str) -> None:
    entry = GO_ENTRY.replace(b'"tm_update":null', b'"tm_update":' + time.encode())
    with pytest.raises(DECODE_ERRORS):
        CURRENT.decode(entry, Customer)


def test_an_entry_without_status_is_a_miss() -> None:
    entry = GO_ENTRY.replace(b'"status":"active",', b"")
    with pytest.raises(DECODE_ERRORS):
        CURRENT.decode(entry, Customer)


def test_offsets_go_accepts_are_read_in_utc() -> None:
    entry = GO_ENTRY.replace(b'"tm_update":null', b'"tm_update":"2026-08-22T19:15:30.5+09:00"')
    assert CURRENT.decode(entry, Customer).tm_update == "2026-08-22 10:15:30.500000"
