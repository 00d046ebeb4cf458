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
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import msgspec

from customer_manager import metrics
from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.kit.members import PoolMember
from customer_manager.actors.kit.pool import Outcome, Pool
from customer_manager.errors import Internal, OutcomeUnknown, ServiceError, Unavailable
from customer_manager.storage.base import CustomerInsert, Storage

log = logging.getLogger(__name__)

STORAGE_TIMEOUT = 10.0
BATCH_LIMIT = 32  # creates in one transaction at most
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

    # Creates queued on one member run together (``Pool.run``): one multi-row INSERT per
    # table and one COMMIT (``Storage.customer_inserts``); if that fails, each runs alone.
    batch_limit = BATCH_LIMIT

    def batches(self, message: Any) -> bool:
        return isinstance(message, StorageCall) and message.name == "customer_insert"

    def handle_batch(self, messages: list[Any]) -> list[Outcome]:
        assert self._storage is not None
        inserts = [
            CustomerInsert(customer=m.args[0], outbox=m.args[1], **m.options) for m in messages
        ]
        started = time.monotonic()
        try:
            created = self._storage.customer_inserts(inserts)
        except OutcomeUnknown as exc:
            for message in messages:
                _observe(message, started, "error")
            return [(None, OutcomeUnknown(str(exc), [i.customer])) for i in inserts]
        except Exception as exc:  # each alone gets its own answer (a duplicate, a repeat)
            log.debug("a batch of %d creates failed (%s); each runs alone", len(inserts), exc)
            return self._each_alone(messages)
        for message in messages:
            _observe(message, started, "success")
        metrics.storage_batch_size.observe(len(messages))
        return [(customer, None) for customer in created]

    def _each_alone(self, messages: list[Any]) -> list[Outcome]:
        """Each message alone, in order; once one finds the database unavailable, the rest
        get that answer without trying (a batch of 32 would wait 32 connect timeouts)."""
        outcomes: list[Outcome] = []
        down: Unavailable | None = None
        for message in messages:
            outcome = (None, down) if down is not None else _outcome(self.handle, message)
            if isinstance(outcome[1], Unavailable) and down is None:
                down = Unavailable(str(outcome[1]))  # not its OutcomeUnknown: the rest never ran
            outcomes.append(outcome)
        return outcomes

    def handle(self, message: Any) -> Any:
        assert isinstance(message, StorageCall) and self._storage is not None
        started, status = time.monotonic(), "error"
        try:
            # the protocol's method names the implementation's (mypy checked the arguments)
            result = getattr(self._storage, message.name)(*message.args, **message.options)
            status = "success"
            return result
        except ServiceError as exc:
            status = "success" if exc.status == "NOT_FOUND" else "error"
            raise
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.error("storage %s failed: %s", message.name, type(exc).__name__)
            raise Unavailable(f"database unavailable ({message.name})") from None
        except Exception:
            log.exception("storage %s failed", message.name)
            raise Internal(f"database error ({message.name})") from None
        finally:
            _observe(message, started, status)


def _outcome(handle: Callable[[Any], Any], message: Any) -> Outcome:
    try:
        return handle(message), None
    except Exception as exc:
        return None, exc


# docs/lifecycle.md#metrics labels: the storage method -> (operation, entity); unnamed ones are not
# measured.
_OPERATIONS = {
    "customer_insert": ("create", "customer"),
    "customer_signup": ("create", "customer"),
    "customer_get": ("get", "customer"),
    "customer_list": ("list", "customer"),
    "customer_update": ("update", "customer"),
    "customer_delete": ("delete", "customer"),
    "customer_due": ("list", "customer"),
    "accesskey_insert": ("create", "accesskey"),
    "accesskey_get": ("get", "accesskey"),
    "accesskey_list": ("list", "accesskey"),
    "accesskey_update": ("update", "accesskey"),
    "accesskey_delete": ("delete", "accesskey"),
}


def _observe(message: StorageCall, started: float, status: str) -> None:
    if message.name == "customer_transition":
        steps = message.args[1]
        operation, entity = (steps[-1].operation if steps else "update"), "customer"
    elif message.name == "customer_due" and message.args[0] == "frozen_expired":
        operation, entity = "list_frozen_expired", "customer"
    elif message.name in _OPERATIONS:
        operation, entity = _OPERATIONS[message.name]
    else:
        return
    elapsed_ms = (time.monotonic() - started) * 1000
    metrics.child(metrics.db_operation_duration, operation, entity).observe(elapsed_ms)
    metrics.child(metrics.db_operation_total, operation, entity, status).inc()


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
