"""Per-hop timeline of requests at low depth: where each microsecond goes between delivery
and reply.

``python -m bench.hops daemon [customer-manager flags]`` runs the daemon with probes: a
``perf_counter_ns`` stamp, the thread and a label at each hop (the consumer's socket read and
``_on_message``, the router, each pool member taking its work, the Redis and MySQL calls, the
outgoing RPC's publish and reply, the reply callback, the consumer's wake-up, the reply's
``send``). At exit it writes the stamps to ``HOPS_OUT`` (default /tmp/cm-hops.txt)::

    python -m bench.run --scenarios '' --latency 1 --latency-scenarios get,auth \\
        --agent-scenarios '' --results '' \\
        --daemon-cmd "python -m bench.hops daemon --agent_check off --prefetch {prefetch}"
    python -m bench.hops report /tmp/cm-hops.txt

``report`` cuts the stamps into requests (a request starts at the consumer's
``_on_message`` and ends at the consumer's next ``send``; meaningful at 1 in flight, when
requests do not overlap) and prints, per request shape, the median and p90 of each step
between consecutive stamps. A step between two threads is a hand-off: the time from the
sender's tell to the receiver running (its wake-up, and the GIL). Each probe costs ~1-2 µs.
"""

from __future__ import annotations

import atexit
import functools
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = os.environ.get("HOPS_OUT", "/tmp/cm-hops.txt")
_events: list[tuple[int, str, str]] = []
_stamp = time.perf_counter_ns


def _mark(label: str) -> None:
    _events.append((_stamp(), threading.current_thread().name, label))


def _probe(owner: Any, name: str, label: str | Callable[..., str], after: str = "") -> None:
    """Stamp ``label`` when ``owner.name`` is entered (and ``after`` when it returns)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def probed(*args: Any, **kwargs: Any) -> Any:
        _mark(label(*args, **kwargs) if callable(label) else label)
        try:
            return original(*args, **kwargs)
        finally:
            if after:
                _mark(after)

    setattr(owner, name, probed)


def install() -> None:
    """Wrap the hops of a request (after ``tricks.install()`` patched what it patches)."""
    from pika.adapters.utils import io_services_utils as io

    from customer_manager.actors import cache, storage
    from customer_manager.actors.amqp import consumer, publisher
    from customer_manager.actors.kit import members
    from customer_manager.actors.service import router
    from customer_manager.tricks import redis_direct

    transport = io._AsyncPlaintextTransport
    _probe(transport, "_on_socket_readable", "socket readable")
    from pika.adapters import select_connection

    _probe(select_connection.EPollPoller, "poll", "pika: poll (GIL released)", "pika: polled")
    _probe(transport, "_produce", "send")
    _probe(consumer.ConsumerActor, "_on_message", "consumer: delivery decoded")
    _probe(consumer.ConsumerActor, "_dispatch_batch", "consumer: tell router")
    _probe(consumer.ConsumerActor, "_complete", "reply callback: queue + wake consumer")
    _probe(consumer.ConsumerActor, "after_pump", "consumer: woke (after_pump)")
    _probe(consumer.ConsumerActor, "_finish", "consumer: publish reply + ack", "consumer: queued")
    _probe(consumer.ConsumerActor, "_observe", "consumer: access log line")
    from customer_manager.storage import sql

    _probe(sql.Tx, "rows", lambda self, statement, *a: f"mysql: {statement.split()[0]}")
    from customer_manager.storage import mysql

    _probe(mysql.MySQLStorage, "_commit", "mysql: COMMIT", "mysql: committed")
    _probe(router.RouterActor, "on_receive", "router: took message", "router: done")
    _probe(
        members.PoolMember,
        "on_receive",
        lambda self, message: f"{type(self).__name__}: took work",
        "member: done (inbox wait next)",
    )
    _probe(cache.CacheActor, "handle", "cache: handle", "cache: handled")
    from customer_manager.actors.kit import pool
    from customer_manager.actors.service import deps

    _probe(deps.Worker, "handle", "worker: handler", "worker: handler returned")
    _probe(pool.Pool, "submit", lambda self, *a, **k: f"pool {self.name}: submit")
    _probe(redis_direct, "command", "redis: command", "redis: reply")
    _probe(storage.StorageActor, "handle", "storage: call", "storage: returned")
    _probe(publisher.Relaying, "on_receive", lambda self, m: f"publisher: {type(m).__name__}")
    from customer_manager.actors.amqp import publisher as amqp_publisher

    _probe(amqp_publisher.AmqpPublisher, "call", "publisher: publish call", "publisher: called")
    _probe(amqp_publisher.AmqpPublisher, "_on_reply", "publisher: reply", "publisher: replied")
    _probe(amqp_publisher.AmqpPublisher, "_relay", "publisher: relay", "publisher: relayed")


def _dump() -> None:
    with open(OUT, "w") as out:
        for ns, thread, label in list(_events):
            out.write(f"{ns}\t{thread}\t{label}\n")


def daemon(argv: list[str]) -> None:
    from customer_manager.tricks import mysql_cext

    mysql_cext.preload()  # as the console script does, before the daemon's imports load ssl
    from customer_manager import tricks

    real_install = tricks.install

    def install_then_probe() -> dict[str, bool]:
        state = real_install()
        install()
        return state

    tricks.install = install_then_probe
    atexit.register(_dump)
    from customer_manager.main import main

    sys.argv = ["customer-manager", *argv]
    main(prog_name="customer-manager")


# -- report ---------------------------------------------------------------------------------


def _requests(lines: list[tuple[int, str, str]]) -> list[list[tuple[int, str, str]]]:
    """Cut the stamps into requests: from a ``_on_message`` to the consumer's next send."""
    found: list[list[tuple[int, str, str]]] = []
    current: list[tuple[int, str, str]] | None = None
    last_read: tuple[int, str, str] | None = None
    for event in lines:
        _, thread, label = event
        consumer = thread.startswith("ConsumerActor")
        if label == "socket readable" and consumer and current is None:
            last_read = event
        elif label == "consumer: delivery decoded" and current is None:
            current = [last_read, event] if last_read else [event]
        elif current is not None:
            current.append(event)
            if label == "send" and consumer and any("publish reply" in e[2] for e in current):
                found.append(current)
                current, last_read = None, None
    return found


def _short(thread: str) -> str:
    return thread.split("-")[0].replace("Actor", "")


def report(path: Path, skip: int = 200) -> str:
    lines = []
    for row in path.read_text().splitlines():
        ns, thread, label = row.split("\t")
        lines.append((int(ns), thread, label))
    requests = _requests(lines)[skip:]
    shapes: dict[tuple[str, ...], list[list[tuple[int, str, str]]]] = defaultdict(list)
    for req in requests:
        shapes[tuple(f"{_short(t)}|{label}" for _, t, label in req)].append(req)
    out = [f"{len(requests)} requests (first {skip} skipped)"]
    for shape, reqs in sorted(shapes.items(), key=lambda kv: -len(kv[1]))[:4]:
        totals = [(r[-1][0] - r[0][0]) / 1000 for r in reqs]
        out.append(
            f"\n== {len(reqs)} requests of this shape; first stamp to reply sent: median "
            f"{statistics.median(totals):.0f} µs, p90 {_p90(totals):.0f} µs"
        )
        out.append(f"{'median µs':>10} {'p90 µs':>7}  step (thread: from -> to)")
        for i in range(1, len(shape)):
            deltas = [(r[i][0] - r[i - 1][0]) / 1000 for r in reqs]
            (t0, a), (t1, b) = shape[i - 1].split("|", 1), shape[i].split("|", 1)
            where = t0 if t0 == t1 else f"{t0} => {t1}"
            out.append(
                f"{statistics.median(deltas):10.0f} {_p90(deltas):7.0f}  [{where}] {a} -> {b}"
            )
    return "\n".join(out)


def _p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "daemon":
        daemon(sys.argv[2:])
    elif len(sys.argv) >= 3 and sys.argv[1] == "report":
        print(report(Path(sys.argv[2])))
    else:
        raise SystemExit("usage: python -m bench.hops daemon [FLAGS] | report FILE")


if __name__ == "__main__":
    main()
