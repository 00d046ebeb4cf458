"""Prometheus metrics (docs/configuration.md#metrics-and-health), defined once at module level.

prometheus-client metrics are thread-safe; any thread may observe or increment them.

On a request's path, updates are deferred: ``later(update, *args)`` queues them (a deque
append) and ``settle()`` applies them, called by the consumer once the replies of a pump slice
are written, and before every scrape. At 1 in flight every µs of Python in any thread before
the reply is written is on the request's path (bench/RESULTS.md, sixth session); the ~13 µs
of metric updates of a GET (locks, label lookups) now run after it. Nothing is lost without a
consumer (CLI, tests): the queue settles itself every ``LATER_MAX`` updates.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info

from customer_manager import __version__

BUCKETS_MS = (50, 100, 500, 1000, 3000)

build = Info("customer_manager_build", "The running version (one series per process, value 1).")
build.info({"version": __version__})

ready = Gauge(
    "customer_manager_ready",
    "Readiness check results (1 passing, 0 failing), as /readyz last ran them; a scrape runs"
    " them again when no probe did in the last few seconds.",
    ["check"],
)

receive_request_process_time = Histogram(
    "customer_manager_receive_request_process_time",
    "Handling time of each RPC request, in milliseconds (whole ms, as the Go service).",
    ["type", "method"],
    buckets=BUCKETS_MS,
)

requests_total = Counter(
    "customer_manager_requests_total",
    "RPC requests handled, by route type, method and reply status code.",
    ["type", "method", "status"],
)

requests_in_flight = Gauge(
    "customer_manager_requests_in_flight", "Requests received, not yet answered"
)

requests_redelivered_total = Counter(
    "customer_manager_requests_redelivered_total",
    "Requests received with the AMQP redelivered flag (left unacked by a lost consumer)",
)

amqp_reconnects_total = Counter(
    "customer_manager_amqp_reconnects_total",
    "AMQP connections re-established after a loss",
    ["connection"],
)

request_process_time = Histogram(
    "customer_manager_request_process_time",
    "Outgoing RPC round-trip time in milliseconds",
    ["target", "resource", "method"],
    buckets=BUCKETS_MS,
)

outbox_relayed_total = Counter(
    "customer_manager_outbox_relayed_total", "Outbox entries (events, webhooks) published"
)

dead_letters_total = Counter(
    "customer_manager_dead_letters_total",
    "Messages addressed to a dead actor (a pool member that died before handling them).",
    ["pool"],
)

actor_restarts_total = Counter(
    "customer_manager_actor_restarts_total",
    "Pool members started by the supervisor to replace a crashed member.",
    ["pool"],
)

error_replies_total = Counter(
    "customer_manager_error_replies_total",
    "Error replies sent, by status code and VoIPbin error reason.",
    ["status", "reason"],
)

cache_reads_total = Counter(
    "customer_manager_cache_reads_total",
    "Cache reads by operation and result: hit, or miss (absent, unreadable or failed).",
    ["operation", "result"],
)

cache_errors_total = Counter(
    "customer_manager_cache_errors_total",
    "Cache backend errors that were swallowed (the read behaved as a miss).",
    ["operation"],
)

# Event publication (the Go names and labels; measured at the outbox relay).
notify_process_time = Histogram(
    "customer_manager_notify_process_time",
    "Event publish time (broker confirm included), in milliseconds.",
    ["type"],
    buckets=BUCKETS_MS,
)

notify_total = Counter(
    "customer_manager_notify_total",
    "Events published, by event type.",
    ["type"],
)

event_publish_total = Counter(
    "customer_manager_event_publish_total",
    "Events published, by event type (registered but never incremented by the Go service).",
    ["event_type"],
)

outbox_backlog = Gauge(
    "customer_manager_outbox_backlog",
    "Outbox entries (events and webhooks) not yet published, as last counted by the relay.",
)


class Since:
    """Seconds since a moment another thread records (``since``, Unix time; None: 0)."""

    def __init__(self) -> None:
        self.since: float | None = None

    def __call__(self) -> float:
        since = self.since
        return 0.0 if since is None else max(0.0, time.time() - since)


outbox_oldest = Since()
outbox_oldest_age_seconds = Gauge(
    "customer_manager_outbox_oldest_age_seconds",
    "Age of the oldest outbox entry not yet published (0 when none), read at scrape time"
    " from the creation time the relay last found.",
)
outbox_oldest_age_seconds.set_function(outbox_oldest)

cpu_home = Gauge(
    "customer_manager_cpu",
    "The CPU the daemon's threads are bound to (CPU_PLACEMENT=one); -1: not bound.",
)
cpu_home.set(-1)

cpu_moves_total = Counter(
    "customer_manager_cpu_moves_total",
    "Moves of the daemon's threads to a less busy CPU (CPU_PLACEMENT=one).",
)

pool_queued = Gauge(
    "customer_manager_pool_queued",
    "Works waiting for a free pool member (the pools' mailbox depth), read at scrape time.",
    ["pool"],
)

pool_in_flight = Gauge(
    "customer_manager_pool_in_flight",
    "Works submitted to a pool and not yet completed, read at scrape time.",
    ["pool"],
)

storage_batch_size = Histogram(
    "customer_manager_storage_batch_size",
    "Customer creates committed together in one transaction (batches of two or more).",
    buckets=(2, 4, 8, 16, 32),
)


LATER_MAX = 10_000
_LATER: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()


def later(update: Callable[..., Any], *args: Any) -> None:
    """Run ``update(*args)`` at the next ``settle()`` (any thread; see the module doc)."""
    _LATER.append((update, args))
    if len(_LATER) > LATER_MAX:
        settle()


def settle() -> None:
    """Apply every deferred update (any thread; each runs once)."""
    pop = _LATER.popleft
    while _LATER:
        try:
            update, args = pop()
        except IndexError:  # another thread took the last one
            return
        try:
            update(*args)
        except Exception:  # a metric update never fails the thread that settles
            logging.getLogger(__name__).exception("deferred metric update failed")


_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}
_MAX_CHILDREN = 4096  # label values can come from requests (the method): never unbounded


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per label set on hot paths (``labels()``
    validates, builds a tuple and takes a lock on every call)."""
    key = (id(metric), labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = metric.labels(*labels)
        if len(_CHILDREN) < _MAX_CHILDREN:
            _CHILDREN[key] = found
    return found


# The upstream lifecycle metrics (docs/lifecycle.md#metrics): same names, labels and values.
_MS_BUCKETS = (50, 100, 500, 1000, 3000)
db_operation_duration = Histogram(
    "customer_manager_db_operation_duration",
    "Storage operation duration in milliseconds, by operation and entity.",
    ["operation", "entity"],
    buckets=_MS_BUCKETS,
)
db_operation_total = Counter(
    "customer_manager_db_operation_total",
    "Storage operations by operation, entity and status (success, error).",
    ["operation", "entity", "status"],
)
cache_operation_total = Counter(
    "customer_manager_cache_operation_total",
    "Record cache reads by operation (get), entity (customer, accesskey) and result.",
    ["operation", "entity", "result"],
)
rpc_call_duration = Histogram(
    "customer_manager_rpc_call_duration",
    "Outgoing RPC duration in milliseconds, by service and method.",
    ["service", "method"],
    buckets=_MS_BUCKETS,
)
rpc_call_total = Counter(
    "customer_manager_rpc_call_total",
    "Outgoing RPCs by service, method and status (success, error).",
    ["service", "method", "status"],
)
signup_total = Counter(
    "customer_manager_signup_total",
    "Signups by status (validation_failed, error, success).",
    ["status"],
)
email_verification_total = Counter(
    "customer_manager_email_verification_total",
    "Email verifications by status (invalid_token, error, already_verified, success).",
    ["status"],
)
accesskey_last_used_write_total = Counter(
    "customer_manager_accesskey_last_used_write_total",
    "Access-key last-use writes by result: written (the UPDATE ran), throttled (another use"
    " in the interval wrote it, in this process or another), error (skipped: Redis or the"
    " database failed).",
    ["result"],
)
