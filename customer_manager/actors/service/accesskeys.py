"""AccessKeyActor pool: the access-key operations (SPEC A §5.10–5.13 as changed by B.3).

Threading contract as for CustomerActor: one ``Op`` at a time, exactly one Response or
``Forward``, only timed asks. The plain token exists only in the create reply (B.3 #9);
storage, cache, events and webhooks get the record without it.

The api-manager auth path (list with a ``token`` filter and no page token) is served from
the cache: ``customer_accesskey_token:<hash>`` → key id, then the cached record (one Redis
script), with the other filters evaluated by the cache actor that read it. Unknown hashes
go to storage (by hash only) and are cached.
"""

from __future__ import annotations

import logging
import secrets
import uuid

import msgspec

from customer_manager.actors.kit.flow import Forward
from customer_manager.actors.service.deps import (
    Deps,
    Handler,
    Worker,
    accesskey_not_found,
    body,
    write_then_reply,
    written,
)
from customer_manager.actors.service.outbox import key_outbox
from customer_manager.actors.storage import StorageCall
from customer_manager.errors import NotFound
from customer_manager.messages.bodies import AccesskeyCreateBody, AccesskeyUpdateBody
from customer_manager.messages.ops import Op
from customer_manager.messages.query import Filters, ListQuery, hash_token, parse_list
from customer_manager.messages.records import SENTINEL, Accesskey, Customer, after, now
from customer_manager.messages.wire import Response, ok
from customer_manager.storage.base import Deleted

log = logging.getLogger(__name__)

TOKEN_PREFIX_LEN = 11


def new_token() -> str:
    """``vb_`` + 32 URL-safe characters (24 random bytes) from ``secrets`` (B.3 #9)."""
    return "vb_" + secrets.token_urlsafe(24)


def owner(deps: Deps, key: Accesskey) -> Customer | None:
    """The key's customer (for its webhook), None if there is none."""
    try:
        return deps.customer(key.customer_id)
    except NotFound:
        return None


def create(deps: Deps, op: Op) -> Response:
    fields = body(op.request.data, AccesskeyCreateBody)
    customer = deps.customer(fields.customer_id)
    if customer.deleted:
        raise NotFound(f"customer {customer.id} not found", "CUSTOMER_NOT_FOUND")
    token, created = new_token(), now()
    key = Accesskey(
        id=uuid.uuid4(),
        customer_id=customer.id,
        name=fields.name,
        detail=fields.detail,
        token_prefix=token[:TOKEN_PREFIX_LEN],
        tm_expire=after(fields.expire, created) if fields.expire > 0 else SENTINEL,
        tm_create=created,
        tm_update=SENTINEL,
        tm_delete=SENTINEL,
    )
    token_hash = hash_token(token)
    stored: Accesskey = deps.store.call(
        "accesskey_insert", key, token_hash, key_outbox("accesskey_created", customer)
    )
    deps.cache.put(stored)
    deps.cache.put_token(token_hash, stored.id)
    deps.flush()
    return ok(msgspec.structs.replace(stored, token=token))


def get(deps: Deps, op: Op) -> Forward:
    return deps.with_accesskey(op.id, ok)


def list_(deps: Deps, op: Op) -> Response | Forward:
    moment = now()
    query = parse_list("accesskey", op.request.uri, bytes(op.request.data), moment)
    if query.filters.token_hash is not None and not query.paged:
        return _by_token(deps, query, query.filters.token_hash, moment)
    rows: list[Accesskey] = deps.store.call("accesskey_list", query)
    return ok(rows)


def _by_token(deps: Deps, query: ListQuery, token_hash: str, moment: str) -> Forward:
    """The auth path: at most one key has this hash (unique index). The cache actor answers
    a hit itself (work.Forward); a miss lists by hash in storage and fills the cache."""

    def found(key: Accesskey) -> Response:
        return ok([key] if matches(key, query.filters, moment) else [])

    def cached(key: Accesskey | None) -> Response | Forward:
        if key is not None:
            return found(key)
        only_hash = ListQuery(
            page_size=1, before=query.before, filters=Filters(token_hash=token_hash)
        )
        call = StorageCall(method="accesskey_list", args=(only_hash,))
        return Forward(deps.store.pool, call, listed, deps.store.timeout)

    def listed(rows: list[Accesskey] | None, error: BaseException | None) -> Response | Forward:
        if error is not None:
            raise error
        if not rows:
            return ok([])
        key = rows[0]
        filled = deps.cache.forward_put(key, lambda: found(key), populate=True)
        return deps.cache.forward_put_token(token_hash, key.id, lambda: filled)

    return deps.cache.forward_accesskey_by_token(token_hash, cached)


def matches(key: Accesskey, f: Filters, moment: str) -> bool:
    """The storage filters (except the hash, already matched) on one record."""
    for name in ("id", "customer_id", "name"):
        wanted = getattr(f, name)
        if wanted is not None and getattr(key, name) != wanted:
            return False
    if f.deleted is not None and (not key.tm_delete or (key.tm_delete < SENTINEL) != f.deleted):
        return False
    return f.expired is None or (bool(key.tm_expire) and (key.tm_expire <= moment) == f.expired)


def update(deps: Deps, op: Op) -> Forward:
    fields = body(op.request.data, AccesskeyUpdateBody)
    customer = owner(deps, deps.accesskey(op.id))
    changes = {"name": fields.name, "detail": fields.detail}
    return write_then_reply(
        deps,
        "accesskey_update",
        op.id,
        changes,
        now(),
        key_outbox("accesskey_updated", customer),
        not_found=lambda: accesskey_not_found(op.id),
        request_key=op.request_key,
    )


def delete(deps: Deps, op: Op) -> Response:
    key = deps.accesskey(op.id)
    if key.deleted:
        return ok(key)
    outbox = key_outbox("accesskey_deleted", owner(deps, key))
    try:
        result: Deleted = deps.store.call(
            "accesskey_delete", op.id, now(), outbox, request_key=op.request_key
        )
    except NotFound:
        raise accesskey_not_found(op.id) from None
    return written(deps, result.record)  # deleted already: the cache may not know it yet


HANDLERS: dict[str, Handler] = {
    "create": create,
    "get": get,
    "list": list_,
    "update": update,
    "delete": delete,
}


class AccessKeyActor(Worker):
    """A pool member serving access-key ``Op``s (see module doc)."""

    handlers = HANDLERS
