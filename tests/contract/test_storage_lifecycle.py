"""Storage contract for the lifecycle (docs/lifecycle.md#statuses-and-transitions,
docs/lifecycle.md#routes): conditional transitions, the sweep
selections, the key cascade and signup's single transaction, on every backend."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import msgspec
import pytest

from customer_manager.errors import AlreadyExists, NotFound
from customer_manager.messages.records import GUEST_ID, SENTINEL, after, now
from customer_manager.storage.base import Storage, Transition
from tests.support.storage import Factory, Recorder, accesskey, customer, none, token_hash

OLD = "2020-01-01 00:00:00.000000"


def freeze(moment: str, events: Any = none) -> Transition:
    return Transition(
        changes={"status": "frozen", "tm_deletion_scheduled": moment},
        status="active",
        outbox=events,
    )


def anonymize(moment: str, events: Any = none, keys: Any = None) -> Transition:
    changes = {"status": "deleted", "tm_delete": moment, "email": "x@removed.voipbin.net"}
    revoke = keys or (lambda customer, key: [])
    return Transition(
        changes=changes, status="frozen", outbox=events, revoke_keys=True, key_outbox=revoke
    )


def test_transition_applies_its_guard(storage: Storage) -> None:
    row = storage.customer_insert(customer("t1@example.com"), none)
    stamp, events = now(), Recorder("customer_frozen")
    done = storage.customer_transition(row.id, [freeze(stamp, events)], stamp)
    assert done is not None and done.changed and done.keys == []
    frozen = storage.customer_get(row.id)
    assert done.record == frozen and events.seen == [frozen]
    assert (frozen.status, frozen.tm_deletion_scheduled, frozen.tm_update) == (
        "frozen",
        stamp,
        stamp,
    )
    assert storage.customer_transition(row.id, [freeze(now(), events)], now()) is None
    assert storage.customer_get(row.id) == frozen and storage.outbox_size() == 1
    assert storage.customer_transition(uuid.uuid4(), [freeze(now())], now()) is None


def test_guards_on_email_verified_and_deletion(storage: Storage) -> None:
    unverified = storage.customer_insert(
        customer("t2@example.com", status="initial", email_verified=False), none
    )
    verify = Transition(
        changes={"email_verified": True, "status": "active"}, email_verified=False, outbox=none
    )
    assert storage.customer_transition(unverified.id, [verify], now()) is not None
    assert storage.customer_transition(unverified.id, [verify], now()) is None  # single use
    assert storage.customer_get(unverified.id).email_verified is True
    gone = storage.customer_insert(
        customer("t3@example.com", tm_delete=OLD, status="initial"), none
    )
    gone_verify = Transition(changes={"status": "active"}, email_verified=None, outbox=none)
    assert storage.customer_transition(gone.id, [gone_verify], now()) is None  # F9


def test_steps_are_all_or_nothing(storage: Storage) -> None:
    row = storage.customer_insert(customer("t4@example.com", status="initial"), none)
    key = storage.accesskey_insert(accesskey(row.id), token_hash(1), none)
    events = Recorder("x")
    stamp = now()
    assert (
        storage.customer_transition(row.id, [freeze(stamp, events), anonymize(stamp)], stamp)
        is None
    )
    assert storage.customer_get(row.id) == row
    assert storage.accesskey_get(key.id) == key and storage.outbox_size() == 0


def test_freeze_then_anonymize_revokes_keys_in_order(storage: Storage) -> None:
    row = storage.customer_insert(customer("t5@example.com"), none)
    keys = [storage.accesskey_insert(accesskey(row.id), token_hash(n), none) for n in (1, 2)]
    order: list[str] = []

    def record(kind: str) -> Any:
        def build(*records: Any) -> list[Any]:
            order.append(f"{kind}:{records[-1].id}")
            return Recorder(kind)(records[-1])

        return build

    stamp = now()
    steps = [freeze(stamp, record("frozen")), anonymize(stamp, record("deleted"), record("key"))]
    done = storage.customer_transition(row.id, steps, stamp)
    assert done is not None and done.record.status == "deleted"
    assert done.record.tm_delete == stamp and done.record.email == "x@removed.voipbin.net"
    assert sorted(k.id for k in done.keys) == sorted(k.id for k in keys)
    assert all(storage.accesskey_get(k.id).tm_delete == stamp for k in keys)
    assert order[0] == f"frozen:{row.id}" and order[-1] == f"deleted:{row.id}"
    assert sorted(order[1:3]) == sorted(f"key:{k.id}" for k in keys)
    assert storage.outbox_size() == 4
    assert not storage.customer_insert(customer("t5@example.com"), none).deleted  # email freed


def test_due_selects_oldest_first_bounded_and_skips_protected(storage: Storage) -> None:
    rows = [
        storage.customer_insert(
            customer(
                f"d{n}@example.com",
                status="initial",
                email_verified=False,
                tm_create=f"2020-01-0{n} 00:00:00.000000",
            ),
            none,
        )
        for n in (3, 1, 2)
    ]
    storage.customer_insert(
        customer(
            "guest@example.com", id=GUEST_ID, status="initial", email_verified=False, tm_create=OLD
        ),
        none,
    )
    storage.customer_insert(
        customer("young@example.com", status="initial", email_verified=False), none
    )
    storage.customer_insert(customer("verified@example.com", tm_create=OLD), none)
    cutoff = after(-3600)
    found = storage.customer_due("unverified", cutoff, 2, [GUEST_ID])
    assert [c.id for c in found] == [rows[1].id, rows[2].id]
    assert len(storage.customer_due("unverified", cutoff, 100, [GUEST_ID])) == 3
    frozen = storage.customer_insert(
        customer("f@example.com", status="frozen", tm_deletion_scheduled=OLD), none
    )
    storage.customer_insert(
        customer("f2@example.com", status="frozen", tm_deletion_scheduled=now()), none
    )
    assert [c.id for c in storage.customer_due("frozen_expired", after(-60), 10, [])] == [frozen.id]


def test_signup_is_one_transaction(storage: Storage) -> None:
    taken = storage.customer_insert(customer("other@example.com"), none)
    storage.accesskey_insert(accesskey(taken.id), token_hash(7), none)
    before = storage.outbox_size()
    fresh = customer("new@example.com", status="initial", email_verified=False)
    key = accesskey(fresh.id)
    outbox = Recorder("signup")
    with pytest.raises(AlreadyExists):  # the key insert fails after the customer insert
        storage.customer_signup(fresh, key, token_hash(7), lambda c, k: outbox(c))
    with pytest.raises(NotFound):
        storage.customer_get(fresh.id)
    assert storage.outbox_size() == before
    stored, stored_key = storage.customer_signup(fresh, key, token_hash(8), lambda c, k: outbox(c))
    assert stored == storage.customer_get(fresh.id)
    assert stored_key.token == "" and storage.accesskey_get(key.id) == stored_key
    assert storage.outbox_size() == before + 1


def test_two_replicas_sweep_each_customer_once(backend: Factory) -> None:
    first, second = backend(), backend()
    rows = [
        first.customer_insert(
            customer(f"r{n}@example.com", status="frozen", tm_deletion_scheduled=OLD), none
        )
        for n in range(40)
    ]
    won: list[uuid.UUID] = []
    lock = threading.Lock()

    def sweep(store: Storage) -> None:
        for row in store.customer_due("frozen_expired", after(-60), 100, []):
            stamp = now()
            if store.customer_transition(row.id, [anonymize(stamp)], stamp) is not None:
                with lock:
                    won.append(row.id)

    threads = [threading.Thread(target=sweep, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(won) == sorted(r.id for r in rows)  # every one, and each once
    assert first.customer_due("frozen_expired", after(-60), 100, []) == []


def test_effective_status_of_a_seed_soft_delete(storage: Storage) -> None:
    row = storage.customer_insert(customer("s@example.com", status="active"), none)
    stamp = now()
    storage.customer_update(row.id, {"name": "n"}, stamp, none)
    deleted = storage.customer_delete(row.id, stamp, none, none).record
    assert (
        deleted.status == "deleted"
    )  # docs/lifecycle.md#statuses-and-transitions: the delete writes it
    assert msgspec.structs.replace(deleted, status="active").deleted
    assert deleted.tm_delete != SENTINEL
