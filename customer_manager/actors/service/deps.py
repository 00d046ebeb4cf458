"""What the customer and access-key handlers share: their dependencies and the worker actor.

A handler is ``handler(deps, op) -> Response | Flow[Response]``: it validates the request in
the worker's thread, then returns the steps that follow as a ``Flow`` (kit/flow.py) written
in the order they happen. It never waits for another actor. A handler (or a step) reports a
failure by raising a ``ServiceError``; the router turns every error into the reply, in one
place (router.py). ``Deps`` members are safe to share between threads: they only build Flows
and send messages.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, NoReturn, ParamSpec, TypeVar, cast

import msgspec
import pykka

from customer_manager.actors.cache import CacheClient, Unreadable
from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.kit.members import PoolMember
from customer_manager.actors.kit.pool import Pool
from customer_manager.actors.kit.throttle import Throttle
from customer_manager.actors.publisher import RelayRequest, RpcClient
from customer_manager.actors.storage import Method, StorageClient
from customer_manager.config import Settings
from customer_manager.errors import InvalidArgument, NotFound, OutcomeUnknown
from customer_manager.messages.bodies import BodyError, decode_body
from customer_manager.messages.ops import Op
from customer_manager.messages.records import Accesskey, Customer
from customer_manager.messages.wire import Request, Response, ok
from customer_manager.storage.base import Deleted, Storage

log = logging.getLogger(__name__)
R = TypeVar("R", Customer, Accesskey)
T = TypeVar("T")
P = ParamSpec("P")
B = TypeVar("B", bound=msgspec.Struct)


class Deps:
    """What a handler uses (see the module doc)."""

    def __init__(
        self,
        storage: StorageClient,
        cache: CacheClient,
        publisher: pykka.ActorRef[Any],
        settings: Settings,
    ) -> None:
        self.storage, self.cache, self.settings = storage, cache, settings
        # the per-process stage of the last-use throttle (keyuse.py)
        self.used = Throttle(settings.accesskey_last_used_interval)
        self._rpc = RpcClient(publisher, settings.rpc_timeout)
        self._relay = RelayRequest(publisher)

    # -- reads: cache first, storage on a miss (the entry is filled then) --------------------

    def customer(self, customer_id: uuid.UUID) -> Flow[Customer]:
        """The customer, deleted ones too. 404 CUSTOMER_NOT_FOUND."""

        def found(hit: Customer | Unreadable | None) -> Customer | Flow[Customer]:
            if isinstance(hit, Customer):
                return hit
            # an unreadable entry (a seed Go one) is overwritten, not kept by SET NX
            return self._fill(Storage.customer_get, customer_id, populate=hit is None)

        return self.cache.customer(customer_id).then(found)

    def accesskey(self, key_id: uuid.UUID) -> Flow[Accesskey]:
        """The access key, deleted and expired ones too. 404 ACCESSKEY_NOT_FOUND."""
        return self.cache.accesskey(key_id).then(
            lambda hit: hit if hit is not None else self._fill(Storage.accesskey_get, key_id)
        )

    def owner(self, key: Accesskey) -> Flow[Customer | None]:
        """The key's customer (for its webhook), None if there is none."""
        return self.customer(key.customer_id).recover(NotFound, lambda _: None)

    def _fill(
        self, read: Callable[[Storage, uuid.UUID], R], record_id: uuid.UUID, populate: bool = True
    ) -> Flow[R]:
        return self.storage.run(read, record_id).tap(
            lambda row: self.cache.put(row, populate=populate)
        )

    # -- writes -------------------------------------------------------------------------------

    def write(self, method: Method[P, T], *args: P.args, **kwargs: P.kwargs) -> Flow[T]:
        """A storage write. If its outcome is unknown (the connection was lost at COMMIT),
        the cache entries of the records it wrote are dropped before the error (503) goes
        on, so none of them outlives what was stored."""
        recovered = self.storage.run(method, *args, **kwargs).recover(OutcomeUnknown, self._forget)
        return cast(Flow[T], recovered)  # the fallback's Flow only raises

    def _forget(self, error: OutcomeUnknown) -> Flow[NoReturn]:
        def fail(_: None) -> NoReturn:
            raise error

        return self.cache.forget(error.records).then(fail)

    # -- after a write ------------------------------------------------------------------------

    def saved(self, record: R) -> Flow[R]:
        """Refresh the record's cache entry, then have the outbox relayed."""
        return self.cache.put(record).then(lambda _: self._relayed(record))

    def deleted(self, result: Deleted) -> Flow[Response]:
        """The reply to a soft delete: the record; the cache refreshed (with the keys a
        customer delete revoked, also for a customer deleted before) even if nothing changed
        (a retry after an unknown outcome: the cache may say it is live); the outbox relayed
        only if something changed."""
        record = result.record
        refreshed = self._refresh([*result.keys, record])
        if not result.changed and not result.keys:
            return refreshed.then(lambda _: ok(record))
        return refreshed.then(lambda _: ok(self._relayed(record)))

    def _refresh(self, records: list[Customer | Accesskey]) -> Flow[None]:
        first, *rest = records
        put = self.cache.put(first)
        return put.then(lambda _: self._refresh(rest)) if rest else put

    def _relayed(self, record: T) -> T:
        try:
            self._relay.send()  # coalesced and fire-and-forget: never fails the request
        except pykka.ActorDeadError:
            log.warning("publisher is gone; the outbox is relayed when it is back")
        return record

    # -- other services -------------------------------------------------------------------------

    def call(self, queue: str, request: Request) -> Flow[Response]:
        """An outgoing RPC (docs/api.md#outgoing-calls); Unavailable if the peer does not
        answer in time."""
        return self._rpc.request(queue, request)


def body(raw: bytes | msgspec.Raw, cls: type[B]) -> B:
    """Decode a request body; 400 INVALID_BODY if it does not fit."""
    try:
        return decode_body(bytes(raw), cls)
    except BodyError as exc:
        raise InvalidArgument(str(exc), "INVALID_BODY") from None


def customer_not_found(customer_id: uuid.UUID) -> NotFound:
    return NotFound(f"customer {customer_id} not found", "CUSTOMER_NOT_FOUND")


Handler = Callable[[Deps, Op], Response | Flow[Response]]


def handlers(*functions: Handler) -> dict[str, Handler]:
    """A worker's handler table: each function under its name (``list_`` serves ``list``)."""
    return {function.__name__.rstrip("_"): function for function in functions}


class Worker(PoolMember):
    """A pool member that serves ``Op``s with its class's ``handlers`` table."""

    handlers: ClassVar[dict[str, Handler]] = {}

    def __init__(self, pool: Pool, deps: Deps) -> None:
        super().__init__(pool)
        self._deps = deps

    def handle(self, message: Any) -> Response | Flow[Response]:
        assert isinstance(message, Op)
        return self.handlers[message.name](self._deps, message)
