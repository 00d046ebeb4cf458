"""Storage contract: customers and access keys (insert, get, update, soft delete, errors)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest

from customer_manager.errors import AlreadyExists, NotFound
from customer_manager.messages.records import NIL, SENTINEL, now
from customer_manager.storage.base import SCHEMA_VERSION, Storage
from tests.support.storage import Recorder, accesskey, customer, none, token_hash


def test_migrate_is_idempotent(storage: Storage) -> None:
    assert storage.schema_version() == SCHEMA_VERSION
    assert storage.migrate() == SCHEMA_VERSION
    assert storage.migrate() == SCHEMA_VERSION
    storage.ping()


def test_customer_roundtrip_and_outbox(storage: Storage) -> None:
    bill = uuid.uuid4()
    given = customer(name="n", detail="d", phone_number="+1", address="a", billing_account_id=bill)
    given = msgspec.structs.replace(given, webhook_method="POST", webhook_uri="https://x.test/h")
    events = Recorder("customer_created")
    stored = storage.customer_insert(given, events)
    assert stored == given
    assert events.seen == [given]
    assert storage.customer_get(given.id) == given
    assert storage.outbox_size() == 1


def test_customer_get_missing(storage: Storage) -> None:
    with pytest.raises(NotFound) as caught:
        storage.customer_get(uuid.uuid4())
    assert caught.value.reason == "CUSTOMER_NOT_FOUND"


def test_nil_and_empty_values_roundtrip(storage: Storage) -> None:
    given = customer(email="", billing_account_id=NIL)
    assert storage.customer_insert(given, none) == given
    assert storage.customer_get(given.id).billing_account_id == NIL


def test_active_email_is_unique_case_insensitive(storage: Storage) -> None:
    storage.customer_insert(customer("Bob@Example.com"), none)
    with pytest.raises(AlreadyExists) as caught:
        storage.customer_insert(customer("bob@example.COM"), Recorder("x"))
    assert caught.value.reason == "EMAIL_ALREADY_EXISTS"
    assert storage.outbox_size() == 0


def test_email_is_free_again_after_delete(storage: Storage) -> None:
    first = storage.customer_insert(customer("carol@example.com"), none)
    storage.customer_delete(first.id, now(), none, none)
    second = storage.customer_insert(customer("carol@example.com"), none)
    with pytest.raises(AlreadyExists):
        storage.customer_insert(customer("carol@example.com"), none)
    assert storage.customer_get(second.id).email == "carol@example.com"


def test_empty_emails_never_collide(storage: Storage) -> None:
    storage.customer_insert(customer(""), none)
    storage.customer_insert(customer(""), none)


def test_duplicate_customer_id(storage: Storage) -> None:
    given = storage.customer_insert(customer("d1@example.com"), none)
    with pytest.raises(AlreadyExists) as caught:
        storage.customer_insert(customer("d2@example.com", id=given.id), none)
    assert caught.value.reason == "CUSTOMER_ALREADY_EXISTS"


def test_failing_outbox_function_rolls_back(storage: Storage) -> None:
    def boom(record: Any) -> list[Any]:
        raise RuntimeError("boom")

    given = customer("e@example.com")
    with pytest.raises(RuntimeError):
        storage.customer_insert(given, boom)
    with pytest.raises(NotFound):
        storage.customer_get(given.id)
    storage.customer_insert(given, none)


def test_customer_update(storage: Storage) -> None:
    given = storage.customer_insert(customer("f@example.com"), none)
    bill, stamp = uuid.uuid4(), now()
    events = Recorder("customer_updated")
    changes = {"name": "new", "email": "f2@example.com", "billing_account_id": bill}
    updated = storage.customer_update(given.id, changes, stamp, events)
    expected = msgspec.structs.replace(given, **changes, tm_update=stamp)
    assert updated == expected == storage.customer_get(given.id)
    assert events.seen == [expected]
    assert storage.outbox_size() == 1


def test_customer_update_errors(storage: Storage) -> None:
    a = storage.customer_insert(customer("g1@example.com"), none)
    storage.customer_insert(customer("g2@example.com"), none)
    with pytest.raises(NotFound):
        storage.customer_update(uuid.uuid4(), {"name": "x"}, now(), none)
    with pytest.raises(AlreadyExists) as caught:
        storage.customer_update(a.id, {"email": "G2@example.com"}, now(), Recorder("x"))
    assert caught.value.reason == "EMAIL_ALREADY_EXISTS"
    with pytest.raises(ValueError):
        storage.customer_update(a.id, {"tm_delete": now()}, now(), none)
    assert storage.customer_get(a.id).email == "g1@example.com"
    assert storage.outbox_size() == 0


def test_update_works_on_deleted_customer(storage: Storage) -> None:
    given = storage.customer_insert(customer("h@example.com"), none)
    gone = storage.customer_delete(given.id, now(), none, none).record
    updated = storage.customer_update(given.id, {"name": "still"}, now(), none)
    assert updated.name == "still" and updated.tm_delete == gone.tm_delete


def test_customer_delete_is_soft_and_once(storage: Storage) -> None:
    given = storage.customer_insert(customer("i@example.com"), none)
    stamp, events = now(), Recorder("customer_deleted")
    result = storage.customer_delete(given.id, stamp, events, none)
    assert result.changed and result.keys == []
    deleted = {
        "tm_delete": stamp,
        "tm_update": stamp,
        "status": "deleted",
    }  # docs/lifecycle.md#statuses-and-transitions
    assert result.record == msgspec.structs.replace(given, **deleted)
    assert storage.customer_get(given.id) == result.record
    assert events.seen == [result.record]
    again = storage.customer_delete(given.id, now(), events, none)
    assert not again.changed and again.record == result.record
    assert len(events.seen) == 1 and storage.outbox_size() == 1
    with pytest.raises(NotFound):
        storage.customer_delete(uuid.uuid4(), now(), none, none)


def test_deleting_a_deleted_customer_again_revokes_its_active_keys(storage: Storage) -> None:
    """A tenant deleted by the Go service kept its keys (Go never revoked them)."""
    owner = storage.customer_insert(customer("go-era@example.com"), none)
    gone = storage.customer_delete(owner.id, now(), none, none).record
    left = storage.accesskey_insert(accesskey(owner.id), token_hash(7), none)  # as Go left it
    other = storage.customer_insert(customer("still-here@example.com"), none)
    storage.accesskey_insert(accesskey(other.id), token_hash(8), none)
    assert storage.orphaned_key_owners() == [owner.id]
    events, key_events = Recorder("customer_deleted"), Recorder("accesskey_deleted")
    again = storage.customer_delete(owner.id, now(), events, key_events)
    assert storage.orphaned_key_owners() == []
    assert not again.changed and again.record == gone and events.seen == []
    assert [k.id for k in again.keys] == [left.id] and again.keys[0].deleted
    assert key_events.seen == again.keys and storage.accesskey_get(left.id) == again.keys[0]
    assert storage.customer_delete(owner.id, now(), none, key_events).keys == []


def test_customer_delete_cascades_to_active_keys(storage: Storage) -> None:
    owner = storage.customer_insert(customer("j@example.com"), none)
    other = storage.customer_insert(customer("k@example.com"), none)
    keys = [storage.accesskey_insert(accesskey(owner.id), token_hash(i), none) for i in range(3)]
    old = storage.accesskey_delete(keys[0].id, "2020-01-01 00:00:00.000000", none).record
    foreign = storage.accesskey_insert(accesskey(other.id), token_hash(9), none)
    stamp, key_events = now(), Recorder("accesskey_deleted")
    result = storage.customer_delete(owner.id, stamp, Recorder("customer_deleted"), key_events)
    assert sorted(k.id.hex for k in result.keys) == sorted(k.id.hex for k in keys[1:])
    for key in result.keys:
        assert key.tm_delete == key.tm_update == stamp
        assert storage.accesskey_get(key.id) == key
    assert sorted(k.id.hex for k in key_events.seen) == sorted(k.id.hex for k in keys[1:])
    assert storage.accesskey_get(old.id) == old
    assert storage.accesskey_get(foreign.id).tm_delete == SENTINEL
    assert storage.outbox_size() == 3


def test_accesskey_roundtrip_never_stores_token(storage: Storage) -> None:
    owner = storage.customer_insert(customer("l@example.com"), none)
    given = accesskey(owner.id, detail="d", tm_expire="2030-01-01 00:00:00.000000")
    events = Recorder("accesskey_created")
    stored = storage.accesskey_insert(given, token_hash(1), events)
    assert stored == msgspec.structs.replace(given, token="")
    assert storage.accesskey_get(given.id) == stored
    assert events.seen == [stored]
    with pytest.raises(NotFound) as caught:
        storage.accesskey_get(uuid.uuid4())
    assert caught.value.reason == "ACCESSKEY_NOT_FOUND"


def test_token_hash_is_unique(storage: Storage) -> None:
    owner = storage.customer_insert(customer("m@example.com"), none)
    storage.accesskey_insert(accesskey(owner.id), token_hash(7), none)
    with pytest.raises(AlreadyExists) as caught:
        storage.accesskey_insert(accesskey(owner.id), token_hash(7), Recorder("x"))
    assert caught.value.reason == "TOKEN_ALREADY_EXISTS"
    assert storage.outbox_size() == 0


def test_accesskey_update_and_delete(storage: Storage) -> None:
    owner = storage.customer_insert(customer("n@example.com"), none)
    key = storage.accesskey_insert(accesskey(owner.id), token_hash(2), none)
    stamp = now()
    updated = storage.accesskey_update(key.id, {"name": "", "detail": "dd"}, stamp, none)
    assert updated == msgspec.structs.replace(key, name="", detail="dd", tm_update=stamp)
    with pytest.raises(ValueError):
        storage.accesskey_update(key.id, {"customer_id": NIL}, now(), none)
    with pytest.raises(NotFound):
        storage.accesskey_update(uuid.uuid4(), {"name": "x"}, now(), none)
    events = Recorder("accesskey_deleted")
    later = now()
    gone = storage.accesskey_delete(key.id, later, events)
    assert gone.changed and gone.record.tm_delete == later and events.seen == [gone.record]
    assert not storage.accesskey_delete(key.id, now(), events).changed
    assert len(events.seen) == 1
    with pytest.raises(NotFound):
        storage.accesskey_delete(uuid.uuid4(), now(), none)


def test_versions_increase_in_commit_order_whatever_the_stamps(storage: Storage) -> None:
    """A write stamped earlier than the row's tm_update (a slower clock, or a stamp taken
    before another writer's commit) still gets a newer tm_update (issue 18 #1)."""
    created = storage.customer_insert(customer("order@example.com"), none)
    early, late = "2026-01-01 00:00:00.000000", "2026-01-01 00:00:05.000000"
    second = storage.customer_update(created.id, {"name": "second"}, late, none)
    first = storage.customer_update(created.id, {"name": "first"}, early, none)
    assert second.tm_update == late
    assert first.tm_update == "2026-01-01 00:00:05.000001"
    assert storage.customer_get(created.id) == first
    gone = storage.customer_delete(created.id, early, none, none)
    assert gone.record.tm_update == gone.record.tm_delete == "2026-01-01 00:00:05.000002"
