"""Builders shared by the storage contract tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import msgspec
from records_kit import customer_record

from customer_manager.messages.query import Filters, ListQuery
from customer_manager.messages.records import (
    SENTINEL,
    Accesskey,
    Customer,
    after,
    now,
)
from customer_manager.storage.base import OutboxMessage, Storage

Factory = Callable[[], Storage]


def customer(email: str = "alice@example.com", **fields: Any) -> Customer:
    return customer_record(email, **fields)


def accesskey(customer_id: uuid.UUID, **fields: Any) -> Accesskey:
    base: dict[str, Any] = {
        "id": uuid.uuid4(),
        "customer_id": customer_id,
        "name": "key",
        "token": "vb_secret_should_not_be_stored",
        "token_prefix": "vb_secret_s",
        "tm_expire": SENTINEL,
        "tm_create": now(),
        "tm_update": SENTINEL,
        "tm_delete": SENTINEL,
    }
    return Accesskey(**{**base, **fields})


class Recorder:
    """An outbox function that records what it was given and emits one message per call."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.seen: list[Any] = []

    def __call__(self, record: Any) -> list[OutboxMessage]:
        self.seen.append(record)
        body = msgspec.json.encode({"type": self.kind, "id": str(record.id)})
        return [OutboxMessage(exchange="bin-manager.customer-manager.event", body=body)]


def none(record: Any) -> list[OutboxMessage]:
    return []


def page(size: int = 100, **filters: Any) -> ListQuery:
    return ListQuery(page_size=size, before=after(60), filters=Filters(**filters))


def token_hash(n: int) -> str:
    return f"{n:064x}"
