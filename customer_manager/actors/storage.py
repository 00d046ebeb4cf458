"""StorageActor pool: each member owns one Storage (one connection), made in ``setup``.

Workers (and the publisher's outbox relay) call storage through ``Store``, which asks the
pool with a mandatory timeout. Errors: our ServiceErrors pass through unchanged; a driver
error is logged once and becomes Unavailable (connection trouble) or Internal (anything else).
A member is never killed by a failing call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec

from customer_manager.actors.kit.members import PoolMember
from customer_manager.actors.kit.pool import Pool
from customer_manager.errors import Internal, ServiceError, Unavailable
from customer_manager.storage.base import Storage

log = logging.getLogger(__name__)

STORAGE_TIMEOUT = 10.0
StorageFactory = Callable[[], Storage]


class StorageCall(msgspec.Struct, frozen=True, kw_only=True):
    """Call ``Storage.<method>(*args)`` on a member's storage (a write with
    ``request_key=`` when one is given)."""

    method: str
    args: tuple[Any, ...] = ()
    request_key: str = ""


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
            method = getattr(self._storage, message.method)
            if message.request_key:
                return method(*message.args, request_key=message.request_key)
            return method(*message.args)
        except ServiceError:
            raise
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.error("storage %s failed: %s", message.method, type(exc).__name__)
            raise Unavailable(f"database unavailable ({message.method})") from None
        except Exception:
            log.exception("storage %s failed", message.method)
            raise Internal(f"database error ({message.method})") from None


def start_storage_pool(factory: StorageFactory, size: int) -> Pool:
    """Start a pool of ``size`` StorageActors, each with its own ``factory()`` Storage."""
    return Pool("storage", size, lambda pool: StorageActor.start(pool, factory)).start()


class Store:
    """Blocking storage calls for workers (any thread but a storage member's)."""

    def __init__(self, pool: Pool, timeout: float = STORAGE_TIMEOUT) -> None:
        self.pool, self.timeout = pool, timeout

    def call(self, method: str, *args: Any, request_key: str = "") -> Any:
        """Run ``Storage.<method>(*args)`` in the pool; Unavailable if it takes too long."""
        call = StorageCall(method=method, args=args, request_key=request_key)
        return self.pool.ask(call, timeout=self.timeout)
