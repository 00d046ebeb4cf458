"""The two sweeps (docs/lifecycle.md#unverified-sweep, docs/lifecycle.md#frozen-sweep):
bounded per run, oldest first, one guarded transaction per customer, so several replicas can
run the same sweep at once and each customer is changed (and published) once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.service.deps import Deps, handlers
from customer_manager.actors.service.lifecycle import FREEZE_GRACE, anonymize_step
from customer_manager.actors.service.outbox import customer_outbox, revoked_key_outbox
from customer_manager.messages.ops import Op
from customer_manager.messages.records import PROTECTED_IDS, Customer, after, now
from customer_manager.messages.wire import Response, ok
from customer_manager.storage.base import Deleted, Due, Storage, Transition

log = logging.getLogger(__name__)

UNVERIFIED_MAX_AGE = 3600
UNVERIFIED_BATCH = 100
FROZEN_BATCH = 1000  # ours: upstream has no limit


def _sweep(
    deps: Deps,
    due: Due,
    cutoff: str,
    limit: int,
    step: Callable[[Customer, str], Transition],
    key: str,
) -> Flow[Response]:
    def each(rows: list[Customer], index: int, count: int) -> Flow[Response]:
        if index == len(rows):
            return Flow.of(ok({key: count}))
        customer, moment = rows[index], now()
        return (
            deps.storage.run(
                Storage.customer_transition, customer.id, [step(customer, moment)], moment
            )
            .then(lambda result: _settled(deps, result))
            .recover(Exception, lambda exc: _skipped(customer, exc))
            .then(lambda done: each(rows, index + 1, count + done))
        )

    return deps.storage.run(Storage.customer_due, due, cutoff, limit, PROTECTED_IDS).then(
        lambda rows: each(rows, 0, 0)
    )


def _settled(deps: Deps, result: Deleted | None) -> int | Flow[int]:
    if result is None:
        return 0  # another replica (or request) won the row
    refreshed = deps.deleted(result)  # the cache and the relay, as after any write
    return refreshed.then(lambda _: 1) if isinstance(refreshed, Flow) else 1


def _skipped(customer: Customer, exc: Exception) -> int:
    log.warning("sweep skipped customer %s: %s", customer.id, type(exc).__name__)
    return 0


def cleanup_unverified(deps: Deps, op: Op) -> Flow[Response]:
    """docs/lifecycle.md#unverified-sweep (F5): expire sign-ups unverified for an hour; revoke
    their keys; publish
    ``customer_deleted``. The body is ignored."""

    def expire(_customer: Customer, moment: str) -> Transition:
        return Transition(
            changes={"status": "expired", "tm_delete": moment},
            email_verified=False,
            outbox=customer_outbox("customer_deleted"),
            revoke_keys=True,
            key_outbox=revoked_key_outbox,
            operation="delete",
        )

    cutoff = after(-UNVERIFIED_MAX_AGE)
    return _sweep(deps, "unverified", cutoff, UNVERIFIED_BATCH, expire, "expired")


def cleanup_frozen_expired(deps: Deps, op: Op) -> Flow[Response]:
    """docs/lifecycle.md#frozen-sweep: anonymize customers frozen for 30 days, at most FROZEN_BATCH
    per run."""
    cutoff = after(-FREEZE_GRACE)
    return _sweep(
        deps,
        "frozen_expired",
        cutoff,
        FROZEN_BATCH,
        lambda customer, moment: anonymize_step(customer.id, moment),
        "processed",
    )


HANDLERS = handlers(cleanup_unverified, cleanup_frozen_expired)
