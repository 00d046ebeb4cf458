"""The publisher port: events, webhooks and outgoing RPC (docs/events.md,
docs/api.md#outgoing-calls).

Contract of a publisher actor (``AmqpPublisher`` in production, ``NullPublisher`` without a
broker, a recording fake in tests), called through its pykka proxy:

* ``flush()`` (tell-style, fire and forget; workers send it as a coalesced ``RelayRequest``,
  which ``Relaying`` actors map to ``flush()``): relay the outbox now. The relay claims entries
  from storage (``Storage.outbox_claim``), publishes each ``OutboxMessage`` and then marks
  it done; it also runs periodically. Events and webhooks are never sent directly by
  workers: they are written to the outbox with the change and relayed from there.
* ``call(queue, request, timeout, done)``: send ``request`` to another service's request
  ``queue`` and return at once; ``done(response, None)`` is called with the reply, or
  ``done(None, Unavailable)`` when none came within ``timeout`` seconds, exactly once, from
  the publisher's thread. The actor never blocks on a reply, so one slow peer cannot stall
  events or other calls. ``OutgoingCall`` messages (from ``RpcClient``) are mapped to it.
* ``ready() -> bool``: True while connected to the broker (readiness,
  docs/configuration.md#metrics-and-health).

Workers use ``RpcClient.request``, the first hop of a ``Flow`` (kit/flow.py): the step after
it runs in the publisher's thread when the reply arrives, and the worker never waits.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pykka

from customer_manager.actors.kit.flow import Done, Flow, wait
from customer_manager.errors import Unavailable
from customer_manager.messages.wire import Request, Response


class OutgoingCall(msgspec.Struct, frozen=True, kw_only=True):
    """``call(queue, request, timeout, done)`` as a message to the publisher actor."""

    queue: str
    request: Request
    timeout: float
    done: Done


class RpcClient:
    """Outgoing RPC through the publisher actor, as a Flow hop; safe to share between threads."""

    def __init__(self, publisher: pykka.ActorRef[Any], timeout: float) -> None:
        self._publisher, self.timeout = publisher, timeout

    def request(self, queue: str, request: Request) -> Flow[Response]:
        """The reply of the service behind ``queue``; Unavailable if none came in time."""
        return Flow(self, (queue, request), self.timeout)

    def submit(self, message: tuple[str, Request], done: Done, *, timeout: float) -> None:
        queue, request = message
        call = OutgoingCall(queue=queue, request=request, timeout=timeout, done=done)
        try:
            self._publisher.tell(call)
        except pykka.ActorDeadError:
            done(None, Unavailable(f"the publisher is gone; cannot call {queue}"))


def rpc(publisher: pykka.ActorRef[Any], queue: str, request: Request, timeout: float) -> Response:
    """Call another service and wait for the reply (CLI and tests, never a Flow step)."""
    return wait(RpcClient(publisher, timeout).request(queue, request), timeout + 1.0, queue)


class RelayRequest:
    """``flush()`` as workers send it, coalesced: at most one request waits in the publisher's
    mailbox (one message and one wake-up per relay, not per write). The publisher clears
    ``pending`` when it takes the request and then relays, so a write committed before a
    skipped send is relayed by the request that was pending."""

    def __init__(self, publisher: pykka.ActorRef[Any]) -> None:
        self._publisher = publisher
        self.pending = False

    def send(self) -> None:
        if self.pending:
            return
        self.pending = True
        try:
            self._publisher.tell(self)
        except pykka.ActorDeadError:
            self.pending = False
            raise


class Relaying(pykka.ThreadingActor):
    """Base of publisher actors: a RelayRequest message runs ``flush()``."""

    def flush(self) -> None:
        raise NotImplementedError

    def call(self, queue: str, request: Request, timeout: float, done: Done) -> None:
        raise NotImplementedError

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RelayRequest):
            message.pending = False
            self.flush()
            return None
        if isinstance(message, OutgoingCall):
            self.call(message.queue, message.request, message.timeout, message.done)
            return None
        return super().on_receive(message)


class NullPublisher(Relaying):
    """The publisher when no broker is configured (docs/configuration.md#customer-control):
    events and webhooks stay in the outbox for a later relay; outgoing calls fail with
    Unavailable."""

    def flush(self) -> None:
        return None

    def call(self, queue: str, request: Request, timeout: float, done: Done) -> None:
        done(None, Unavailable(f"no broker to reach {queue}"))

    def ready(self) -> bool:
        return True
