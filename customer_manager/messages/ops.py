"""The messages between the AMQP edge, the router and the worker pools.

``Handle`` carries one request into the actor system together with the callback that takes
its reply; ``Op`` is what the router hands a worker pool after matching the route
(docs/architecture.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Literal

import msgspec

from customer_manager.messages.records import NIL
from customer_manager.messages.wire import Request, Response

OpName = Literal[
    "list", "create", "get", "update", "delete", "update_billing_account", "is_valid_balance"
]
Reply = Callable[[Response], None]


class Handle(msgspec.Struct, frozen=True, kw_only=True):
    """Route ``request``; ``reply`` gets the Response exactly once, from any thread."""

    request: Request
    reply: Reply


class HandleMany(msgspec.Struct, frozen=True):
    """Several ``Handle``s in one message (the consumer's deliveries of one pump slice)."""

    items: list[Handle]


class Op(msgspec.Struct, frozen=True, kw_only=True):
    """One operation for a worker pool: ``id`` is the path id (Nil if none/unparsable)."""

    name: OpName
    request: Request
    id: uuid.UUID = NIL
