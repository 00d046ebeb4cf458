"""Work queued on one actor runs together: creates on a storage actor are committed together
(docs/storage.md#batched-creates), and a batch that fails gives way to each create alone, so every
request still gets its own answer and its own event, exactly once; record reads on a cache
actor go to the cache together (docs/storage.md#cache-reads), and so do record writes
(docs/storage.md#cache-writes)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from customer_manager.actors.kit.flow import wait
from customer_manager.errors import OutcomeUnknown
from customer_manager.messages import codec
from customer_manager.messages.ops import Handle
from customer_manager.messages.query import ListQuery
from customer_manager.messages.records import Customer
from customer_manager.messages.wire import Request, Response
from customer_manager.storage.base import CustomerInsert
from customer_manager.storage.cache_backend import LocalCache, Lookup, Write
from customer_manager.storage.memory import MemoryStorage
from tests.support.harness import TIMEOUT, Build, Harness
from tests.support.metrics import count
from tests.support.waiting import wait_until


class GatedStorage(MemoryStorage):
    """Holds its storage actor in a list while ``gate`` is closed (so creates queue up behind
    it); records every batch it is given; ``lose_commit`` makes a batch end as a connection
    lost at COMMIT would."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.held = threading.Event(), threading.Event()
        self.gate.set()
        self.batches: list[list[str]] = []
        self.lose_commit = False
        self.down = False
        self.alone = 0

    def customer_insert(self, *args: Any, **options: Any) -> Customer:
        self.alone += 1
        if self.down:
            raise ConnectionError("database down")
        return super().customer_insert(*args, **options)

    def customer_list(self, query: ListQuery) -> list[Customer]:
        self.held.set()
        assert self.gate.wait(TIMEOUT)
        return super().customer_list(query)

    def customer_inserts(self, inserts: Sequence[CustomerInsert]) -> list[Customer]:
        self.batches.append([i.customer.email for i in inserts])
        if self.lose_commit:
            raise OutcomeUnknown("lost at COMMIT", [i.customer for i in inserts])
        if self.down:
            raise ConnectionError("database down")
        return super().customer_inserts(inserts)


def creates_queued_behind_a_list(h: Harness, store: GatedStorage, emails: list[str]) -> list[Any]:
    """Send a list (which holds the only storage actor) then a create per email; open the
    gate once every create waits on the storage actor; the replies in ``emails`` order."""
    store.gate.clear()
    store.held.clear()
    replies: list[Any] = [None] * len(emails)
    answered = threading.Semaphore(0)

    def replied(i: int) -> Any:
        def reply(response: Response) -> None:
            replies[i] = response
            answered.release()

        return reply

    lister = threading.Thread(target=h.send, args=("GET", "/v1/customers?page_size=1"))
    lister.start()
    assert store.held.wait(TIMEOUT)
    for i, email in enumerate(emails):
        body = msgspec.Raw(msgspec.json.encode({"email": email}))
        request = Request(method="POST", uri="/v1/customers", data=body)
        h.system.router.tell(Handle(request=request, reply=replied(i)))
    pool = h.system.storage.pool
    wait_until(lambda: pool.in_flight() > len(emails), TIMEOUT, "the creates to queue")
    store.gate.set()
    for _ in emails:
        assert answered.acquire(timeout=TIMEOUT)
    lister.join(TIMEOUT)
    return replies


def batches() -> float:
    return count("customer_manager_storage_batch_size_count")


@pytest.fixture
def gated(build: Build) -> tuple[Harness, GatedStorage]:
    store = GatedStorage()
    return build(storage_factory=lambda: store, storage_workers=1), store


def test_queued_creates_are_stored_in_one_batch_each_with_its_reply_and_event(
    gated: tuple[Harness, GatedStorage],
) -> None:
    h, store = gated
    emails = [f"batch{i}@example.com" for i in range(6)]
    before = batches()
    replies = creates_queued_behind_a_list(h, store, emails)
    assert [r.status_code for r in replies] == [200] * 6
    created = [msgspec.json.decode(r.data) for r in replies]
    assert [c["email"] for c in created] == emails
    assert [sorted(b) for b in store.batches] == [emails]  # all queued behind the list
    assert batches() - before == 1
    events = h.published()
    assert sorted(e[2]["data"]["id"] for e in events) == sorted(c["id"] for c in created)
    assert all(e[2]["type"] == "customer_created" for e in events)
    for c in created:  # each reply's record is the one stored (and cached)
        assert h.json("GET", f"/v1/customers/{c['id']}") == c


def test_a_batch_with_a_duplicate_email_gives_way_to_each_create_alone(
    gated: tuple[Harness, GatedStorage],
) -> None:
    h, store = gated
    emails = ["lead@example.com", "x1@example.com", "dup@example.com", "DUP@example.com"]
    replies = creates_queued_behind_a_list(h, store, emails)
    assert [sorted(b) for b in store.batches] == [sorted(emails)]  # refused as a whole
    statuses = [r.status_code for r in replies]
    assert statuses[:2] == [200, 200] and sorted(statuses[2:]) == [200, 409]
    refused = msgspec.json.decode(replies[statuses.index(409)].data)
    assert "already" in str(refused).lower()
    stored = h.json("GET", "/v1/customers?page_size=10")
    assert sorted(c["email"].lower() for c in stored) == sorted(
        ["lead@example.com", "x1@example.com", "dup@example.com"]
    )
    assert len(h.published()) == 3  # one event per stored create, none for the refused one


def test_a_commit_lost_under_a_batch_answers_each_create_503(
    gated: tuple[Harness, GatedStorage],
) -> None:
    h, store = gated
    store.lose_commit = True
    emails = ["lost1@example.com", "lost2@example.com", "lost3@example.com"]
    replies = creates_queued_behind_a_list(h, store, emails)
    assert [r.status_code for r in replies] == [503, 503, 503]
    assert len(store.batches) == 1  # not run again alone: the outcome is unknown
    assert h.json("GET", "/v1/customers?page_size=10") == []


def test_a_batch_on_a_database_that_is_down_tries_one_create_alone_not_each(
    gated: tuple[Harness, GatedStorage],
) -> None:
    h, store = gated
    store.down = True
    emails = [f"down{i}@example.com" for i in range(5)]
    replies = creates_queued_behind_a_list(h, store, emails)
    assert [r.status_code for r in replies] == [503] * 5
    assert len(store.batches) == 1 and store.alone == 1


class GatedCache(LocalCache):
    """Holds its cache actor in a ``delete`` while ``gate`` is closed; records each batch of
    reads and of writes."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.held = threading.Event(), threading.Event()
        self.gate.set()
        self.batches: list[list[Lookup]] = []
        self.writes: list[list[Write]] = []

    def delete(self, key: str) -> None:
        self.held.set()
        assert self.gate.wait(TIMEOUT)
        super().delete(key)

    def get_many(self, lookups: Sequence[Lookup]) -> list[bytes | None]:
        self.batches.append(list(lookups))
        return super().get_many(lookups)

    def set_many(self, writes: Sequence[Write]) -> None:
        self.writes.append(list(writes))
        super().set_many(writes)

    def hold(self, h: Harness) -> threading.Thread:
        """Close the gate and hold the only cache actor in a ``delete``."""
        self.gate.clear()
        blocker = threading.Thread(target=lambda: wait(h.system.cache.drop("lock:x"), TIMEOUT, "t"))
        blocker.start()
        assert self.held.wait(TIMEOUT)
        return blocker


def send_queued(h: Harness, cache: GatedCache, requests: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``requests`` while ``cache`` holds its actor; open the gate once each of them
    waits on the cache actor; their replies, in order."""
    blocker = cache.hold(h)
    replies: list[Response | None] = [None] * len(requests)

    def send(i: int) -> None:
        replies[i] = h.send(*requests[i])

    senders = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for sender in senders:
        sender.start()
    pool = h.system.cache.pool
    wait_until(lambda: pool.in_flight() > len(requests), TIMEOUT, "the requests to queue")
    cache.gate.set()
    for sender in senders:
        sender.join(TIMEOUT)
    blocker.join(TIMEOUT)
    return replies


def test_reads_queued_on_a_cache_actor_are_read_together_and_each_answered(
    build: Build,
) -> None:
    cache = GatedCache()
    h = build(cache=cache, cache_workers=1)
    customers = [h.customer(f"read{i}@example.com") for i in range(3)]
    key = h.json("POST", "/v1/accesskeys", {"customer_id": customers[0]["id"]})
    token = key.pop("token")
    requests: list[tuple[Any, ...]] = [("GET", f"/v1/customers/{c['id']}", ...) for c in customers]
    requests += [("GET", f"/v1/customers/{uuid.uuid4()}", ...)]  # a miss: read from storage
    requests += [("GET", "/v1/accesskeys?page_size=1", {"token": token})]  # the auth path
    replies = send_queued(h, cache, requests)
    assert len(cache.batches) == 1 and len(cache.batches[0]) == len(requests)
    assert sorted(bool(x.prefix) for x in cache.batches[0]) == [False] * 4 + [True]
    answers = [r and (r.status_code, msgspec.json.decode(r.data)) for r in replies]
    assert answers[:3] == [(200, c) for c in customers]
    assert answers[3] is not None and answers[3][0] == 404
    assert answers[4] == (200, [key])


def test_writes_queued_on_a_cache_actor_are_written_together_and_each_answered(
    build: Build,
) -> None:
    """The creates' cache writes queued behind a held cache actor go in one ``set_many``,
    a read queued with them in one ``get_many``; each request answered once, each record
    cached as stored."""
    cache = GatedCache()
    h = build(cache=cache, cache_workers=1)
    known = h.customer("known@example.com")
    emails = [f"write{i}@example.com" for i in range(4)]
    requests: list[tuple[Any, ...]] = [("POST", "/v1/customers", {"email": e}) for e in emails]
    requests.append(("GET", f"/v1/customers/{known['id']}", ...))
    replies = send_queued(h, cache, requests)
    answers = [r and (r.status_code, msgspec.json.decode(r.data)) for r in replies]
    assert [a and a[0] for a in answers] == [200] * 5
    created = [a[1] for a in answers[:4] if a]
    assert [c["email"] for c in created] == emails and answers[4] == (200, known)
    assert cache.batches == [[Lookup(f"customer:{known['id']}")]]
    assert len(cache.writes) == 1
    assert sorted(w.key for w in cache.writes[0]) == sorted(f"customer:{c['id']}" for c in created)
    for c in created:  # the entry each write left: the record stored
        stored = h.memory.customer_get(uuid.UUID(c["id"]))
        assert codec.active().decode(cache.get(f"customer:{c['id']}") or b"", Customer) == stored
    events = h.published()
    assert sorted(e[2]["data"]["id"] for e in events) == sorted(c["id"] for c in created)
