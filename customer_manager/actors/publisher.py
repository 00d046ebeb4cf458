"""The publisher port: events, webhooks and outgoing RPC (docs/events.md,
docs/api.md#outgoing-calls).

Contract of a publisher actor (``AmqpPublisher`` in production, ``NullPublisher`` without a
broker, a recording fake in tests), called through its pykka proxy:

* ``flush()`` (tell-style, fire and forget; workers send it as a coalesced ``RelayRequest``,
  which ``Relaying`` actors map to ``flush()``): relay the outbox now. The relay claims entries
  from storage (``Storage.outbox_claim``), publishes each ``OutboxMessage`` and then marks
  it done; it also runs periodically. Events and webhooks are never sent directly by
  workers: they are written to the outbox with the change and relayed from there.
* ``call(queue, request, timeout) -> pykka.Future[Response]``: send ``request`` to another
  service's request ``queue`` and return *at once* with a future that is set with the reply
  (or with ``Unavailable`` when no reply came within ``timeout`` seconds). The actor never
  blocks on a reply, so one slow peer cannot stall events or other calls.
* ``ready() -> bool``: True while connected to the broker (readiness,
  docs/configuration.md#metrics-and-health).

Workers use the ``rpc`` helper below, which waits on that future with a bounded timeout.
"""

from __future__ import annotations

from typing import Any

import pykka

from customer_manager.errors import Unavailable
from customer_manager.messages.wire import Request, Response


def rpc(publisher: Any, queue: str, request: Request, timeout: float) -> Response:
    """Call another service through ``publisher`` (a pykka proxy); raise Unavailable if it
    does not answer within ``timeout`` seconds or the publisher is gone."""
    try:
        inner = publisher.call(queue, request, timeout).get(timeout=timeout)
        response: Response = inner.get(timeout=timeout + 0.5)
    except (pykka.Timeout, pykka.ActorDeadError):
        raise Unavailable(f"{queue} did not answer within {timeout:g} s") from None
    return response


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

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RelayRequest):
            message.pending = False
            self.flush()
            return None
        return super().on_receive(message)


class NullPublisher(Relaying):
    """The publisher when no broker is configured (docs/configuration.md#customer-control):
    events and webhooks stay in the outbox for a later relay; outgoing calls fail with
    Unavailable."""

    def flush(self) -> None:
        return None

    def call(self, queue: str, request: Request, timeout: float) -> pykka.Future[Response]:
        future: pykka.Future[Response] = pykka.ThreadingFuture()
        future.set_exception((Unavailable, Unavailable(f"no broker to reach {queue}"), None))
        return future

    def ready(self) -> bool:
        return True
