"""The unit-test harness: a running system plus helpers (imported by conftest and tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from customer_manager.actors.service.router import call
from customer_manager.bootstrap import System
from customer_manager.messages.wire import Request, Response
from customer_manager.storage.cache_backend import LocalCache
from customer_manager.storage.memory import MemoryStorage

TIMEOUT = 10.0


class Harness:
    """A running system plus helpers to send requests and read what was published."""

    def __init__(self, system: System, memory: MemoryStorage, cache: LocalCache) -> None:
        self.system, self.memory, self.cache = system, memory, cache
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
