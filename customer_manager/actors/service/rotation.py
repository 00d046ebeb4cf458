"""Access-key rotation with a grace period (docs/api.md#access-key-rotate): ``rotate``, the
grace enforced on the auth path (``end_grace``) and by the ``cleanup_rotated`` sweep.

Threading contract as for every handler: validate, then Flows, never waiting.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import msgspec

from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.service.deps import Deps, body, handlers
from customer_manager.actors.service.newkey import new_key, writable
from customer_manager.actors.service.outbox import key_outbox
from customer_manager.errors import InvalidArgument
from customer_manager.messages.bodies import MAX_GRACE, AccesskeyRotateBody
from customer_manager.messages.ops import Op
from customer_manager.messages.query import hash_token
from customer_manager.messages.records import Accesskey, Customer, after, now
from customer_manager.messages.wire import Response, ok
from customer_manager.storage.base import OutboxMessage, RotateOutboxFn, Rotation, Storage
from customer_manager.storage.keys_sql import check_rotatable

log = logging.getLogger(__name__)

CLEANUP_BATCH = 1000  # keys per cleanup_rotated run


def rotate(deps: Deps, op: Op) -> Flow[Response]:
    fields = body(bytes(op.request.data) or b"{}", AccesskeyRotateBody)
    if not 0 <= fields.grace <= MAX_GRACE:
        raise InvalidArgument(f"grace must be 0 to {MAX_GRACE} seconds", "INVALID_GRACE")

    def owner(old: Accesskey) -> Flow[dict[str, Accesskey]]:
        check_rotatable(old)  # early; storage checks again under the row lock
        return deps.customer(old.customer_id).then(lambda customer: store(old, customer))

    def store(old: Accesskey, customer: Customer) -> Flow[dict[str, Accesskey]]:
        writable(customer)
        moment = now()
        key, token = new_key(customer.id, old.name, old.detail, fields.expire, moment)
        key = msgspec.structs.replace(key, rotated_from=old.id)
        token_hash = hash_token(token)
        grace_end = after(fields.grace, moment)
        outbox = rotation_outbox(customer)
        rotated = deps.write(
            Storage.accesskey_rotate, old.id, key, token_hash, grace_end, moment, outbox
        )
        return rotated.then(lambda result: cached(result, token_hash, token))

    def cached(result: Rotation, token_hash: str, token: str) -> Flow[dict[str, Accesskey]]:
        new = result.key
        return (
            deps.cache.put_token(token_hash, new.id)
            .then(lambda _: deps.cache.put(new))
            .then(lambda _: deps.saved(result.previous))
            .then(lambda previous: reply(msgspec.structs.replace(new, token=token), previous))
        )

    def reply(new: Accesskey, previous: Accesskey) -> dict[str, Accesskey]:
        """The new key with its token (shown this once) and the old one (a dict: the
        profile's codec writes the records in it)."""
        return {"accesskey": new, "previous": previous}

    return deps.accesskey(op.id).then(owner).then(ok)


def rotation_outbox(customer: Customer) -> RotateOutboxFn:
    """``accesskey_created`` (the new key), ``accesskey_rotated`` (the old one) and, when
    the old key was deleted at once (grace 0), ``accesskey_deleted``; each with its
    webhook."""

    def build(new: Accesskey, previous: Accesskey) -> Sequence[OutboxMessage]:
        messages = [*key_outbox("accesskey_created", customer)(new)]
        messages += key_outbox("accesskey_rotated", customer)(previous)
        if previous.deleted:
            messages += key_outbox("accesskey_deleted", customer)(previous)
        return messages

    return build


def end_grace(deps: Deps, key: Accesskey, moment: str) -> Flow[Accesskey]:
    """The old key of a rotation met after its grace period (the auth path): soft-delete it
    (``accesskey_deleted``) and go on with it as deleted. The refusal does not depend on
    the write: if storage fails, the key is refused anyway."""
    view = msgspec.structs.replace(key, tm_delete=moment, tm_update=moment)

    def delete(customer: Customer | None) -> Flow[Accesskey | None]:
        outbox = key_outbox("accesskey_deleted", customer)
        return deps.storage.run(Storage.accesskey_end_grace, key.id, moment, outbox)

    def settled(gone: Accesskey | None) -> Accesskey | Flow[Accesskey]:
        return deps.saved(gone) if gone is not None else view

    def failed(exc: Exception) -> Accesskey:
        log.warning("grace end of access key %s not stored: %s", key.id, type(exc).__name__)
        return view

    flow = deps.owner(key).then(delete).then(settled)
    return flow.recover(Exception, failed)


def cleanup_rotated(deps: Deps, op: Op) -> Flow[Response]:
    """``POST /v1/accesskeys/cleanup_rotated``: soft-delete the keys whose grace period is
    over (at most CLEANUP_BATCH per run, oldest grace end first); ``{"deleted":n}``. Safe on
    several replicas at once: each key is deleted (and published) once."""
    moment = now()

    def each(rows: list[Accesskey], index: int, count: int) -> Flow[Response]:
        if index == len(rows):
            return Flow.of(ok({"deleted": count}))
        key = rows[index]
        return (
            deps.owner(key)
            .then(lambda customer: _end(deps, key, customer, moment))
            .recover(Exception, lambda exc: _skipped(key.id, exc))
            .then(lambda done: each(rows, index + 1, count + done))
        )

    rows = deps.storage.run(Storage.accesskey_grace_over, moment, CLEANUP_BATCH)
    return rows.then(lambda found: each(found, 0, 0))


def _end(deps: Deps, key: Accesskey, customer: Customer | None, moment: str) -> Flow[int]:
    outbox = key_outbox("accesskey_deleted", customer)
    deleted = deps.write(Storage.accesskey_end_grace, key.id, moment, outbox)
    return deleted.then(lambda gone: 0 if gone is None else deps.saved(gone).then(lambda _: 1))


def _skipped(key_id: uuid.UUID, exc: Exception) -> int:
    log.warning("cleanup_rotated skipped access key %s: %s", key_id, type(exc).__name__)
    return 0


HANDLERS = handlers(rotate, cleanup_rotated)
