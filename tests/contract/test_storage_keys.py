"""Storage contract for access-key usage, rotation and expiry, on every backend
(docs/api.md#access-key-usage-and-rotation, docs/storage.md#schema-version-6)."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from customer_manager.errors import FailedPrecondition, NotFound
from customer_manager.messages.expiring import ExpiringQuery
from customer_manager.messages.records import NIL, SENTINEL, after, now
from customer_manager.storage.base import Rotation, Storage
from tests.support.storage import (
    Factory,
    Recorder,
    accesskey,
    customer,
    none,
    page,
    race,
    token_hash,
)

OLD = "2020-01-01 00:00:00.000000"


def _key(storage: Storage, n: int, **fields: object) -> uuid.UUID:
    owner = storage.customer_insert(customer(f"k{n}-{uuid.uuid4().hex[:6]}@example.com"), none)
    return storage.accesskey_insert(accesskey(owner.id, **fields), token_hash(n), none).id


def _rotation_outbox(new: object, previous: object) -> list[object]:
    return []


def test_a_new_key_is_unused_and_unrotated(storage: Storage) -> None:
    key = storage.accesskey_get(_key(storage, 1))
    assert (key.tm_last_used, key.rotated_from, key.rotated_to, key.tm_grace_end) == (
        SENTINEL,
        NIL,
        NIL,
        SENTINEL,
    )


def test_touch_is_monotonic_and_leaves_tm_update(storage: Storage) -> None:
    key_id = _key(storage, 2)
    first = now()
    touched = storage.accesskey_touch(key_id, first)
    assert touched is not None and touched.tm_last_used == first
    assert touched.tm_update == SENTINEL
    assert storage.accesskey_touch(key_id, OLD) is None  # older: not written
    assert storage.accesskey_touch(key_id, first) is None  # the same moment: not written
    assert storage.accesskey_get(key_id).tm_last_used == first


def test_unused_since_filter(storage: Storage) -> None:
    used_long_ago, used_now = _key(storage, 3, tm_create=OLD), _key(storage, 4, tm_create=OLD)
    never_old, never_new = _key(storage, 5, tm_create=OLD), _key(storage, 19)
    storage.accesskey_touch(used_long_ago, after(-86400))
    storage.accesskey_touch(used_now, now())
    found = {k.id for k in storage.accesskey_list(page(unused_since=after(-3600)))}
    assert found == {used_long_ago, never_old}
    assert never_new not in found and used_now not in found


def test_rotate_links_both_keys_and_stores_the_events(storage: Storage) -> None:
    old_id = _key(storage, 6, name="ci", detail="d")
    old = storage.accesskey_get(old_id)
    new = accesskey(old.customer_id, name="ci", detail="d", rotated_from=old_id)
    moment, grace_end = now(), after(3600)
    seen: list[tuple[object, object]] = []

    def outbox(a: object, b: object) -> list[object]:
        seen.append((a, b))
        return []

    result = storage.accesskey_rotate(old_id, new, token_hash(7), grace_end, moment, outbox)
    assert isinstance(result, Rotation)
    assert result.key.rotated_from == old_id and result.key.token == ""
    assert result.previous.rotated_to == new.id and result.previous.tm_grace_end == grace_end
    assert not result.previous.deleted and result.previous.tm_update >= moment
    assert storage.accesskey_get(old_id) == result.previous
    assert storage.accesskey_get(new.id) == result.key
    assert seen == [(result.key, result.previous)]
    hashed = storage.accesskey_list(page(token_hash=token_hash(7)))
    assert [k.id for k in hashed] == [new.id]


def test_rotate_with_no_grace_deletes_the_old_key(storage: Storage) -> None:
    old_id = _key(storage, 8)
    new = accesskey(storage.accesskey_get(old_id).customer_id, rotated_from=old_id)
    moment = now()
    result = storage.accesskey_rotate(old_id, new, token_hash(9), moment, moment, _rotation_outbox)
    assert result.previous.deleted and result.previous.rotated_to == new.id


def test_rotate_is_refused_twice_and_for_deleted_keys(storage: Storage) -> None:
    old_id = _key(storage, 10)
    owner = storage.accesskey_get(old_id).customer_id
    storage.accesskey_rotate(
        old_id, accesskey(owner), token_hash(11), after(60), now(), _rotation_outbox
    )
    with pytest.raises(FailedPrecondition) as again:
        storage.accesskey_rotate(
            old_id, accesskey(owner), token_hash(12), after(60), now(), _rotation_outbox
        )
    assert again.value.reason == "ACCESSKEY_ALREADY_ROTATED"
    assert not storage.accesskey_list(page(token_hash=token_hash(12)))  # rolled back
    gone = _key(storage, 13)
    storage.accesskey_delete(gone, now(), none)
    with pytest.raises(FailedPrecondition) as deleted:
        storage.accesskey_rotate(
            gone, accesskey(owner), token_hash(14), after(60), now(), _rotation_outbox
        )
    assert deleted.value.reason == "ACCESSKEY_DELETED"
    with pytest.raises(NotFound):
        storage.accesskey_rotate(
            uuid.uuid4(), accesskey(owner), token_hash(15), after(60), now(), _rotation_outbox
        )


def test_concurrent_rotations_of_one_key_one_wins(backend: Factory) -> None:
    first = backend()
    old_id = _key(first, 16)
    owner = first.accesskey_get(old_id).customer_id
    stores = [backend() for _ in range(4)]
    hashes = iter(token_hash(100 + n) for n in range(4))
    planned = {id(s): next(hashes) for s in stores}

    def rotate(store: Storage) -> Rotation:
        new = accesskey(owner, rotated_from=old_id)
        return store.accesskey_rotate(
            old_id, new, planned[id(store)], after(60), now(), _rotation_outbox
        )

    results = race(stores, rotate)
    won = [r for r in results if isinstance(r, Rotation)]
    lost = [r for r in results if isinstance(r, FailedPrecondition)]
    assert len(won) == 1 and len(lost) == 3, results
    assert {e.reason for e in lost} == {"ACCESSKEY_ALREADY_ROTATED"}
    assert first.accesskey_get(old_id).rotated_to == won[0].key.id
    live = first.accesskey_list(page(customer_id=owner, deleted=False))
    assert {k.id for k in live} == {old_id, won[0].key.id}


def test_end_grace_deletes_once_and_only_after_the_grace(storage: Storage) -> None:
    old_id = _key(storage, 17)
    owner = storage.accesskey_get(old_id).customer_id
    grace_end = after(3600)
    storage.accesskey_rotate(
        old_id, accesskey(owner), token_hash(18), grace_end, now(), _rotation_outbox
    )
    events = Recorder("accesskey_deleted")
    assert storage.accesskey_end_grace(old_id, now(), events) is None  # still in its grace
    assert storage.accesskey_grace_over(now(), 10) == []
    later = after(1, grace_end)
    assert [k.id for k in storage.accesskey_grace_over(later, 10)] == [old_id]
    gone = storage.accesskey_end_grace(old_id, later, events)
    assert gone is not None and gone.deleted
    assert storage.accesskey_end_grace(old_id, later, events) is None
    assert len(events.seen) == 1 and storage.accesskey_grace_over(later, 10) == []


def _expiring(**fields: object) -> ExpiringQuery:
    base: dict[str, object] = {"start": now(), "end": after(7 * 86400)}
    return msgspec.convert({**base, **fields}, ExpiringQuery)


def test_expiring_orders_by_expiry_then_id_and_pages_through_ties(storage: Storage) -> None:
    soon, later = after(3600), after(7200)
    ids = [_key(storage, 20 + n, tm_expire=soon if n < 5 else later) for n in range(7)]
    _key(storage, 30, tm_expire=after(30 * 86400))  # outside the window
    _key(storage, 31)  # never expires
    _key(storage, 32, tm_expire=after(-60))  # expired already
    expected = sorted(ids, key=lambda i: (soon if ids.index(i) < 5 else later, i.bytes))
    seen: list[uuid.UUID] = []
    query = _expiring(page_size=2)
    while True:
        rows = storage.accesskey_expiring(query)
        seen += [k.id for k in rows]
        if len(rows) < 2:
            break
        last = rows[-1]
        query = msgspec.structs.replace(query, after_expire=last.tm_expire, after_id=last.id)
    assert seen == expected


def test_expiring_skips_rotated_and_deleted_keys(storage: Storage) -> None:
    soon = after(3600)
    rotated, deleted, kept = (_key(storage, 40 + n, tm_expire=soon) for n in range(3))
    owner = storage.accesskey_get(rotated).customer_id
    storage.accesskey_rotate(
        rotated, accesskey(owner), token_hash(50), after(60), now(), _rotation_outbox
    )
    storage.accesskey_delete(deleted, now(), none)
    assert [k.id for k in storage.accesskey_expiring(_expiring())] == [kept]
    only = _expiring(customer_id=storage.accesskey_get(kept).customer_id)
    assert [k.id for k in storage.accesskey_expiring(only)] == [kept]


def test_expiry_notice_is_marked_once(backend: Factory) -> None:
    first = backend()
    key_id = _key(first, 60, tm_expire=after(3600))
    events = Recorder("accesskey_expiring")
    results = race(
        [backend() for _ in range(4)], lambda s: s.accesskey_notify_expiry(key_id, now(), events)
    )
    assert sum(1 for r in results if r is not None) == 1, results
    assert first.outbox_size() == 1
    assert first.accesskey_expiring(_expiring(unnotified=True)) == []
    assert [k.id for k in first.accesskey_expiring(_expiring())] == [key_id]
