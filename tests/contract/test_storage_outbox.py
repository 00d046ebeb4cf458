"""Storage contract: the transactional outbox (claim with lease, done, size)."""

from __future__ import annotations

from customer_manager.storage.base import OutboxEntry, Storage
from tests.support.storage import Recorder, customer
from tests.support.waiting import wait_until


def _fill(storage: Storage, n: int) -> list[bytes]:
    events = Recorder("customer_created")
    for i in range(n):
        storage.customer_insert(customer(f"w{i}@example.com"), events)
    return [f'{{"type":"customer_created","id":"{c.id}"}}'.encode() for c in events.seen]


def test_claim_is_oldest_first_and_exclusive(storage: Storage) -> None:
    bodies = _fill(storage, 5)
    first = storage.outbox_claim("replica-a", 3, 30)
    assert [e.message.body for e in first] == bodies[:3]
    assert [e.id for e in first] == sorted(e.id for e in first)
    assert first[0].message.exchange == "bin-manager.customer-manager.event"
    assert first[0].message.routing_key == ""
    second = storage.outbox_claim("replica-b", 10, 30)
    assert [e.message.body for e in second] == bodies[3:]
    assert storage.outbox_claim("replica-c", 10, 30) == []
    assert storage.outbox_size() == 5


def test_done_removes_and_expired_leases_are_reclaimed(storage: Storage) -> None:
    bodies = _fill(storage, 3)
    held = storage.outbox_claim("a", 2, 0.05)
    storage.outbox_done([held[0].id])
    storage.outbox_done([])
    assert storage.outbox_size() == 2
    assert [e.message.body for e in storage.outbox_claim("b", 10, 30)] == bodies[2:]
    again: list[OutboxEntry] = []

    def reclaim() -> bool:  # "c" gets the entry of "a" once its 0.05 s lease has expired
        again.extend(storage.outbox_claim("c", 10, 30))
        return bool(again)

    wait_until(reclaim, 5, "the expired lease reclaimed")
    assert [e.id for e in again] == [held[1].id]
    storage.outbox_done([held[1].id, *(e.id for e in again)])
    assert storage.outbox_size() == 1
