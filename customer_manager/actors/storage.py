"""StorageActor pool: each member owns one Storage (one connection), made in ``setup``.

Workers call storage through ``StorageClient.run``, which returns a ``Flow`` (kit/flow.py);
the publisher's outbox relay and the CLI use ``StorageClient.call``, which asks the pool with a
mandatory timeout. Both are type-checked against the ``Storage`` protocol: the method is
named as ``Storage.customer_insert`` and its arguments are checked by mypy. Errors: our
ServiceErrors pass through unchanged; a driver error is logged once and becomes Unavailable
(connection trouble) or Internal (anything else).
A member is never killed by a failing call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import msgspec

from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.kit.members import PoolMember
from customer_manager.actors.kit.pool import Pool
from customer_manager.errors import Internal, ServiceError, Unavailable
from customer_manager.storage.base import Storage

log = logging.getLogger(__name__)

STORAGE_TIMEOUT = 10.0
StorageFactory = Callable[[], Storage]
P = ParamSpec("P")
T = TypeVar("T")
Method = Callable[Concatenate[Storage, P], T]


class StorageCall(msgspec.Struct, frozen=True, kw_only=True):
    """Call ``method`` (a ``Storage`` protocol method) with ``args`` and keyword ``options``
    (a write's ``request_key``) on a member's storage. Built only by ``StorageClient``, which
    type-checks the arguments."""

    method: Callable[..., Any]
    args: tuple[Any, ...] = ()
    options: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.method.__name__


class StorageActor(PoolMember):
    """A pool member owning one Storage. ``setup`` (actor thread) opens it."""

    def __init__(self, pool: Pool, factory: StorageFactory) -> None:
        super().__init__(pool)
        self._factory = factory
        self._storage: Storage | None = None

    def setup(self) -> None:
        self._storage = self._factory()

    def teardown(self) -> None:
        if self._storage is not None:
            try:
                self._storage.close()
            except Exception:
                log.exception("closing storage failed")

    def handle(self, message: Any) -> Any:
        assert isinstance(message, StorageCall) and self._storage is not None
        try:
            # the protocol's method names the implementation's (mypy checked the arguments)
            return getattr(self._storage, message.name)(*message.args, **message.options)
        except ServiceError:
            raise
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.error("storage %s failed: %s", message.name, type(exc).__name__)
            raise Unavailable(f"database unavailable ({message.name})") from None
        except Exception:
            log.exception("storage %s failed", message.name)
            raise Internal(f"database error ({message.name})") from None


def start_storage_pool(factory: StorageFactory, size: int) -> Pool:
    """Start a pool of ``size`` StorageActors, each with its own ``factory()`` Storage."""
    return Pool("storage", size, lambda pool: StorageActor.start(pool, factory)).start()


class StorageClient:
    """Typed storage calls on the storage pool, safe to share between threads."""

    def __init__(self, pool: Pool, timeout: float = STORAGE_TIMEOUT) -> None:
        self.pool, self.timeout = pool, timeout

    def run(self, method: Method[P, T], *args: P.args, **kwargs: P.kwargs) -> Flow[T]:
        """``method(*args, **kwargs)`` in a storage actor, as the first hop of a Flow."""
        call = StorageCall(method=method, args=args, options=dict(kwargs))
        return Flow(self.pool, call, self.timeout)

    def call(self, method: Method[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``method(*args, **kwargs)`` in a storage actor, waiting for it (not from a Flow
        step); Unavailable if it takes longer than the timeout."""
        call = StorageCall(method=method, args=args, options=dict(kwargs))
        result: T = self.pool.ask(call, timeout=self.timeout)
        return result
