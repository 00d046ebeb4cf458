"""Storage contract for batched creates (docs/storage.md#batched-creates): ``customer_inserts``
stores every create of the batch with its outbox messages and remembered result, in order,
or nothing at all, on every backend."""

from __future__ import annotations

import secrets

import msgspec
import pytest

from customer_manager.errors import AlreadyExists
from customer_manager.storage.base import CustomerInsert, Storage
from tests.support.storage import Recorder, customer, none, page


def _key() -> str:
    return secrets.token_hex(32)


def test_a_batch_stores_every_create_with_its_events_and_results(storage: Storage) -> None:
    events = Recorder("customer_created")
    given = [
        customer("b1@example.com", name="it's \\ 'quoted' %s"),
        customer("b2@example.com", phone_number="+1 555"),
        customer("", name="no email"),
        customer("", name="no email either"),  # empty emails never collide, in a batch too
    ]
    keys = [_key(), "", _key(), _key()]
    batch = [CustomerInsert(c, events, key) for c, key in zip(given, keys, strict=True)]
    assert storage.customer_inserts(batch) == given
    assert [storage.customer_get(c.id) for c in given] == given
    assert events.seen == given
    entries = storage.outbox_claim("batch", 10, 30)
    bodies = [msgspec.json.decode(e.message.body)["id"] for e in entries]
    assert bodies == [str(c.id) for c in given]  # in the batch's order
    # each keyed create is remembered: its repeat returns the stored record, writes nothing
    again = customer("b1@example.com")
    assert storage.customer_insert(again, events, request_key=keys[0]) == given[0]
    assert storage.outbox_size() == len(given)


@pytest.mark.parametrize(
    "clash",
    ["stored email", "email twice", "repeated request", "request twice", "same id", "id twice"],
)
def test_a_batch_with_one_failing_create_stores_nothing(storage: Storage, clash: str) -> None:
    earlier_key, twice = _key(), _key()
    earlier = storage.customer_insert(customer("Taken@Example.com"), none, request_key=earlier_key)
    events = Recorder("customer_created")
    fine = [customer("fine1@example.com"), customer("fine2@example.com")]
    odd = {
        "stored email": CustomerInsert(customer("taken@example.com"), events),
        "email twice": CustomerInsert(customer("FINE1@example.com"), events),
        "repeated request": CustomerInsert(customer("new@example.com"), events, earlier_key),
        "same id": CustomerInsert(customer("other@example.com", id=earlier.id), events),
        "request twice": CustomerInsert(customer("again@example.com"), events, twice),
        "id twice": CustomerInsert(customer("again@example.com", id=fine[0].id), events),
    }[clash]
    first_key = twice if clash == "request twice" else _key()
    batch = [CustomerInsert(fine[0], events, first_key), odd, CustomerInsert(fine[1], events)]
    with pytest.raises(AlreadyExists):
        storage.customer_inserts(batch)
    assert storage.customer_list(page()) == [earlier]
    assert storage.outbox_size() == 0
    # the same creates alone: the fine ones are stored (their keys were not taken)
    assert storage.customer_insert(fine[0], events, request_key=batch[0].request_key) == fine[0]
