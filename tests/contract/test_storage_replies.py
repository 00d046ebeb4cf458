"""Storage contract for remembered writes (issue 18 #3): a write repeated with its request
key returns the first run's result and writes nothing, on every backend; a repeat racing
the first run gets its result too."""

from __future__ import annotations

import secrets

import pytest

from customer_manager.errors import AlreadyExists
from customer_manager.messages.records import now
from customer_manager.storage.base import Storage
from tests.support.storage import Factory, Recorder, accesskey, customer, none, race, token_hash


def _key() -> str:
    return secrets.token_hex(32)


def test_a_create_repeated_after_its_commit_returns_the_created_record(storage: Storage) -> None:
    events, request = Recorder("customer_created"), _key()
    first = customer("once@example.com")
    created = storage.customer_insert(first, events, request_key=request)
    again = customer("once@example.com")  # the repeat builds a new record (new id, new time)
    assert storage.customer_insert(again, events, request_key=request) == created
    assert events.seen == [created] and storage.outbox_size() == 1
    with pytest.raises(AlreadyExists):  # another request with that email is still refused
        storage.customer_insert(again, events, request_key=_key())


def test_repeated_updates_and_deletes_return_the_first_result(storage: Storage) -> None:
    owner = storage.customer_insert(customer("rep@example.com"), none)
    update, events = _key(), Recorder("customer_updated")
    first = storage.customer_update(owner.id, {"name": "one"}, now(), events, request_key=update)
    storage.customer_update(owner.id, {"name": "two"}, now(), events)
    assert (
        storage.customer_update(owner.id, {"name": "one"}, now(), events, request_key=update)
        == first
    )
    assert storage.customer_get(owner.id).name == "two"  # the repeat did not apply again
    # nothing of the repeat is stored (an SQL backend runs it and rolls it back)
    assert storage.outbox_size() == 2
    key = storage.accesskey_insert(accesskey(owner.id), token_hash(3), none)
    rename = _key()
    renamed = storage.accesskey_update(key.id, {"name": "r"}, now(), none, request_key=rename)
    again = storage.accesskey_update(key.id, {"name": "r"}, now(), none, request_key=rename)
    assert again == renamed
    delete = _key()
    gone = storage.customer_delete(owner.id, now(), none, none, request_key=delete)
    repeated = storage.customer_delete(owner.id, now(), none, none, request_key=delete)
    assert gone.changed and not repeated.changed and repeated.record == gone.record
    key_delete = _key()
    key_gone = storage.accesskey_delete(key.id, now(), none, request_key=key_delete)
    assert storage.accesskey_delete(key.id, now(), none, request_key=key_delete).record == (
        key_gone.record
    )


@pytest.mark.parametrize("round_", range(3))
def test_a_create_and_its_repeat_racing_both_return_the_created_record(
    backend: Factory, round_: int
) -> None:
    stores, request = [backend(), backend()], _key()
    email = f"racing{round_}@example.com"
    results = race(
        stores, lambda s: s.customer_insert(customer(email), Recorder("c"), request_key=request)
    )
    assert not any(isinstance(r, Exception) for r in results), results
    assert results[0] == results[1]
    assert stores[0].outbox_size() == 1
