"""Unit fixtures: the real actor system (router, pools, storage/cache actors) built by
``bootstrap`` on MemoryStorage, LocalCache and a RecordingPublisher."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakes import RecordingPublisher, Script, reply
from harness import Build, Harness

from customer_manager.actors.storage import StorageClient
from customer_manager.bootstrap import System, bootstrap
from customer_manager.config import Settings
from customer_manager.messages.queues import AGENT_QUEUE
from customer_manager.storage.cache_backend import LocalCache
from customer_manager.storage.memory import MemoryStorage


@pytest.fixture
def build() -> Iterator[Build]:
    """Build a harness: ``build(scripts=..., storage_factory=..., cache=..., **settings)``."""
    systems: list[System] = []

    def make(
        scripts: dict[str, Script] | None = None,
        storage_factory: Any = None,
        cache: LocalCache | None = None,
        **settings: Any,
    ) -> Harness:
        memory, cache = MemoryStorage(), cache or LocalCache()
        options = {
            "agent_check": "off",
            "rpc_timeout": 0.5,
            "customer_workers": 4,
            "accesskey_workers": 4,
            "storage_workers": 3,
            **settings,
        }

        def publisher(store: StorageClient) -> Any:
            return RecordingPublisher.start(store, dict(scripts or {}))

        system = bootstrap(
            Settings(**options),
            storage_factory=storage_factory or (lambda: memory),
            cache=cache,
            publisher_factory=publisher,
        )
        systems.append(system)
        return Harness(system, memory, cache)

    yield make
    for system in systems:
        system.stop(timeout=5)


@pytest.fixture
def h(build: Build) -> Harness:
    """The default harness: agent check on, agent-manager answering "no agents"."""
    return build(scripts={AGENT_QUEUE: lambda request: reply(200, [])}, agent_check="required")
