"""Storage contract: listing filters and tie-safe pagination (docs/api.md#lists)."""

from __future__ import annotations

import uuid

import msgspec

from customer_manager.messages.query import ListQuery, make_page_token, parse_list
from customer_manager.messages.records import after, now
from customer_manager.storage.base import Storage
from tests.support.storage import accesskey, customer, none, page, token_hash

DAY = "2024-03-0{} 12:00:00.000000"


def ids(rows: list[msgspec.Struct]) -> list[uuid.UUID]:
    return [r.id for r in rows]  # type: ignore[attr-defined]


def test_customer_filters(storage: Storage) -> None:
    bill = uuid.uuid4()
    a = storage.customer_insert(customer("Ann@Example.com", name="a", phone_number="1"), none)
    b = storage.customer_insert(customer("b@example.com", name="b", billing_account_id=bill), none)
    c = storage.customer_insert(customer("c@example.com", name="a"), none)
    storage.customer_delete(c.id, now(), none, none)
    assert ids(storage.customer_list(page(email="ann@example.COM"))) == [a.id]
    assert set(ids(storage.customer_list(page(name="a")))) == {a.id, c.id}
    assert ids(storage.customer_list(page(name="a", deleted=False))) == [a.id]
    assert ids(storage.customer_list(page(deleted=True))) == [c.id]
    assert ids(storage.customer_list(page(phone_number="1"))) == [a.id]
    assert ids(storage.customer_list(page(billing_account_id=bill))) == [b.id]
    assert ids(storage.customer_list(page(id=b.id))) == [b.id]
    assert storage.customer_list(page(email="nobody@example.com")) == []
    assert len(storage.customer_list(page())) == 3


def test_accesskey_filters(storage: Storage) -> None:
    owner = storage.customer_insert(customer("o@example.com"), none)
    other = storage.customer_insert(customer("p@example.com"), none)
    live = storage.accesskey_insert(accesskey(owner.id, name="live"), token_hash(1), none)
    old = storage.accesskey_insert(
        accesskey(owner.id, tm_expire="2020-01-01 00:00:00.000000"), token_hash(2), none
    )
    soon = storage.accesskey_insert(accesskey(other.id, tm_expire=after(3600)), token_hash(3), none)
    gone = storage.accesskey_insert(accesskey(other.id), token_hash(4), none)
    storage.accesskey_delete(gone.id, now(), none)
    assert set(ids(storage.accesskey_list(page(customer_id=owner.id)))) == {live.id, old.id}
    assert ids(storage.accesskey_list(page(token_hash=token_hash(3)))) == [soon.id]
    assert ids(storage.accesskey_list(page(token_hash=token_hash(4), deleted=False))) == []
    assert ids(storage.accesskey_list(page(expired=True))) == [old.id]
    not_expired = storage.accesskey_list(page(expired=False, deleted=False))
    assert set(ids(not_expired)) == {live.id, soon.id}
    assert ids(storage.accesskey_list(page(deleted=True))) == [gone.id]
    assert ids(storage.accesskey_list(page(name="live", id=live.id))) == [live.id]


def test_list_is_newest_first_and_respects_page_size(storage: Storage) -> None:
    made = [
        storage.customer_insert(customer(f"q{i}@example.com", tm_create=DAY.format(i)), none)
        for i in range(1, 6)
    ]
    assert ids(storage.customer_list(page(size=3))) == [m.id for m in reversed(made)][:3]


def _walk(storage: Storage, token: str) -> list[uuid.UUID]:
    seen: list[uuid.UUID] = []
    uri = "/v1/customers?page_size=7"
    while True:
        query = parse_list("customer", uri + token, b"", now())
        rows = storage.customer_list(query)
        seen += ids(rows)
        if len(rows) < query.page_size:
            return seen
        token = "&page_token=" + make_page_token(rows[-1].tm_create, rows[-1].id)


def test_pagination_with_ties_returns_every_row_once(storage: Storage) -> None:
    rows = [
        storage.customer_insert(
            customer(f"t{i}@example.com", tm_create=DAY.format(i % 5 + 1)), none
        )
        for i in range(250)
    ]
    expected = [r.id for r in sorted(rows, key=lambda r: (r.tm_create, r.id.bytes), reverse=True)]
    assert _walk(storage, "") == expected


def test_plain_timestamp_token_still_works(storage: Storage) -> None:
    rows = [
        storage.customer_insert(customer(f"u{i}@example.com", tm_create=DAY.format(i)), none)
        for i in range(1, 6)
    ]
    uri = "/v1/customers?page_size=10&page_token=" + DAY.format(4).replace(" ", "+")
    query = parse_list("customer", uri, b"", now())
    assert query.before_id is None
    assert ids(storage.customer_list(query)) == [rows[2].id, rows[1].id, rows[0].id]


def test_accesskey_pagination_with_ties(storage: Storage) -> None:
    owner = storage.customer_insert(customer("v@example.com"), none)
    keys = [
        storage.accesskey_insert(
            accesskey(owner.id, tm_create=DAY.format(i % 2 + 1)), token_hash(i), none
        )
        for i in range(9)
    ]
    expected = [k.id for k in sorted(keys, key=lambda k: (k.tm_create, k.id.bytes), reverse=True)]
    seen: list[uuid.UUID] = []
    query = ListQuery(page_size=4, before=after(60))
    while rows := storage.accesskey_list(query):
        seen += ids(rows)
        query = ListQuery(page_size=4, before=rows[-1].tm_create, before_id=rows[-1].id)
    assert seen == expected
