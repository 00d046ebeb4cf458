"""Access-key last use (docs/api.md#access-key-last-used): the auth path and
``POST /v1/accesskeys/<id>/used`` mark a key used; at most one ``tm_last_used`` write per key
and interval goes to storage.

The throttle has two stages: a per-process memory (``Deps.used``, a kit ``Throttle``: a
process asks Redis at most once per key and interval, so authentication costs nothing more
in between) and ``SET customer_accesskey_used:<id> 1 NX EX <interval>`` in the shared cache
(one write across all replicas; on the embedded store, the in-process cache, so per
process). The write is a
Flow started as the reply goes out and never awaited: it cannot slow or fail the request,
and if Redis or the database fails it is skipped (counted as ``error``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from customer_manager import metrics
from customer_manager.actors.kit.flow import Flow, deliver
from customer_manager.actors.service.deps import Deps, handlers
from customer_manager.errors import FailedPrecondition
from customer_manager.messages.ops import Op
from customer_manager.messages.records import Accesskey, now
from customer_manager.messages.wire import Response, ok
from customer_manager.storage.base import Storage

log = logging.getLogger(__name__)


def used_key(key_id: uuid.UUID) -> str:
    """The throttle's cache key (docs/storage.md#keys-and-values)."""
    return f"customer_accesskey_used:{key_id}"


def mark_used(deps: Deps, key: Accesskey) -> None:
    """Record a use of ``key`` in the background (see the module doc). Never raises."""
    interval = deps.settings.accesskey_last_used_interval
    if interval <= 0:
        return
    if not deps.used.first(key.id):
        metrics.later(_throttled)  # every auth but one a minute per key: after the reply
        return
    moment = now()

    def write(won: bool) -> Flow[None] | None:
        if not won:
            metrics.child(metrics.accesskey_last_used_write_total, "throttled").inc()
            return None
        return deps.storage.run(Storage.accesskey_touch, key.id, moment).then(refresh)

    def refresh(row: Accesskey | None) -> Flow[None] | None:
        metrics.child(metrics.accesskey_last_used_write_total, "written").inc()
        if row is None:
            return None
        return deps.cache.accesskey(key.id).then(lambda cached: _refreshed(deps, row, cached))

    flow = deps.cache.claim(used_key(key.id), "1", interval, only_if_absent=True).then(write)
    deliver(_finished, flow.recover(Exception, _skipped), None)


def _throttled() -> None:
    metrics.child(metrics.accesskey_last_used_write_total, "throttled").inc()


def _refreshed(deps: Deps, row: Accesskey, cached: Accesskey | None) -> Flow[None] | None:
    """Put the touched row in the cache unless the entry there is another writer's (a Go
    instance's holds the plain token its reads need; a use is no reason to replace it)."""
    if cached is not None and not cached.complete:
        return None
    # a plain SET of this version, not a fill: a fill racing with it may hold the row as read
    # before the write, at the same version (a use leaves tm_update alone)
    return deps.cache.put(row)


def _skipped(exc: Exception) -> None:
    metrics.child(metrics.accesskey_last_used_write_total, "error").inc()
    log.warning("last use of an access key not written: %s", type(exc).__name__)


def _finished(_value: Any, error: BaseException | None) -> None:
    if error is not None:  # _skipped caught every Exception already
        log.error("last-use write failed", exc_info=error)


def used(deps: Deps, op: Op) -> Flow[Response]:
    """``POST /v1/accesskeys/<id>/used``: the key (404; 409 if deleted, or the old key of a
    rotation past its grace), its use recorded."""

    def mark(key: Accesskey) -> Response:
        if key.deleted or key.grace_over(now()):  # past its grace: deleted by the sweep
            raise FailedPrecondition(f"accesskey {key.id} is deleted", "ACCESSKEY_DELETED")
        mark_used(deps, key)
        return ok(key)

    return deps.accesskey(op.id).then(mark)


HANDLERS = handlers(used)
