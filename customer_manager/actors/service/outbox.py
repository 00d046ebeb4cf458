"""The outbox messages that every write stores in the same transaction as the change
(docs/events.md#outbox-relay): the Event on the event exchange and, when the customer has a
``webhook_uri``, a webhook request to webhook-manager. A relay publishes them later.

Events carry the internal record (docs/lifecycle.md#customer-record, with ``webhook_secret``);
webhooks carry the public
record (docs/lifecycle.md#customer-record: no secret, no terms fields); no message ever carries an
access-key token.
``customer_created`` adds ``headless`` (docs/lifecycle.md#customer-record). Deferred outgoing calls
(docs/lifecycle.md#outgoing-requests) are outbox
entries too (``deferred_call``), sent by the relay after the reply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from customer_manager.messages import codec, wire
from customer_manager.messages.queues import DEFERRED_CALL, EVENT_EXCHANGE, WEBHOOK_QUEUE
from customer_manager.messages.records import (
    Accesskey,
    Customer,
    PublicAccesskey,
    PublicCustomer,
)
from customer_manager.messages.wire import JSON, Event, Request
from customer_manager.storage.base import OutboxMessage

_PUBLIC = frozenset(PublicCustomer.__struct_fields__)
_PUBLIC_KEY = frozenset(PublicAccesskey.__struct_fields__)


def event_message(
    event_type: str, record: Customer | Accesskey, *, headless: bool | None = None
) -> OutboxMessage:
    """The Event (docs/events.md#event-envelope) for a change, on the fanout event exchange;
    ``headless`` is
    appended to a customer for ``customer_created`` (docs/lifecycle.md#customer-record)."""
    data = codec.active().encode(without_token(record))
    if headless is not None:
        data = data[:-1] + (b',"headless":true}' if headless else b',"headless":false}')
    event = Event(type=event_type, data=msgspec.Raw(data))
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
    request = wire.json_request("/v1/webhooks", "POST", data)
    return OutboxMessage(exchange="", routing_key=WEBHOOK_QUEUE, body=wire.encode(request))


def without_token(record: Customer | Accesskey) -> Customer | Accesskey:
    """The record as events and the cache hold it: an access key never carries its token."""
    if isinstance(record, Accesskey) and record.token:
        return msgspec.structs.replace(record, token="")
    return record


def public(record: Customer | Accesskey) -> PublicCustomer | PublicAccesskey:
    """The record as a webhook shows it (docs/lifecycle.md#customer-record)."""
    fields = msgspec.structs.asdict(record)
    if isinstance(record, Customer):
        return PublicCustomer(**{k: v for k, v in fields.items() if k in _PUBLIC})
    return PublicAccesskey(**{k: v for k, v in fields.items() if k in _PUBLIC_KEY})


def customer_outbox(
    event_type: str, *, headless: bool | None = None
) -> Callable[[Customer], Sequence[OutboxMessage]]:
    """The ``outbox`` function for a customer change."""

    def build(customer: Customer) -> Sequence[OutboxMessage]:
        hook = webhook_message(event_type, customer, customer)
        event = event_message(event_type, customer, headless=headless)
        return [event] + ([hook] if hook else [])

    return build


class DeferredCall(msgspec.Struct, frozen=True, kw_only=True):
    """An outgoing RPC sent after the reply (docs/lifecycle.md#outgoing-requests): ``request`` to
    ``routing_key`` of the
    entry, waiting ``timeout`` seconds for each attempt, retried until ``until``."""

    timeout: float
    until: str
    method: (
        str  # the rpc_call_* metric label (docs/lifecycle.md#metrics): email_send, password_forgot
    )
    request: Request


def deferred_call(
    queue: str, request: Request, timeout: float, until: str, method: str
) -> OutboxMessage:
    call = DeferredCall(timeout=timeout, until=until, method=method, request=request)
    return OutboxMessage(exchange=DEFERRED_CALL, routing_key=queue, body=msgspec.json.encode(call))


def key_outbox(
    event_type: str, customer: Customer | None
) -> Callable[[Accesskey], Sequence[OutboxMessage]]:
    """The ``outbox`` function for an access-key change of ``customer`` (None: no webhook)."""

    def build(key: Accesskey) -> Sequence[OutboxMessage]:
        hook = webhook_message(event_type, customer, key) if customer else None
        return [event_message(event_type, key)] + ([hook] if hook else [])

    return build


def revoked_key_outbox(customer: Customer, key: Accesskey) -> Sequence[OutboxMessage]:
    """``accesskey_deleted`` for a key a lifecycle change revoked (webhook only if the
    customer, as changed, still has a ``webhook_uri``)."""
    return key_outbox("accesskey_deleted", customer)(key)
