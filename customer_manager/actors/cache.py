"""CacheActor pool and the ``Records`` client workers use (SPEC A §8).

Members share one thread-safe Cache backend (storage/cache_backend.py); the pool only bounds and
isolates the blocking I/O. ``Records`` asks the pool with a short mandatory timeout, or
(``forward_*``) hands it the read together with what to do with the result (work.Forward);
every failure (timeout, backend error, undecodable value) behaves as a miss or a skipped
write, so the cache can never fail a request.

Keys: ``customer:<id>`` and ``customer_accesskey:<id>`` hold the records in Go JSON (shared
with Go instances, read tolerantly); ``customer_accesskey_token:<sha256>`` maps a token
hash to its key id (the api-manager auth path). A key's hash never changes, so that mapping
never goes stale; the record it points to is refreshed on every write.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import msgspec

from customer_manager import metrics
from customer_manager.actors.kit.flow import Forward
from customer_manager.actors.kit.members import PoolMember
from customer_manager.actors.kit.pool import Pool
from customer_manager.messages import gojson
from customer_manager.messages.records import Accesskey, Customer, version
from customer_manager.storage.cache_backend import TTL_SECONDS, Cache

log = logging.getLogger(__name__)

CACHE_TIMEOUT = 1.0
R = TypeVar("R", Customer, Accesskey)


class CacheOp(msgspec.Struct, frozen=True, kw_only=True):
    """One backend call: ``get`` returns bytes or None; ``set``/``delete`` return None;
    ``get_key_of_token`` reads ``key`` (a token key) and then the access key it names, in
    one message (the auth path). ``version``/``fill``: see ``Cache.set``."""

    op: Literal["get", "set", "delete", "get_key_of_token"]
    key: str
    value: bytes = b""
    ttl: int = TTL_SECONDS
    version: str | None = None
    fill: bool = False


class CacheActor(PoolMember):
    """A pool member calling the shared backend in its own thread."""

    def __init__(self, pool: Pool, backend: Cache) -> None:
        super().__init__(pool)
        self._backend = backend

    def handle(self, message: Any) -> Any:
        assert isinstance(message, CacheOp)
        if message.op == "get":
            return self._backend.get(message.key)
        if message.op == "get_key_of_token":
            return self._backend.get_indirect(message.key, ACCESSKEY_PREFIX)
        if message.op == "set":
            self._backend.set(
                message.key, message.value, message.ttl, version=message.version, fill=message.fill
            )
        else:
            self._backend.delete(message.key)
        return None


def start_cache_pool(backend: Cache, size: int) -> Pool:
    """Start ``size`` CacheActors sharing ``backend``."""
    return Pool("cache", size, lambda pool: CacheActor.start(pool, backend)).start()


def customer_key(customer_id: uuid.UUID) -> str:
    return f"customer:{customer_id}"


ACCESSKEY_PREFIX = "customer_accesskey:"


def accesskey_key(key_id: uuid.UUID) -> str:
    return f"{ACCESSKEY_PREFIX}{key_id}"


def token_key(token_hash: str) -> str:
    return f"customer_accesskey_token:{token_hash}"


def record_key(record: Customer | Accesskey) -> str:
    return customer_key(record.id) if isinstance(record, Customer) else accesskey_key(record.id)


def _put(record: Customer | Accesskey, *, fill: bool) -> CacheOp:
    """The versioned SET of ``record`` (``Cache.set``)."""
    value, ver = gojson.encode(record), version(record.tm_update)
    return CacheOp(op="set", key=record_key(record), value=value, version=ver, fill=fill)


class Records:
    """Typed cache access for workers. Never raises; any failure is a miss."""

    def __init__(self, pool: Pool, timeout: float = CACHE_TIMEOUT) -> None:
        self.pool, self.timeout = pool, timeout

    def put(self, record: Customer | Accesskey) -> None:
        """Refresh the record's entry unless the cache holds a newer version of it (writes
        and read fills may land in any order: the newest version stays)."""
        self._call(_put(record, fill=False))

    def forget(self, records: Iterable[Customer | Accesskey]) -> None:
        """Drop the entries of ``records`` (a write whose outcome is unknown: the next read
        fills them from the database)."""
        for record in records:
            self._call(CacheOp(op="delete", key=record_key(record)))

    def put_token(self, token_hash: str, key_id: uuid.UUID) -> None:
        self._call(CacheOp(op="set", key=token_key(token_hash), value=str(key_id).encode()))

    # -- without waiting: the cache actor runs ``then`` (see work.Forward) ---------------------

    def forward_customer(self, customer_id: uuid.UUID, then: Then[Customer]) -> Forward:
        """``then(customer or None)`` in the cache actor's thread after the read."""
        return self._forward(CacheOp(op="get", key=customer_key(customer_id)), Customer, then)

    def forward_accesskey(self, key_id: uuid.UUID, then: Then[Accesskey]) -> Forward:
        return self._forward(
            CacheOp(op="get", key=accesskey_key(key_id)), Accesskey, _tokenless(then)
        )

    def forward_accesskey_by_token(self, token_hash: str, then: Then[Accesskey]) -> Forward:
        op = CacheOp(op="get_key_of_token", key=token_key(token_hash))
        return self._forward(op, Accesskey, _tokenless(then))

    def forward_put(
        self, record: Customer | Accesskey, then: Callable[[], Any], *, populate: bool = False
    ) -> Forward:
        """``put`` and then ``then()`` (a failed write is logged and skipped, as in ``put``);
        ``populate``: a read filling the cache after a miss (skipped while Redis is down)."""
        return self._forward_set(_put(record, fill=populate), then)

    def forward_put_token(
        self, token_hash: str, key_id: uuid.UUID, then: Callable[[], Any]
    ) -> Forward:
        """``put_token`` and then ``then()``."""
        op = CacheOp(op="set", key=token_key(token_hash), value=str(key_id).encode())
        return self._forward_set(op, then)

    # -- internals --------------------------------------------------------------------------

    def _forward_set(self, op: CacheOp, then: Callable[[], Any]) -> Forward:
        def written(_value: Any, error: BaseException | None) -> Any:
            if error is not None:
                self._failed(op, error)
            return then()

        return Forward(self.pool, op, written, self.timeout)

    def _forward(self, op: CacheOp, cls: type[R], then: Then[R]) -> Forward:
        def read(raw: Any, error: BaseException | None) -> Any:
            if error is not None:
                self._failed(op, error)
            return then(_decode(raw, cls))

        return Forward(self.pool, op, read, self.timeout)

    def _call(self, op: CacheOp) -> Any:
        try:
            return self.pool.ask(op, timeout=self.timeout)
        except Exception as exc:
            self._failed(op, exc)
        return None

    @staticmethod
    def _failed(op: CacheOp, exc: BaseException) -> None:
        metrics.cache_errors_total.labels(op.op).inc()
        log.warning("cache %s failed: %s", op.op, type(exc).__name__)


Then = Callable[[R | None], Any]


def _decode(raw: Any, cls: type[R]) -> R | None:
    """A cached record, or None (absent, or not readable: counted, treated as a miss)."""
    if not isinstance(raw, bytes):
        return None
    try:
        return msgspec.json.decode(raw, type=cls)
    except (msgspec.DecodeError, msgspec.ValidationError):
        metrics.cache_errors_total.labels("decode").inc()
        return None


def _tokenless(then: Then[Accesskey]) -> Then[Accesskey]:
    return lambda key: then(_without_token(key) if key is not None else None)


def _without_token(key: Accesskey) -> Accesskey:
    """A Go instance caches the plain token (Part A): keep only its prefix (B.3 #9)."""
    if not key.token:
        return key
    return msgspec.structs.replace(key, token="", token_prefix=key.token_prefix or key.token[:11])
