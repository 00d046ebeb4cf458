"""Test doubles for the unit suite: a recording publisher and a failing storage.

``RecordingPublisher`` satisfies the publisher contract (actors/publisher.py): ``flush()``
relays the outbox through the StorageClient into ``published``; ``call()`` answers from a
script per queue (a function returning a Response, or None for silence: then, as the real
publisher does, ``done`` gets Unavailable once the call's timeout has passed).
Every method runs in the publisher's own thread; tests read state through ``proxy()`` asks,
which the mailbox orders after every ``flush`` told before the reply they waited for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import msgspec

from customer_manager.actors.kit.flow import Done
from customer_manager.actors.publisher import Relaying
from customer_manager.actors.storage import StorageClient
from customer_manager.errors import Unavailable
from customer_manager.messages.wire import JSON, Request, Response
from customer_manager.storage.base import OutboxMessage, Storage

Script = Callable[[Request], Response | None]


def reply(status: int, data: Any = None) -> Response:
    """A scripted reply from another service."""
    raw = msgspec.Raw(msgspec.json.encode(data)) if data is not None else msgspec.Raw(b"")
    return Response(status_code=status, data_type=JSON if status < 300 else "", data=raw)


class RecordingPublisher(Relaying):
    def __init__(self, store: StorageClient, scripts: dict[str, Script]) -> None:
        super().__init__()
        self._store, self.scripts = store, scripts
        self.flushes = 0
        self.published: list[OutboxMessage] = []
        self.calls: list[tuple[str, Request]] = []

    def flush(self) -> None:
        self.flushes += 1
        entries = self._store.call(Storage.outbox_claim, "test", 1000, 30.0)
        self.published.extend(entry.message for entry in entries)
        self._store.call(Storage.outbox_done, [entry.id for entry in entries])

    def call(self, queue: str, request: Request, timeout: float, done: Done) -> None:
        self.calls.append((queue, request))
        script = self.scripts.get(queue)
        answer = script(request) if script else None
        if answer is not None:
            done(answer, None)
            return
        silence = Unavailable(f"{queue} did not answer in {timeout:g} s")
        timer = threading.Timer(timeout, done, (None, silence))
        timer.daemon = True
        timer.start()

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
        def fail(*args: Any, **options: Any) -> Any:
            if name == "close":
                return None
            raise self._error

        return fail
