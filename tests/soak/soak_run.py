"""The soak runner: two daemon replicas in their own vhost, database and Redis index, a
mixed load from several clients, faults from the seed, then quiescence and the checkers
(soak_check). ``run()`` returns the figures and findings; ``report()`` prints them, with the
seed and an excerpt of the history for every finding."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mysql.connector

from customer_manager.config import parse_dsn
from customer_manager.messages import gojson
from customer_manager.messages.queues import EVENT_EXCHANGE
from customer_manager.storage.mysql import MySQLStorage
from tests.soak.soak_check import Final, Finding, check, duplicate_events
from tests.soak.soak_env import AMQP_PORT, HOST, MYSQL_PORT, REDIS_PORT, Namespace, namespace
from tests.soak.soak_faults import Faults, Slot
from tests.soak.soak_load import GIVE_UP_AFTER, RESEND_AFTER, Entry, Registry, Worker
from tests.support.amqp import Client, EventTap, consumer_count, envelope
from tests.support.faults import replica_env
from tests.support.proxy import TcpProxy
from tests.support.waiting import wait_until

OUTBOX_WAIT = 60.0  # a killed replica's leased batch waits for its lease (30 s)
DUPLICATE_EMAILS = (
    "SELECT email_active, COUNT(*) FROM customer_customers"
    " WHERE email_active IS NOT NULL GROUP BY email_active HAVING COUNT(*) > 1"
)


@dataclass
class Result:
    seed: int
    seconds: float
    figures: dict[str, Any]
    findings: dict[str, list[Finding]]
    history: list[Entry]

    @property
    def failed(self) -> bool:
        return any(self.findings.values())


def run(seed: int, seconds: float, clients: int, redis_db: int, logs: Path) -> Result:
    logs.mkdir(parents=True, exist_ok=True)
    with namespace(redis_db) as ns:
        proxies = {name: TcpProxy((HOST, port)) for name, port in _PROXIED.items()}
        for proxy in proxies.values():
            proxy.start()
        try:
            return _soak(ns, proxies, seed, seconds, clients, logs)
        finally:
            for proxy in proxies.values():
                proxy.close()


_PROXIED = {"mysql": MYSQL_PORT, "redis": REDIS_PORT, "amqp-a": AMQP_PORT, "amqp-b": AMQP_PORT}


def _soak(
    ns: Namespace, proxies: dict[str, TcpProxy], seed: int, seconds: float, clients: int, logs: Path
) -> Result:
    slots = [
        Slot(name, _env(ns, proxies, name), logs, proxies[f"amqp-{name}"]) for name in ("a", "b")
    ]
    tap = _Tap(ns.amqp_url())
    cache = ns.redis()
    try:
        wait_until(lambda: _consumers(ns) == 2, 60, "the replicas never consumed")
        started = time.monotonic()
        faults = Faults(seed, slots, proxies["mysql"], proxies["redis"], cache)
        registry = Registry(started, faults.active)
        workers = [
            Worker(i, ns.amqp_url(), seed, registry, started + seconds) for i in range(clients)
        ]
        faults.start()
        for worker in workers:
            worker.start()
        time.sleep(seconds)
        faults.stop()
        for worker in workers:
            worker.join(RESEND_AFTER + GIVE_UP_AFTER + 10)
        errors = [repr(x.error) for x in [*workers, faults] if x.error is not None]
        assert not errors, errors
        final = _settle(ns, registry, tap, slots)
    finally:
        for slot in slots:
            slot.stop("end", 15)
        tap.close()
        cache.close()
    final.bad_exits = [
        f"replica {s.name}: {how} exit {code}" for s in slots for how, code in s.unexpected_exits()
    ]
    history = registry.history
    return Result(seed, seconds, _figures(history, final, faults), check(history, final), history)


def _env(ns: Namespace, proxies: dict[str, TcpProxy], name: str) -> dict[str, str]:
    return replica_env(
        ns.amqp_url(proxies[f"amqp-{name}"].port),
        ns.dsn(proxies["mysql"].port),
        f"{HOST}:{proxies['redis'].port}",
        ns.redis_db,
        AGENT_CHECK="off",
    )


def _consumers(ns: Namespace) -> int:
    try:
        return consumer_count(ns.amqp_url())
    except Exception:  # the queue is not declared yet
        return 0


class _Tap(threading.Thread):
    """An EventTap pumped by its own thread."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True, name="soak-events")
        self.tap = EventTap(url, EVENT_EXCHANGE)
        self._stop_flag = threading.Event()
        self.start()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            self.tap.conn.process_data_events(time_limit=0.1)

    def close(self) -> list[dict[str, Any]]:
        self._stop_flag.set()
        self.join(5)
        self.tap.close()
        return self.tap.events


def _settle(ns: Namespace, registry: Registry, tap: _Tap, slots: list[Slot]) -> Final:
    """Quiescence: the outbox relayed, then every record read through the service and from
    MySQL."""
    storage = MySQLStorage(parse_dsn(ns.dsn()))
    try:
        deadline = time.monotonic() + OUTBOX_WAIT
        while storage.outbox_size() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # the last events on their way to the tap
        customers = {c: _row(storage.customer_get, c) for c in registry.emails}
        keys = {k: _row(storage.accesskey_get, k) for k in registry.keys}
        reads = _reads(ns, registry)
        return Final(
            customers=customers,
            keys=keys,
            reads=reads,
            duplicate_emails=_duplicate_emails(ns),
            events=list(tap.tap.events),
            outbox=storage.outbox_size(),
            bad_exits=[],
        )
    finally:
        storage.close()


def _row(get: Any, record_id: str) -> dict[str, Any] | None:
    try:
        return json.loads(gojson.encode(get(uuid.UUID(record_id))))  # type: ignore[no-any-return]
    except Exception:
        return None


def _reads(ns: Namespace, registry: Registry) -> dict[tuple[str, str], Any]:
    client = Client(ns.amqp_url())
    asks: list[tuple[tuple[str, str], bytes]] = []
    for c in registry.emails:
        asks.append((("customer", c), envelope("GET", f"/v1/customers/{c}")))
    for k, token in registry.keys.items():
        asks.append((("key", k), envelope("GET", f"/v1/accesskeys/{k}")))
        body = {"token": token, "deleted": False}
        asks.append((("auth", k), envelope("GET", "/v1/accesskeys?page_size=10", body)))
    reads: dict[tuple[str, str], Any] = {}
    try:
        for start in range(0, len(asks), 50):
            batch = asks[start : start + 50]
            corrs = [client.send(body) for _, body in batch]
            got = client.wait(corrs, 30)
            for (what, _), corr in zip(batch, corrs, strict=True):
                reply = got.get(corr)
                status = reply["status_code"] if reply else None
                reads[what] = reply.get("data") if status == 200 else status
    finally:
        client.close()
    return reads


def _duplicate_emails(ns: Namespace) -> list[tuple[str, int]]:
    conn = mysql.connector.connect(host=HOST, port=MYSQL_PORT, user="root", database=ns.database)
    try:
        cursor = conn.cursor()
        cursor.execute(DUPLICATE_EMAILS)
        return [(str(email), int(n)) for email, n in cursor.fetchall()]
    finally:
        conn.close()


def _figures(history: list[Entry], final: Final, faults: Faults) -> dict[str, Any]:
    statuses = Counter(str(e.status) for e in history)
    return {
        "requests": len(history),
        "answered": sum(e.status is not None for e in history),
        "resent": sum(e.resent for e in history),
        "statuses": dict(sorted(statuses.items())),
        "events": len(final.events),
        "duplicate_events": duplicate_events(final.events),
        "faults": dict(sorted(faults.counts.items())),
    }


def report(result: Result, history_path: Path | None = None) -> str:
    """The figures, one line per checker, and for each failing checker the seed and the
    history entries that show its first findings."""
    lines = [f"[soak] seed={result.seed} seconds={result.seconds:g} {json.dumps(result.figures)}"]
    for name, findings in result.findings.items():
        lines.append(f"[soak] {name}={len(findings)}")
    for name, findings in result.findings.items():
        for finding in findings[:3]:
            lines.append(f"[soak] FAILED {name} (seed {result.seed}): {finding.what}")
            lines += [f"    {e.line()}" for e in finding.entries[:8]]
    if history_path is not None:
        history_path.write_text("\n".join(json.dumps(e.as_json()) for e in result.history))
        lines.append(f"[soak] history: {history_path}")
    return "\n".join(lines)
