"""What the customer and access-key workers share: their dependencies and the serve loop.

Threading contract: a Worker handles one ``Op`` at a time in its own thread and returns
exactly one Response, or a ``work.Forward`` that finishes the request in another pool (a cache
hit answered by the cache actor, a write completed by storage and cache) without waiting for
it here; errors become error replies, so a worker never dies of a request. ``Deps`` members
are safe to share between threads (they only send messages to actors).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import msgspec
import pykka

from customer_manager.actors.cache import Records
from customer_manager.actors.kit.flow import Forward, wait
from customer_manager.actors.kit.members import PoolMember
from customer_manager.actors.kit.pool import Pool
from customer_manager.actors.publisher import RelayRequest, rpc
from customer_manager.actors.storage import StorageCall, Store
from customer_manager.config import Settings
from customer_manager.errors import (
    InvalidArgument,
    NotFound,
    OutcomeUnknown,
    ServiceError,
    error_response,
    internal_response,
)
from customer_manager.messages.bodies import BodyError, decode_body
from customer_manager.messages.ops import Op
from customer_manager.messages.records import Accesskey, Customer
from customer_manager.messages.wire import Request, Response, ok

log = logging.getLogger(__name__)
R = TypeVar("R", Customer, Accesskey)

T = Any


class Deps:
    """What a worker uses; every member is safe to share between threads."""

    def __init__(self, store: Store, cache: Records, publisher: Any, settings: Settings) -> None:
        self.store, self.cache, self.publisher, self.settings = store, cache, publisher, settings
        self._relay = RelayRequest(publisher.actor_ref)
        self._read_timeout = cache.timeout + store.timeout  # a cache miss reads storage

    def flush(self) -> None:
        """Ask the publisher to relay the outbox now; never waits, never fails the request."""
        try:
            self._relay.send()
        except pykka.ActorDeadError:
            log.warning("publisher is gone; the outbox is relayed when it is back")

    def customer(self, customer_id: uuid.UUID) -> Customer:
        """Cache-first read (Part A §8), waiting for it; deleted customers too.
        404 CUSTOMER_NOT_FOUND."""
        found: Customer = wait(self.with_customer(customer_id, _itself), self._read_timeout, "read")
        return found

    def accesskey(self, key_id: uuid.UUID) -> Accesskey:
        """Cache-first read, waiting for it; deleted and expired keys too.
        404 ACCESSKEY_NOT_FOUND."""
        found: Accesskey = wait(self.with_accesskey(key_id, _itself), self._read_timeout, "read")
        return found

    def with_customer(self, customer_id: uuid.UUID, then: Callable[[Customer], Any]) -> Forward:
        """The cache-first read of ``customer`` without waiting for it: ``then(customer)``
        runs in the thread that has the record (a cache actor on a hit; on a miss, storage
        reads it and the cache is filled first). 404 CUSTOMER_NOT_FOUND."""
        return self._with(
            self.cache.forward_customer, "customer_get", customer_id, customer_not_found, then
        )

    def with_accesskey(self, key_id: uuid.UUID, then: Callable[[Accesskey], Any]) -> Forward:
        """``accesskey`` without waiting, as ``with_customer``. 404 ACCESSKEY_NOT_FOUND."""
        return self._with(
            self.cache.forward_accesskey, "accesskey_get", key_id, accesskey_not_found, then
        )

    def _with(
        self,
        cached: Callable[[uuid.UUID, Callable[[Any], Any]], Forward],
        method: str,
        record_id: uuid.UUID,
        not_found: Callable[[uuid.UUID], NotFound],
        then: Callable[[Any], Any],
    ) -> Forward:
        def read(hit: Any) -> Any:
            if hit is not None:
                return then(hit)
            call = StorageCall(method=method, args=(record_id,))
            return Forward(self.store.pool, call, stored, self.store.timeout)

        def stored(row: Any, error: BaseException | None) -> Any:
            if isinstance(error, NotFound):
                raise not_found(record_id) from None
            if error is not None:
                raise error
            return self.cache.forward_put(row, lambda: then(row), populate=True)

        return cached(record_id, read)

    def call(self, queue: str, request: Request) -> Response:
        """An outgoing RPC (Part A §5.8); Unavailable if the peer does not answer."""
        return rpc(self.publisher, queue, request, self.settings.rpc_timeout)


def _itself(record: Any) -> Any:
    return record


def body(raw: bytes | msgspec.Raw, cls: type[T]) -> T:
    """Decode a request body; 400 INVALID_BODY if it does not fit."""
    try:
        return decode_body(bytes(raw), cls)
    except BodyError as exc:
        raise InvalidArgument(str(exc), "INVALID_BODY") from None


def customer_not_found(customer_id: uuid.UUID) -> NotFound:
    return NotFound(f"customer {customer_id} not found", "CUSTOMER_NOT_FOUND")


def accesskey_not_found(key_id: uuid.UUID) -> NotFound:
    return NotFound(f"accesskey {key_id} not found", "ACCESSKEY_NOT_FOUND")


def written(deps: Deps, record: Any) -> Response:
    """After a write: refresh the cache, relay the outbox, reply with the record."""
    deps.cache.put(record)
    return _relayed(deps, record)


def write_then_reply(
    deps: Deps,
    method: str,
    *args: Any,
    not_found: Callable[[], NotFound] | None = None,
    request_key: str = "",
) -> Forward:
    """``Storage.<method>(*args)`` (a write returning the record) in the storage pool, and
    then, without coming back to this worker (work.Forward): refresh the cache, relay the
    outbox and reply with the record. ``not_found`` replaces a storage NotFound;
    ``request_key`` (Op.request_key): a repeat gets the first run's record."""

    def stored(record: Any, error: BaseException | None) -> Forward:
        if isinstance(error, NotFound) and not_found is not None:
            raise not_found() from None
        if error is not None:
            forget_unknown(deps, error)
            raise error
        return deps.cache.forward_put(record, lambda: _relayed(deps, record))

    call = StorageCall(method=method, args=args, request_key=request_key)
    return Forward(deps.store.pool, call, stored, deps.store.timeout)


def forget_unknown(deps: Deps, error: BaseException) -> None:
    """After a write whose outcome is unknown (connection lost at COMMIT), drop the cache
    entries of the records it wrote: a read then fills them with whatever was stored."""
    if isinstance(error, OutcomeUnknown):
        deps.cache.forget(error.records)


def _relayed(deps: Deps, record: Any) -> Response:
    deps.flush()
    return ok(record)


Handler = Callable[[Deps, Op], Response | Forward]


def serve(handlers: dict[str, Handler], deps: Deps, op: Op) -> Response | Forward:
    """Run a handler; ServiceError → its reply, anything else → logged once, 500."""
    try:
        return handlers[op.name](deps, op)
    except ServiceError as exc:
        forget_unknown(deps, exc)
        return error_response(exc)
    except Exception:
        log.exception("%s %s failed", op.request.method, op.name)
        return internal_response()


class Worker(PoolMember):
    """A pool member that serves ``Op``s with its class's ``handlers`` table."""

    handlers: ClassVar[dict[str, Handler]] = {}

    def __init__(self, pool: Pool, deps: Deps) -> None:
        super().__init__(pool)
        self._deps = deps

    def handle(self, message: Any) -> Response | Forward:
        assert isinstance(message, Op)
        return serve(self.handlers, self._deps, message)
