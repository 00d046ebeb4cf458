"""AccessKeyActor pool: the access-key operations (docs/api.md#access-key-list to
docs/api.md#access-key-delete).

Threading contract as for CustomerActor: one ``Op`` at a time, exactly one Response or
``Flow``, no waiting. The plain token exists only in the create reply;
storage, cache, events and webhooks get the record without it.

The api-manager auth path (list with a ``token`` filter and no page token) is served from
the cache: ``customer_accesskey_token:<hash>`` → key id, then the cached record (one Redis
script), with the other filters evaluated by the cache actor that read it. Unknown hashes
go to storage (by hash only) and are cached.
"""

from __future__ import annotations

import logging

import msgspec

from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.service import expiring, keyuse, rotation
from customer_manager.actors.service.deps import Deps, Worker, body, handlers
from customer_manager.actors.service.keyuse import mark_used
from customer_manager.actors.service.newkey import new_key, writable
from customer_manager.actors.service.outbox import key_outbox
from customer_manager.actors.service.rotation import end_grace
from customer_manager.messages.bodies import AccesskeyCreateBody, AccesskeyUpdateBody
from customer_manager.messages.ops import Op
from customer_manager.messages.query import Filters, ListQuery, hash_token, parse_list
from customer_manager.messages.records import SENTINEL, Accesskey, Customer, now
from customer_manager.messages.wire import Response, ok
from customer_manager.storage.base import Deleted, Storage

log = logging.getLogger(__name__)


def create(deps: Deps, op: Op) -> Flow[Response]:
    fields = body(op.request.data, AccesskeyCreateBody)

    def insert(customer: Customer) -> Flow[Response]:
        writable(customer)
        key, token = new_key(customer.id, fields.name, fields.detail, fields.expire, now())
        outbox = key_outbox("accesskey_created", customer)
        # Storage keeps the hash (and the plain token only in a takeover's expand phase).
        plain = msgspec.structs.replace(key, token=token)
        stored = deps.write(Storage.accesskey_insert, plain, hash_token(token), outbox)
        return stored.then(lambda row: shown(row, token))

    def shown(key: Accesskey, token: str) -> Flow[Response]:
        return (
            deps.cache.put_token(hash_token(token), key.id)
            .then(lambda _: deps.saved(key))
            .then(lambda _: ok(msgspec.structs.replace(key, token=token)))  # the only time
        )

    return deps.customer(fields.customer_id).then(insert)


def get(deps: Deps, op: Op) -> Flow[Response]:
    return deps.accesskey(op.id).then(ok)


def list_(deps: Deps, op: Op) -> Flow[Response]:
    moment = now()
    query = parse_list("accesskey", op.request.uri, bytes(op.request.data), moment)
    if query.filters.token_hash is not None and not query.paged:
        return _by_token(deps, query, query.filters.token_hash, moment)
    return (
        deps.storage.run(Storage.accesskey_list, query)
        .tap(lambda rows: _used(deps, query, rows, moment))
        .then(ok)
    )


def _used(deps: Deps, query: ListQuery, rows: list[Accesskey], moment: str) -> None:
    """A list by token that found exactly one live key is a use of it (keyuse.py); the old
    key of a rotation past its grace is not live, even before it is deleted."""
    if query.filters.token_hash is None or len(rows) != 1:
        return
    key = rows[0]
    if not key.deleted and not key.grace_over(moment):
        mark_used(deps, key)


def _by_token(deps: Deps, query: ListQuery, token_hash: str, moment: str) -> Flow[Response]:
    """The auth path: at most one key has this hash (unique index). The cache actor answers
    a hit itself; a miss lists by hash in storage and fills the cache."""

    def answer(key: Accesskey | None) -> Response | Flow[Response]:
        if key is not None and not key.deleted and key.grace_over(moment):
            return end_grace(deps, key, moment).then(answer)  # refused from now on
        found = [key] if key is not None and matches(key, query.filters, moment) else []
        _used(deps, query, found, moment)
        return ok(found)

    def from_storage() -> Flow[Response]:
        only_hash = ListQuery(
            page_size=1,
            before=query.before,
            filters=Filters(token_hash=token_hash, token=query.filters.token),
        )
        return deps.storage.run(Storage.accesskey_list, only_hash).then(remember)

    def remember(rows: list[Accesskey]) -> Response | Flow[Response]:
        if not rows:
            return ok([])
        key = rows[0]
        return (
            deps.cache.put_token(token_hash, key.id)
            .then(lambda _: deps.cache.put(key, populate=True))
            .then(lambda _: answer(key))
        )

    # An entry without the rotation fields (another writer's) cannot enforce a grace period.
    return deps.cache.accesskey_by_token(token_hash).then(
        lambda key: answer(key) if key is not None and key.complete else from_storage()
    )


def matches(key: Accesskey, f: Filters, moment: str) -> bool:
    """The storage filters (except the hash, already matched) on one record."""
    for name in ("id", "customer_id", "name"):
        wanted = getattr(f, name)
        if wanted is not None and getattr(key, name) != wanted:
            return False
    if f.deleted is not None and (not key.tm_delete or (key.tm_delete < SENTINEL) != f.deleted):
        return False
    return f.expired is None or (bool(key.tm_expire) and (key.tm_expire <= moment) == f.expired)


def update(deps: Deps, op: Op) -> Flow[Response]:
    fields = body(op.request.data, AccesskeyUpdateBody)
    changes = {"name": fields.name, "detail": fields.detail}

    def store(customer: Customer | None) -> Flow[Accesskey]:
        outbox = key_outbox("accesskey_updated", customer)
        key = op.request_key
        return deps.write(Storage.accesskey_update, op.id, changes, now(), outbox, request_key=key)

    return deps.accesskey(op.id).then(deps.owner).then(store).then(deps.saved).then(ok)


def delete(deps: Deps, op: Op) -> Flow[Response]:
    def remove(key: Accesskey) -> Response | Flow[Response]:
        if key.deleted:
            return ok(key)
        return deps.owner(key).then(store).then(deps.deleted)

    def store(customer: Customer | None) -> Flow[Deleted]:
        outbox = key_outbox("accesskey_deleted", customer)
        key = op.request_key
        return deps.write(Storage.accesskey_delete, op.id, now(), outbox, request_key=key)

    return deps.accesskey(op.id).then(remove)


HANDLERS = {
    **handlers(create, get, list_, update, delete),
    **keyuse.HANDLERS,
    **rotation.HANDLERS,
    **expiring.HANDLERS,
}


class AccessKeyActor(Worker):
    """A pool member serving access-key ``Op``s (see module doc)."""

    handlers = HANDLERS
