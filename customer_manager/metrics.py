"""Prometheus metrics (SPEC A §11, DESIGN §7), defined once at module level.

prometheus-client metrics are thread-safe; any thread may observe or increment them.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BUCKETS_MS = (50, 100, 500, 1000, 3000)

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

cache_errors_total = Counter(
    "customer_manager_cache_errors_total",
    "Cache backend errors that were swallowed (the read behaved as a miss).",
    ["operation"],
)
