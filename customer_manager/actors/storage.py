"""StorageActor pool: each member owns one Storage (one connection), made in ``setup``.

Workers (and the publisher's outbox relay) call storage through ``Store``, which asks the
pool with a mandatory timeout. Errors: our ServiceErrors pass through unchanged; a driver
error is logged once and becomes Unavailable (connection trouble) or Internal (anything else).
A member is never killed by a failing call.

This module also builds the outbox messages that every write stores with the change
(SPEC B.3 #18, #20): the Event on the event exchange and, when the customer has a
``webhook_uri``, a webhook request to webhook-manager.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from customer_manager.actors.kit import PoolMember
from customer_manager.actors.pool import Pool
from customer_manager.config import EVENT_EXCHANGE, WEBHOOK_QUEUE
from customer_manager.errors import Internal, ServiceError, Unavailable
from customer_manager.messages import gojson, wire
from customer_manager.messages.records import Accesskey, Customer
from customer_manager.messages.wire import JSON, PUBLISHER, Event, Request
from customer_manager.storage.base import OutboxMessage, Storage

log = logging.getLogger(__name__)

STORAGE_TIMEOUT = 10.0
StorageFactory = Callable[[], Storage]


class StorageCall(msgspec.Struct, frozen=True, kw_only=True):
    """Call ``Storage.<method>(*args)`` on a member's storage."""

    method: str
    args: tuple[Any, ...] = ()


class StorageActor(PoolMember):
    """A pool member owning one Storage. ``setup`` (actor thread) opens it."""

    def __init__(self, pool: Pool, factory: StorageFactory) -> None:
        super().__init__(pool)
        self._factory = factory
        self._storage: Storage | None = None

    def setup(self) -> None:
        self._storage = self._factory()

    def teardown(self) -> None:
        if self._storage is not None:
            try:
                self._storage.close()
            except Exception:
                log.exception("closing storage failed")

    def handle(self, message: Any) -> Any:
        assert isinstance(message, StorageCall) and self._storage is not None
        try:
            return getattr(self._storage, message.method)(*message.args)
        except ServiceError:
            raise
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.error("storage %s failed: %s", message.method, type(exc).__name__)
            raise Unavailable(f"database unavailable ({message.method})") from None
        except Exception:
            log.exception("storage %s failed", message.method)
            raise Internal(f"database error ({message.method})") from None


def start_storage_pool(factory: StorageFactory, size: int) -> Pool:
    """Start a pool of ``size`` StorageActors, each with its own ``factory()`` Storage."""
    return Pool("storage", size, lambda pool: StorageActor.start(pool, factory)).start()


class Store:
    """Blocking storage calls for workers (any thread but a storage member's)."""

    def __init__(self, pool: Pool, timeout: float = STORAGE_TIMEOUT) -> None:
        self.pool, self.timeout = pool, timeout

    def call(self, method: str, *args: Any) -> Any:
        """Run ``Storage.<method>(*args)`` in the pool; Unavailable if it takes too long."""
        return self.pool.ask(StorageCall(method=method, args=args), timeout=self.timeout)


# -- outbox: events and webhooks ------------------------------------------------------------


def event_message(event_type: str, record: Customer | Accesskey) -> OutboxMessage:
    """The Event (Part A §2.3) for a change, on the fanout event exchange."""
    event = Event(type=event_type, data=msgspec.Raw(gojson.encode(public(record))))
    return OutboxMessage(exchange=EVENT_EXCHANGE, routing_key="", body=wire.encode(event))


def webhook_message(event_type: str, customer: Customer, record: Customer | Accesskey) -> Any:
    """The request to webhook-manager for a change (B.3 #20), or None if no webhook_uri."""
    if not customer.webhook_uri:
        return None
    data = {
        "customer_id": customer.id,
        "data_type": JSON,
        "data": {"type": event_type, "data": public(record)},
    }
    request = Request(
        uri="/v1/webhooks",
        method="POST",
        publisher=PUBLISHER,
        data_type=JSON,
        data=msgspec.Raw(gojson.encode(data)),
    )
    return OutboxMessage(exchange="", routing_key=WEBHOOK_QUEUE, body=wire.encode(request))


def public(record: Customer | Accesskey) -> Customer | Accesskey:
    """The record as it may leave the service: an access key never carries its token."""
    if isinstance(record, Accesskey) and record.token:
        return msgspec.structs.replace(record, token="")
    return record


def customer_outbox(event_type: str) -> Callable[[Customer], Sequence[OutboxMessage]]:
    """The ``outbox`` function for a customer change."""

    def build(customer: Customer) -> Sequence[OutboxMessage]:
        hook = webhook_message(event_type, customer, customer)
        return [event_message(event_type, customer)] + ([hook] if hook else [])

    return build


def key_outbox(
    event_type: str, customer: Customer | None
) -> Callable[[Accesskey], Sequence[OutboxMessage]]:
    """The ``outbox`` function for an access-key change of ``customer`` (None: no webhook)."""

    def build(key: Accesskey) -> Sequence[OutboxMessage]:
        hook = webhook_message(event_type, customer, key) if customer else None
        return [event_message(event_type, key)] + ([hook] if hook else [])

    return build
