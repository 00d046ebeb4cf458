"""Storage contract: the transactional outbox (claim with lease, done, size and age)."""

from __future__ import annotations

import time

from customer_manager.messages.records import now
from customer_manager.storage.base import OutboxEntry, OutboxStats, Storage
from tests.support.storage import Recorder, customer
from tests.support.waiting import wait_until


def _fill(storage: Storage, n: int, prefix: str = "w") -> list[bytes]:
    events = Recorder("customer_created")
    for i in range(n):
        storage.customer_insert(customer(f"{prefix}{i}@example.com"), events)
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


def test_stats_count_the_entries_and_date_the_oldest(storage: Storage) -> None:
    """What the relay exports as customer_manager_outbox_backlog and _oldest_age_seconds: the
    oldest entry not yet published (claimed or not) is the first one written."""
    assert storage.outbox_stats() == OutboxStats(size=0, oldest="")
    before = now()
    _fill(storage, 1)
    between = now()
    time.sleep(0.01)
    _fill(storage, 2, prefix="later")
    stats = storage.outbox_stats()
    assert stats.size == storage.outbox_size() == 3
    assert before <= stats.oldest <= between  # wire timestamps sort as they read
    held = storage.outbox_claim("a", 10, 30)
    assert storage.outbox_stats() == stats  # a claimed entry is not published yet
    storage.outbox_done([held[0].id])
    later = storage.outbox_stats()
    assert later.size == 2 and between < later.oldest <= now()
    storage.outbox_done([e.id for e in held[1:]])
    assert storage.outbox_stats() == OutboxStats(size=0, oldest="")
