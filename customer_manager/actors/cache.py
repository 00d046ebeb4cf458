"""CacheActor pool and the ``CacheClient`` workers use (docs/storage.md#redis-cache).

Members share one thread-safe Cache backend (storage/cache_backend.py); the pool only bounds and
isolates the blocking I/O. Every ``CacheClient`` call is the first hop of a ``Flow``
(kit/flow.py) whose result never is an error: a failure (timeout, backend error, undecodable
value) is counted and behaves as a miss or a skipped write, so the cache can never fail a
request.

Keys: ``customer:<id>`` and ``customer_accesskey:<id>`` hold the records in Go JSON (shared
with Go instances, read tolerantly); ``customer_accesskey_token:<sha256>`` maps a token
hash to its key id (the api-manager auth path). A key's hash never changes, so that mapping
never goes stale; the record it points to is refreshed on every write.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Literal, TypeVar

import msgspec

from customer_manager import metrics
from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.kit.members import PoolMember
from customer_manager.actors.kit.pool import Outcome, Pool
from customer_manager.messages import codec
from customer_manager.messages.records import Accesskey, Customer, version
from customer_manager.storage.cache_backend import TTL_SECONDS, Cache, Lookup, Write

log = logging.getLogger(__name__)

CACHE_TIMEOUT = 1.0
R = TypeVar("R", Customer, Accesskey)
U = TypeVar("U")


class Unreadable:
    """The marker of a cache entry that is there but does not decode."""


UNREADABLE = Unreadable()


class CacheOp(msgspec.Struct, frozen=True, kw_only=True):
    """One backend call: ``get`` returns bytes or None; ``set``/``delete`` return None;
    ``get_key_of_token`` reads ``key`` (a token key) and then the access key it names, in
    one message (the auth path). ``version``/``fill``: see ``Cache.set``; ``only_if_absent``
    (``claim``): SET NX."""

    op: Literal["get", "set", "delete", "get_key_of_token", "read", "claim", "release"]
    key: str
    value: bytes = b""
    ttl: int = TTL_SECONDS
    version: str | None = None
    fill: bool = False
    only_if_absent: bool = False


class CacheActor(PoolMember):
    """A pool member calling the shared backend in its own thread."""

    def __init__(self, pool: Pool, backend: Cache) -> None:
        super().__init__(pool)
        self._backend = backend

    # Record reads queued on one member go to Redis together, in one round trip
    # (``Cache.get_many``; ``Pool.run``), and so do writes (``Cache.set_many``): a batch of
    # creates completes together and puts its records in the cache back to back.
    batch_limit = 32

    def batches(self, message: Any) -> bool:
        return isinstance(message, CacheOp) and (message.op in _LOOKUPS or message.op == "set")

    def handle_batch(self, messages: list[Any]) -> list[Outcome]:
        """The reads with ``get_many``, then the writes with ``set_many`` (a batch that has
        both makes two round trips)."""
        lookups = [Lookup(m.key, _LOOKUPS[m.op]) for m in messages if m.op in _LOOKUPS]
        found = iter(self._backend.get_many(lookups) if lookups else ())
        writes = [
            Write(m.key, m.value, m.ttl, m.version, m.fill) for m in messages if m.op == "set"
        ]
        if writes:
            self._backend.set_many(writes)
        return [(next(found) if m.op in _LOOKUPS else None, None) for m in messages]

    def handle(self, message: Any) -> Any:
        assert isinstance(message, CacheOp)
        if message.op == "get":
            return self._backend.get(message.key)
        if message.op == "get_key_of_token":
            return self._backend.get_indirect(message.key, ACCESSKEY_PREFIX)
        if message.op == "read":
            return self._backend.read(message.key)
        if message.op == "claim":
            return self._backend.claim(
                message.key, message.value, message.ttl, only_if_absent=message.only_if_absent
            )
        if message.op == "release":
            self._backend.release(message.key, message.value)
            return None
        if message.op == "set":
            self._backend.set(
                message.key, message.value, message.ttl, version=message.version, fill=message.fill
            )
        else:
            self._backend.delete(message.key)
        return None


ACCESSKEY_PREFIX = "customer_accesskey:"
# The reads a member batches: op -> the Lookup's prefix ("" for a plain GET).
_LOOKUPS = {"get": "", "get_key_of_token": ACCESSKEY_PREFIX}


def start_cache_pool(backend: Cache, size: int) -> Pool:
    """Start ``size`` CacheActors sharing ``backend``."""
    return Pool("cache", size, lambda pool: CacheActor.start(pool, backend)).start()


def customer_key(customer_id: uuid.UUID) -> str:
    return f"customer:{customer_id}"


def accesskey_key(key_id: uuid.UUID) -> str:
    return f"{ACCESSKEY_PREFIX}{key_id}"


def token_key(token_hash: str) -> str:
    return f"customer_accesskey_token:{token_hash}"


def record_key(record: Customer | Accesskey) -> str:
    return customer_key(record.id) if isinstance(record, Customer) else accesskey_key(record.id)


class CacheClient:
    """Typed cache access for workers; safe to share between threads."""

    def __init__(self, pool: Pool, timeout: float = CACHE_TIMEOUT) -> None:
        self.pool, self.timeout = pool, timeout

    def customer(self, customer_id: uuid.UUID) -> Flow[Customer | Unreadable | None]:
        """The cached customer; None if there is none, UNREADABLE if the entry does not
        decode (a seed Go instance wrote it without ``status``, docs/lifecycle.md#customer-record:
        the record read from storage then replaces it)."""
        return self._read(CacheOp(op="get", key=customer_key(customer_id)), Customer, UNREADABLE)

    def accesskey(self, key_id: uuid.UUID) -> Flow[Accesskey | None]:
        """The cached access key (never with a token), or None."""
        return self._read(CacheOp(op="get", key=accesskey_key(key_id)), Accesskey, None).then(
            _without_token
        )

    def accesskey_by_token(self, token_hash: str) -> Flow[Accesskey | None]:
        """The cached access key whose token has this hash (one backend round trip)."""
        op = CacheOp(op="get_key_of_token", key=token_key(token_hash))
        return self._read(op, Accesskey, None).then(_without_token)

    def put(self, record: Customer | Accesskey, *, populate: bool = False) -> Flow[None]:
        """Refresh the record's entry unless the cache holds a newer version of it (writes
        and read fills land in any order: the newest version stays). ``populate``: a fill
        after a read miss (skipped while Redis is marked down)."""
        value, newest = codec.active().encode(record), version(record.tm_update)
        op = CacheOp(op="set", key=record_key(record), value=value, version=newest, fill=populate)
        return self._write(op)

    def forget(self, records: list[Customer | Accesskey]) -> Flow[None]:
        """Drop the entries of ``records`` (a write whose outcome is unknown: the next read
        fills them from the database)."""
        if not records:
            return Flow.of(None)
        first, *rest = records
        dropped = self._write(CacheOp(op="delete", key=record_key(first)))
        return dropped.then(lambda _: self.forget(rest))

    def put_token(self, token_hash: str, key_id: uuid.UUID) -> Flow[None]:
        """Map a token hash to its key id (the auth path's first lookup)."""
        return self._write(CacheOp(op="set", key=token_key(token_hash), value=str(key_id).encode()))

    # -- tokens and locks (docs/lifecycle.md#redis-keys): failures are errors here, not misses
    # -----------------

    def read(self, key: str) -> Flow[bytes | None]:
        """The value at ``key``; Unavailable if the backend fails."""
        return Flow(self.pool, CacheOp(op="read", key=key), self.timeout)

    def claim(self, key: str, value: str, ttl: int, *, only_if_absent: bool) -> Flow[bool]:
        """SET ``key`` (NX when ``only_if_absent``): True if stored; Unavailable if the
        backend fails."""
        op = CacheOp(
            op="claim", key=key, value=value.encode(), ttl=ttl, only_if_absent=only_if_absent
        )
        return Flow(self.pool, op, self.timeout)

    def drop(self, key: str) -> Flow[None]:
        """DEL ``key`` (a failure is counted and ignored)."""
        return self._write(CacheOp(op="delete", key=key))

    def release(self, key: str, owner: str) -> Flow[None]:
        """DEL ``key`` if it still holds ``owner`` (a failure is ignored: the lock expires)."""
        return self._write(CacheOp(op="release", key=key, value=owner.encode()))

    # -- internals --------------------------------------------------------------------------

    def _read(self, op: CacheOp, cls: type[R], unreadable: U) -> Flow[R | U | None]:
        """The decoded record, None if absent (or the read failed), ``unreadable`` if an
        entry is there but does not decode (counted as a miss)."""

        def decoded(raw: Any, error: BaseException | None) -> R | U | None:
            if error is not None:
                _failed(op, error)
            found = _decode(raw, cls) if error is None else None
            metrics.later(_count_read, op.op, cls, found is not None)
            if found is None and error is None and isinstance(raw, bytes):
                return unreadable
            return found

        return Flow(self.pool, op, self.timeout, decoded)

    def _write(self, op: CacheOp) -> Flow[None]:
        def written(_value: Any, error: BaseException | None) -> None:
            if error is not None:
                _failed(op, error)

        return Flow(self.pool, op, self.timeout, written)


def _count_read(op: str, cls: type[Customer | Accesskey], hit: bool) -> None:
    result = "hit" if hit else "miss"
    metrics.child(metrics.cache_reads_total, op, result).inc()
    entity = cls.__name__.lower()  # customer, accesskey
    metrics.child(metrics.cache_operation_total, "get", entity, result).inc()


def _failed(op: CacheOp, exc: BaseException) -> None:
    metrics.cache_errors_total.labels(op.op).inc()
    log.warning("cache %s failed: %s", op.op, type(exc).__name__)


def _decode(raw: Any, cls: type[R]) -> R | None:
    """A cached record, or None (absent, or not readable: counted, treated as a miss)."""
    if not isinstance(raw, bytes):
        return None
    try:
        return codec.active().decode(raw, cls)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        metrics.cache_errors_total.labels("decode").inc()
        return None


def _without_token(key: Accesskey | None) -> Accesskey | None:
    """A Go instance caches the plain token: keep only its prefix (docs/storage.md#tokens)."""
    if key is None or not key.token:
        return key
    return msgspec.structs.replace(key, token="", token_prefix=key.token_prefix or key.token[:11])
