"""Failures inside the actor system: every request still gets exactly one reply."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

import msgspec
import pykka
import pytest

from customer_manager.actors.kit.members import Crash
from customer_manager.messages.ops import Handle
from customer_manager.messages.wire import Request, Response
from tests.support.fakes import BrokenStorage
from tests.support.harness import TIMEOUT, Build


def request(method: str, uri: str, data: Any = ...) -> Request:
    raw = b"" if data is ... else msgspec.json.encode(data)
    return Request(method=method, uri=uri, data=msgspec.Raw(raw))


def test_storage_that_always_fails_gives_500_or_503_and_workers_live_on(build: Build) -> None:
    for error, status in ((RuntimeError("driver bug"), 500), (ConnectionError("down"), 503)):
        h = build(storage_factory=lambda e=error: BrokenStorage(e))
        for _ in range(3):
            assert h.send("POST", "/v1/customers", {"email": "a@b.c"}).status_code == status
            assert h.send("GET", "/v1/customers?page_size=1").status_code == status
        assert h.send("GET", "/nope").status_code == 404  # the router still serves
        assert all(ref.is_alive() for ref in h.system.workers[0].members())


def test_killed_worker_is_replaced_and_no_request_is_lost(build: Build) -> None:
    h = build(customer_workers=2)
    pool = h.system.workers[0]
    victim = pool.members()[0]
    futures = []
    victim.tell(Crash())
    for i in range(50):
        future: pykka.ThreadingFuture[Response] = pykka.ThreadingFuture()
        h.system.router.tell(
            Handle(
                request=request("POST", "/v1/customers", {"email": f"k{i}@x.com"}), reply=future.set
            )
        )
        futures.append(future)
    assert all(f.get(timeout=TIMEOUT).status_code == 200 for f in futures)
    assert victim.actor_stopped.wait(TIMEOUT)
    assert pool.wait_full(TIMEOUT) and victim not in pool.members()
    assert len(h.json("GET", "/v1/customers?page_size=100")) == 50


def test_200_concurrent_requests_get_exactly_one_reply_each(build: Build) -> None:
    h = build()
    replies: Counter[int] = Counter()
    lock, done = threading.Lock(), threading.Event()
    requests = []
    for i in range(200):
        kind = i % 4
        if kind == 0:
            requests.append(request("POST", "/v1/customers", {"email": f"c{i}@x.com"}))
        elif kind == 1:
            requests.append(request("GET", "/v1/customers?page_size=5"))
        elif kind == 2:
            requests.append(request("GET", "/v1/customers/2cfbb148-7dc7-11ec-85df-47cf2c8492f0"))
        else:
            requests.append(request("GET", "/unknown"))

    def make_reply(i: int) -> Any:
        def reply(response: Response) -> None:
            with lock:
                replies[i] += 1
                if sum(replies.values()) == len(requests):
                    done.set()

        return reply

    def send(chunk: range) -> None:
        for i in chunk:
            h.system.router.tell(Handle(request=requests[i], reply=make_reply(i)))

    threads = [threading.Thread(target=send, args=(range(k, 200, 8),)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert done.wait(TIMEOUT)
    assert all(pool.in_flight() == 0 for pool in h.system.workers)
    assert set(replies) == set(range(200)) and set(replies.values()) == {1}
    assert len(h.json("GET", "/v1/customers?page_size=100")) == 50


def test_reads_are_served_from_storage_when_every_cache_call_fails(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache actors answer hits themselves (a Flow); when the cache fails, the read
    goes on to storage, and a failed fill does not fail the request."""
    h = build()
    customer = h.json("POST", "/v1/customers", {"email": "cache-down@example.com"})
    key = h.json("POST", "/v1/accesskeys", {"customer_id": customer["id"]})
    token = key.pop("token")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    for method in ("get", "get_indirect", "set", "delete"):
        monkeypatch.setattr(h.cache, method, broken)
    for _ in range(3):
        assert h.json("GET", f"/v1/customers/{customer['id']}") == customer
        assert h.json("GET", f"/v1/accesskeys/{key['id']}") == key
        assert h.json("GET", "/v1/accesskeys?page_size=1", {"token": token}) == [key]
        assert h.send("GET", f"/v1/customers/{uuid.uuid4()}").status_code == 404
