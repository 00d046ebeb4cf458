"""Closed-loop load generator: keep exactly N requests in flight for a fixed time.

One ``pika.BlockingConnection`` per generator process; replies come back over direct
reply-to (``amq.rabbitmq.reply-to``) and are matched by correlation id. Each reply's
callback publishes the next request, so the offered load adapts to the server (closed
loop): throughput = completed / window, latency = reply time - publish time.

``Generator`` runs ``run_load`` in a separate, spawned process so the generator does not
share a GIL with the harness (its RSS sampler, the echo server, ...).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import time
from collections import Counter
from typing import Any

import pika

from bench.amqp import DIRECT_REPLY, connect, status_of
from bench.scenarios import Bodies, Seed, body_factory

DRAIN_TIMEOUT = 15.0


@dataclasses.dataclass(frozen=True)
class LoadSpec:
    url: str
    queue: str
    scenario: str  # a bench.scenarios name, or "echo" (the "get" bodies to the echo queue)
    seed: Seed
    inflight: int
    duration: float
    warmup: float = 1.0
    tag: str = ""


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 if empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(q / 100 * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(
    spec: LoadSpec, latencies: list[float], statuses: Counter[int], left: int
) -> dict[str, Any]:
    lat = sorted(latencies)
    ms = 1000.0
    return {
        "scenario": spec.scenario,
        "inflight": spec.inflight,
        "duration_s": spec.duration,
        "completed": len(lat),
        "throughput_rps": round(len(lat) / spec.duration, 1),
        "p50_ms": round(percentile(lat, 50) * ms, 2),
        "p99_ms": round(percentile(lat, 99) * ms, 2),
        "mean_ms": round(sum(lat) / len(lat) * ms, 2) if lat else 0.0,
        "max_ms": round(lat[-1] * ms, 2) if lat else 0.0,
        "non_200": sum(n for code, n in statuses.items() if code != 200),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "unanswered": left,
    }


def run_load(spec: LoadSpec) -> dict[str, Any]:
    """Warm up, then measure for ``spec.duration`` seconds; wait for stragglers at the end."""
    bodies: Bodies = body_factory(
        "get" if spec.scenario == "echo" else spec.scenario, spec.seed, spec.tag
    )
    conn = connect(spec.url, f"cm-bench-load-{spec.scenario}-{spec.inflight}")
    channel = conn.channel()
    pending: dict[str, float] = {}
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    seq = 0
    start = time.perf_counter()
    measure_from = start + spec.warmup
    end = measure_from + spec.duration

    def publish() -> None:
        nonlocal seq
        seq += 1
        cid = str(seq)
        props = pika.BasicProperties(reply_to=DIRECT_REPLY, correlation_id=cid)
        pending[cid] = time.perf_counter()
        channel.basic_publish("", spec.queue, bodies(seq), props)

    def on_reply(_ch: Any, _m: Any, props: pika.BasicProperties, body: bytes) -> None:
        now = time.perf_counter()
        sent = pending.pop(str(props.correlation_id), None)
        if sent is None:
            return
        if sent >= measure_from and now <= end:
            latencies.append(now - sent)
            statuses[status_of(body)] += 1
        if now < end:
            publish()

    channel.basic_consume(DIRECT_REPLY, on_reply, auto_ack=True)
    try:
        for _ in range(spec.inflight):
            publish()
        while time.perf_counter() < end:
            conn.process_data_events(time_limit=0.05)
        drain_until = time.perf_counter() + DRAIN_TIMEOUT
        while pending and time.perf_counter() < drain_until:
            conn.process_data_events(time_limit=0.05)
    finally:
        conn.close()
    return summarise(spec, latencies, statuses, len(pending))


class Generator:
    """One long-lived spawned worker process that runs ``run_load`` specs one at a time."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx)

    def run(self, spec: LoadSpec) -> dict[str, Any]:
        timeout = spec.warmup + spec.duration + DRAIN_TIMEOUT + 30
        return self.pool.submit(run_load, spec).result(timeout=timeout)

    def close(self) -> None:
        """Stop the worker: politely if idle, terminated if still busy after 5 s."""
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
