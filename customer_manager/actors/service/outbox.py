"""The outbox messages that every write stores in the same transaction as the change
(docs/events.md#outbox-relay): the Event on the event exchange and, when the customer has a
``webhook_uri``, a webhook request to webhook-manager. A relay publishes them later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from customer_manager.messages import gojson, wire
from customer_manager.messages.queues import EVENT_EXCHANGE, WEBHOOK_QUEUE
from customer_manager.messages.records import Accesskey, Customer
from customer_manager.messages.wire import JSON, PUBLISHER, Event, Request
from customer_manager.storage.base import OutboxMessage


def event_message(event_type: str, record: Customer | Accesskey) -> OutboxMessage:
    """The Event (docs/events.md#event-envelope) for a change, on the fanout event exchange."""
    event = Event(type=event_type, data=msgspec.Raw(gojson.encode(public(record))))
    return OutboxMessage(exchange=EVENT_EXCHANGE, routing_key="", body=wire.encode(event))


def webhook_message(event_type: str, customer: Customer, record: Customer | Accesskey) -> Any:
    """The request to webhook-manager for a change (docs/events.md#webhooks), or None if no
    webhook_uri."""
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
