"""Test doubles for the unit suite: a recording publisher and a failing storage.

``RecordingPublisher`` satisfies the publisher contract (actors/publisher.py): ``flush()``
relays the outbox through the Store into ``published``; ``call()`` answers from a script
per queue (a function returning a Response, or None for silence: the future is never set).
Every method runs in the publisher's own thread; tests read state through ``proxy()`` asks,
which the mailbox orders after every ``flush`` told before the reply they waited for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pykka

from customer_manager.actors.publisher import Relaying
from customer_manager.actors.storage import Store
from customer_manager.messages.wire import JSON, Request, Response
from customer_manager.storage.base import OutboxMessage

Script = Callable[[Request], Response | None]


def reply(status: int, data: Any = None) -> Response:
    """A scripted reply from another service."""
    raw = msgspec.Raw(msgspec.json.encode(data)) if data is not None else msgspec.Raw(b"")
    return Response(status_code=status, data_type=JSON if status < 300 else "", data=raw)


class RecordingPublisher(Relaying):
    def __init__(self, store: Store, scripts: dict[str, Script]) -> None:
        super().__init__()
        self._store, self.scripts = store, scripts
        self.flushes = 0
        self.published: list[OutboxMessage] = []
        self.calls: list[tuple[str, Request]] = []

    def flush(self) -> None:
        self.flushes += 1
        entries = self._store.call("outbox_claim", "test", 1000, 30.0)
        self.published.extend(entry.message for entry in entries)
        self._store.call("outbox_done", [entry.id for entry in entries])

    def call(self, queue: str, request: Request, timeout: float) -> pykka.Future[Response]:
        self.calls.append((queue, request))
        future: pykka.Future[Response] = pykka.ThreadingFuture()
        script = self.scripts.get(queue)
        answer = script(request) if script else None
        if answer is not None:
            future.set(answer)
        return future

    def ready(self) -> bool:
        return True

    def take(self) -> list[OutboxMessage]:
        """The messages relayed since the last take."""
        out, self.published = self.published, []
        return out


class BrokenStorage:
    """A Storage whose every call raises ``error`` (a driver failure)."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any) -> Any:
            if name == "close":
                return None
            raise self._error

        return fail
