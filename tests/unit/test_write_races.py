"""Writes racing each other, without faults (issue 18 #1): whatever order the writers'
cache SETs land in, the cache ends with the version the database holds."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec

from customer_manager.storage.cache_backend import LocalCache
from tests.support.harness import Build


class ReorderingCache(LocalCache):
    """Holds the first SET of ``hold`` until the next SET of it has landed: two writers'
    SETs arrive in the reverse order of their commits."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = ""
        self.held = threading.Event()
        self._second_landed = threading.Event()
        self._first_taken = False
        self._lock2 = threading.Lock()

    def set(self, key: str, value: bytes, ttl: int, **options: Any) -> None:
        with self._lock2:
            first = key == self.hold and not self._first_taken
            self._first_taken |= first
        if first:
            self.held.set()
            assert self._second_landed.wait(10), "the second SET never came"
        super().set(key, value, ttl, **options)
        if key == self.hold and not first:
            self._second_landed.set()


def test_two_updates_whose_cache_sets_land_in_reverse_order_leave_the_newer(
    build: Build,
) -> None:
    cache = ReorderingCache()
    h = build(cache=cache, cache_workers=2)
    created = h.customer("race@example.com")
    cache.hold = f"customer:{created['id']}"
    uri = f"/v1/customers/{created['id']}"
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(h.json, "PUT", uri, {"email": "race@example.com", "name": "first"})
        assert cache.held.wait(10), "the first update never reached the cache"
        second = h.json("PUT", uri, {"email": "race@example.com", "name": "second"})
        assert first.result(10)["name"] == "first"
    assert second["name"] == "second"
    stored = h.memory.customer_get(uuid.UUID(created["id"]))
    assert stored.name == "second"
    cached = msgspec.json.decode(cache.get(cache.hold) or b"{}")
    assert cached["name"] == "second" and cached["tm_update"] == stored.tm_update
    assert h.json("GET", uri)["name"] == "second"
