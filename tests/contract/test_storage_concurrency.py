"""Storage contract under concurrency: two storages (two connections) on one database."""

from __future__ import annotations

import threading

import pytest

from customer_manager.errors import AlreadyExists
from tests.support.storage import Factory, Recorder, customer, race


@pytest.mark.parametrize("round_", range(5))
def test_one_email_two_simultaneous_creates(backend: Factory, round_: int) -> None:
    stores = [backend(), backend()]
    email = f"race{round_}@example.com"
    results = race(stores, lambda s: s.customer_insert(customer(email), Recorder("c")))
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], AlreadyExists) and errors[0].reason == "EMAIL_ALREADY_EXISTS"
    assert stores[0].outbox_size() == 1
    created = next(r for r in results if not isinstance(r, Exception))
    assert stores[1].customer_get(created.id) == created


def test_concurrent_claims_never_share_an_entry(backend: Factory) -> None:
    stores = [backend() for _ in range(3)]
    events = Recorder("c")
    for i in range(30):
        stores[0].customer_insert(customer(f"claim{i}@example.com"), events)
    claimed: list[int] = []
    for _ in range(4):
        results = race(stores, lambda s: s.outbox_claim(f"owner-{threading.get_ident()}", 4, 30))
        for batch in results:
            assert not isinstance(batch, Exception), batch
            claimed += [e.id for e in batch]
        stores[1].outbox_done(claimed)  # published, as a relay does before its next claim
    assert len(claimed) == len(set(claimed)) == 30
    assert stores[2].outbox_size() == 0


def test_an_owner_claims_its_own_leased_entries_again_others_do_not(backend: Factory) -> None:
    """A batch whose publish failed goes out with the owner's first claim after it
    reconnects (``reclaim_own``), not after the lease (issue 18 #4); another owner, and the
    same owner's ordinary claims, still wait for the lease to run out."""
    first, second = backend(), backend()
    first.customer_insert(customer("lease1@example.com"), Recorder("c"))
    first.customer_insert(customer("lease2@example.com"), Recorder("c"))
    leased = [e.id for e in first.outbox_claim("a", 10, 30)]
    assert len(leased) == 2
    assert second.outbox_claim("b", 10, 30) == []
    assert second.outbox_claim("a", 10, 30) == []  # an ordinary claim: still leased
    assert [e.id for e in second.outbox_claim("a", 10, 30, reclaim_own=True)] == leased
    assert second.outbox_claim("b", 10, 30) == []
