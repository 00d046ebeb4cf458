"""A new access key and its token (docs/api.md#access-key-record), for create, signup and
rotate; and the rule on whose keys may be made."""

from __future__ import annotations

import secrets
import uuid

from customer_manager.actors.service.deps import customer_not_found
from customer_manager.errors import FailedPrecondition
from customer_manager.messages.records import NIL, SENTINEL, Accesskey, Customer, after

TOKEN_PREFIX_LEN = 11


def new_token() -> str:
    """``vb_`` + 32 URL-safe characters (24 random bytes) from ``secrets``
    (docs/api.md#access-key-record)."""
    return "vb_" + secrets.token_urlsafe(24)


def new_key(
    customer_id: uuid.UUID, name: str, detail: str, expire: int, created: str
) -> tuple[Accesskey, str]:
    """A key created at ``created`` (expiring ``expire`` seconds later; ≤ 0: never) and its
    plain token, which the record does not carry."""
    token = new_token()
    key = Accesskey(
        id=uuid.uuid4(),
        customer_id=customer_id,
        name=name,
        detail=detail,
        token_prefix=token[:TOKEN_PREFIX_LEN],
        tm_expire=after(expire, created) if expire > 0 else SENTINEL,
        tm_last_used=SENTINEL,
        rotated_from=NIL,
        rotated_to=NIL,
        tm_grace_end=SENTINEL,
        tm_create=created,
        tm_update=SENTINEL,
        tm_delete=SENTINEL,
    )
    return key, token


def writable(customer: Customer) -> Customer:
    """The customer, if keys may be made for it: not deleted or expired (404), not frozen
    (docs/lifecycle.md#statuses-and-transitions: active or initial only)."""
    if customer.deleted:  # deleted or expired (F6)
        raise customer_not_found(customer.id)
    if customer.status == "frozen":
        raise FailedPrecondition(f"customer {customer.id} is frozen", "CUSTOMER_FROZEN")
    return customer
