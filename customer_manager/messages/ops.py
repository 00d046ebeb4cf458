"""The messages between the AMQP edge, the router and the worker pools.

``Handle`` carries one request into the actor system together with the callback that takes
its reply; ``Op`` is what the router hands a worker pool after matching the route
(docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Literal

import msgspec

from customer_manager.messages.records import NIL
from customer_manager.messages.wire import Request, Response

OpName = Literal[
    "list",
    "create",
    "get",
    "update",
    "delete",
    "update_billing_account",
    "is_valid_balance",
    "signup",
    "email_verify",
    "cleanup_unverified",
    "cleanup_frozen_expired",
    "freeze",
    "recover",
    "freeze_and_delete",
    "metadata",
    "used",
    "rotate",
    "cleanup_rotated",
    "expiring",
    "notify_expiring",
    "set_identity_verification",  # no route: the CLI only (docs/lifecycle.md#identity-verification)
]
Reply = Callable[[Response], None]


class Handle(msgspec.Struct, frozen=True, kw_only=True):
    """Route ``request``; ``reply`` gets the Response exactly once, from any thread.
    ``correlation_id``: the caller's (AMQP property), "" if it sent none."""

    request: Request
    reply: Reply
    correlation_id: str = ""


class HandleMany(msgspec.Struct, frozen=True):
    """Several ``Handle``s in one message (the consumer's deliveries of one pump slice)."""

    items: list[Handle]


class Op(msgspec.Struct, frozen=True, kw_only=True):
    """One operation for a worker pool: ``id`` is the path id (Nil if none/unparsable);
    ``request_key`` identifies a write request across redeliveries and re-sends ("" for a
    read, or when the caller sent no correlation id)."""

    name: OpName
    request: Request
    id: uuid.UUID = NIL
    request_key: str = ""


WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})


def request_key(correlation_id: str, request: Request) -> str:
    """What identifies a write request (issue 18 #3): the same correlation id, method, uri
    and body, whether the broker redelivered it or the caller re-sent it. "" if the request
    is no write or came without a correlation id."""
    if not correlation_id or request.method not in WRITE_METHODS:
        return ""
    digest = hashlib.sha256()
    for part in (correlation_id, request.method, request.uri):
        digest.update(part.encode() + b"\0")
    digest.update(bytes(request.data))
    return digest.hexdigest()
