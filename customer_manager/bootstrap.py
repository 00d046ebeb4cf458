"""The one composition root: builds every actor from Settings (docs/architecture.md#rooms).

``bootstrap`` starts, in dependency order: storage pool, cache pool, publisher, worker pools,
router. Nothing here reads the environment or runs migrations on its own: ``main.py`` and
the CLI decide (``oneshot.ensure_schema``).

Threading: ``bootstrap`` and ``System.stop`` are called from one controlling thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pykka

from customer_manager.actors.cache import CacheClient, start_cache_pool
from customer_manager.actors.kit.pool import Pool
from customer_manager.actors.publisher import NullPublisher
from customer_manager.actors.service.accesskeys import AccessKeyActor
from customer_manager.actors.service.deps import Deps
from customer_manager.actors.service.router import RouterActor
from customer_manager.actors.service.workers import CustomerActor
from customer_manager.actors.storage import StorageClient, StorageFactory, start_storage_pool
from customer_manager.config import Settings
from customer_manager.messages import codec
from customer_manager.storage.base import Storage
from customer_manager.storage.cache_backend import Cache, LocalCache, RedisCache

log = logging.getLogger(__name__)

PublisherFactory = Callable[[StorageClient], "pykka.ActorRef[Any]"]


class System:
    """The running actor system. ``router`` takes ``Handle`` messages (router.py);
    ``storage`` is the StorageClient of the storage pool; ``publisher`` the publisher actor."""

    def __init__(
        self,
        *,
        router: pykka.ActorRef[Any],
        publisher: pykka.ActorRef[Any],
        storage: StorageClient,
        cache: CacheClient,
        backend: Cache,
        workers: list[Pool],
    ) -> None:
        self.router, self.publisher, self.storage, self.cache = router, publisher, storage, cache
        self.backend, self.workers = backend, workers

    def migrate(self) -> int:
        """Apply pending migrations through a storage actor; returns the version in force."""
        version: int = self.storage.call(Storage.migrate)
        return version

    def stop(self, timeout: float = 10.0) -> None:
        """Stop router and workers first, then publisher, cache and storage."""
        _stop_ref(self.router, timeout)
        for pool in self.workers:
            pool.stop(timeout)
        _stop_ref(self.publisher, timeout)
        self.cache.pool.stop(timeout)
        self.storage.pool.stop(timeout)
        try:
            self.backend.close()
        except Exception:
            log.exception("closing the cache failed")


def _stop_ref(ref: pykka.ActorRef[Any], timeout: float) -> None:
    try:
        ref.stop(block=True, timeout=timeout)
    except pykka.Timeout:
        log.warning("%s did not stop within %g s", ref, timeout)


def default_cache(settings: Settings, *, flush_at_start: bool = False) -> Cache:
    """Redis when ``redis_address`` is set, else the in-process cache
    (docs/storage.md#in-process-cache). ``flush_at_start``: see RedisCache."""
    if settings.redis_address:
        return RedisCache(
            settings.redis_address,
            settings.redis_password,
            settings.redis_database,
            flush_at_start=flush_at_start,
        )
    return LocalCache()


def _default_storage(settings: Settings) -> StorageFactory:
    from customer_manager.storage import open_storage

    return lambda: open_storage(settings)


def bootstrap(
    settings: Settings,
    *,
    storage_factory: StorageFactory | None = None,
    cache: Cache | None = None,
    publisher_factory: PublisherFactory | None = None,
) -> System:
    """Build and start the system. ``storage_factory()`` makes one Storage per storage
    actor (default ``open_storage(settings)``); ``publisher_factory(store)`` starts the
    publisher actor (default NullPublisher)."""
    codec.use(settings.wire_profile)  # one profile per process (docs/profiles.md)
    backend = cache if cache is not None else default_cache(settings)
    store = StorageClient(
        start_storage_pool(storage_factory or _default_storage(settings), settings.storage_workers)
    )
    records = CacheClient(start_cache_pool(backend, settings.cache_workers))
    publisher = publisher_factory(store) if publisher_factory else NullPublisher.start()
    deps = Deps(store, records, publisher, settings)
    customers = Pool(
        "customer", settings.customer_workers, lambda pool: CustomerActor.start(pool, deps)
    ).start()
    accesskeys = Pool(
        "accesskey", settings.accesskey_workers, lambda pool: AccessKeyActor.start(pool, deps)
    ).start()
    router = RouterActor.start(customers, accesskeys)
    return System(
        router=router,
        publisher=publisher,
        storage=store,
        cache=records,
        backend=backend,
        workers=[customers, accesskeys],
    )
