"""List parameters: paging and filters (docs/api.md#lists)."""

from __future__ import annotations

import uuid

import pytest

from customer_manager.errors import InvalidArgument
from customer_manager.messages.query import (
    Filters,
    hash_token,
    make_page_token,
    parse_list,
)

NOW = "2026-01-02 03:04:05.000006"


@pytest.mark.parametrize(
    ("query", "size"),
    [
        ("", 100),
        ("page_size=0", 100),
        ("page_size=7", 7),
        ("page_size=%2B7", 7),
        ("page_size=" + "9" * 30, 1000),
        ("page_size=1000", 1000),
        ("page_size=5000", 1000),
        ("page_size=3&page_size=9", 3),
    ],
)
def test_page_size_default_and_clamp(query: str, size: int) -> None:
    assert parse_list("customer", f"/v1/customers?{query}", b"", NOW).page_size == size


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "+3", "%203", "-0x1"])
def test_page_size_invalid_is_400(value: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_list("customer", f"/v1/customers?page_size={value}", b"", NOW)
    assert err.value.reason == "INVALID_PAGE_SIZE"


def test_page_tokens_plain_and_composite() -> None:
    plain = parse_list(
        "customer", "/v1/customers?page_token=2021-11-23+17%3A55%3A39.712000", b"", NOW
    )
    assert (plain.before, plain.before_id) == ("2021-11-23 17:55:39.712000", None)
    assert parse_list("customer", "/v1/customers?", b"", NOW).before == NOW
    row = uuid.uuid4()
    token = make_page_token("2021-11-23 17:55:39.712000", row)
    q = parse_list("customer", "/v1/customers?page_token=" + token.replace(" ", "+"), b"", NOW)
    assert (q.before, q.before_id) == ("2021-11-23 17:55:39.712000", row)
    with pytest.raises(InvalidArgument):
        parse_list("customer", "/v1/customers?page_token=yesterday", b"", NOW)


def test_filters_typed_unknown_ignored() -> None:
    cid = "2cfbb148-7dc7-11ec-85df-47cf2c8492f0"
    data = b'{"deleted":true,"email":"a@b.c","customer_id":"' + cid.encode() + b'","x":1}'
    q = parse_list("customer", "/v1/customers?", data, NOW)
    assert q.filters == Filters(deleted=True, email="a@b.c")  # customer_id: not a customer filter
    q = parse_list("accesskey", "/v1/accesskeys?", b'{"token":"vb_x","expired":false}', NOW)
    assert q.filters == Filters(token_hash=hash_token("vb_x"), token="vb_x", expired=False)
    assert "vb_x" not in repr(q)  # the plain token (kept for Go-era keys) is never shown
    assert parse_list("customer", "/v1/customers?", b"null", NOW).filters == Filters()


@pytest.mark.parametrize(
    "data",
    [
        b'{"deleted":null}',
        b'{"deleted":"true"}',
        b'{"email":5}',
        b'{"id":""}',
        b'{"id":7}',
        b"[1]",
        b'"x"',
        b"{",
    ],
)
def test_bad_filters_are_400(data: bytes) -> None:
    with pytest.raises(InvalidArgument):
        parse_list("customer", "/v1/customers?", data, NOW)
