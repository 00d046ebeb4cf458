"""Plugin: the unit-test harness, the real actor system (router, pools, storage/cache actors)
built by ``bootstrap`` on MemoryStorage, LocalCache and a RecordingPublisher; the ``build``
and ``h`` fixtures; and the rule that no actor outlives a test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pykka
import pytest

from customer_manager.actors.service.router import call
from customer_manager.actors.storage import StorageClient
from customer_manager.bootstrap import System, bootstrap
from customer_manager.config import Settings
from customer_manager.messages import codec
from customer_manager.messages.queues import AGENT_QUEUE
from customer_manager.messages.wire import Request, Response
from customer_manager.storage.cache_backend import LocalCache
from customer_manager.storage.memory import MemoryStorage
from tests.support.fakes import RecordingPublisher, Script, reply

TIMEOUT = 10.0


class Harness:
    """A running system plus helpers to send requests and read what was published."""

    def __init__(self, system: System, memory: MemoryStorage, cache: LocalCache) -> None:
        self.system, self.memory, self.cache = system, memory, cache
        self.profile = codec.active().profile  # the one bootstrap chose
        self.publisher = system.publisher.proxy()

    def send(self, method: str, uri: str, data: Any = ..., raw: bytes | None = None) -> Response:
        body = raw if raw is not None else b"" if data is ... else msgspec.json.encode(data)
        request = Request(
            uri=uri,
            method=method,
            publisher="test",
            data_type="application/json",
            data=msgspec.Raw(body),
        )
        return call(self.system.router, request, TIMEOUT)

    def json(self, method: str, uri: str, data: Any = ..., status: int = 200) -> Any:
        response = self.send(method, uri, data)
        assert response.status_code == status, bytes(response.data)
        return msgspec.json.decode(response.data)

    def published(self) -> list[Any]:
        """Relayed messages since the last call, as (exchange, routing_key, decoded body)."""
        messages = self.publisher.take().get(timeout=TIMEOUT)
        return [(m.exchange, m.routing_key, msgspec.json.decode(m.body)) for m in messages]

    def calls(self) -> list[tuple[str, Request]]:
        calls: list[tuple[str, Request]] = self.publisher.calls.get(timeout=TIMEOUT)
        return calls

    def customer(self, email: str = "a@example.com", **fields: Any) -> dict[str, Any]:
        created: dict[str, Any] = self.json("POST", "/v1/customers", {"email": email, **fields})
        self.published()
        return created


Build = Callable[..., Harness]


@pytest.fixture
def build(wire_profile: str) -> Iterator[Build]:
    """Build a harness: ``build(scripts=..., storage_factory=..., cache=..., **settings)``, in
    the test's wire profile."""
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
            "wire_profile": wire_profile,
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


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    """Every test ends with no actor left running."""
    yield
    pykka.ActorRegistry.stop_all(timeout=10)
