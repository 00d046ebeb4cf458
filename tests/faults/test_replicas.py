"""Scenarios 2, 5 and 7: two replicas on one queue and one MySQL.

2. ``kill -9`` of a replica holding unacked requests: the broker redelivers them to the
   survivor, which answers them (docs/api.md#queues-and-delivery).
5. SIGTERM of a replica under a steady load: it drains, nothing is lost.
7. 50 simultaneous creates with one email across two replicas: one 200, 49 × 409
   (docs/storage.md#email-uniqueness).
"""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from customer_manager.config import Settings
from customer_manager.main import Daemon
from customer_manager.messages.queues import AGENT_QUEUE, BILLING_QUEUE
from tests.support.amqp import Client, Peer, answering, consumer_count, envelope
from tests.support.faults import Replica, create_body, replica_env, steady_load, unique_email
from tests.support.servers import REDIS_DB
from tests.support.service import start_daemon
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

AGENT_DELAY = 2.0  # below rpc_timeout (3 s)


def test_kill_9_with_unacked_requests_they_are_redelivered_and_answered(
    client: Client,
    migrated_dsn: str,
    redis_address: str,
    amqp_url: str,
    tmp_path: Path,
    report: Callable[..., None],
) -> None:
    """Every create waits AGENT_DELAY s on agent-manager, so when all 16 have reached it
    both replicas hold their share unacked (prefetch 8 = worker count); A is killed then."""
    env = replica_env(amqp_url, migrated_dsn, redis_address, REDIS_DB, PREFETCH="8")
    replicas = [Replica(env, tmp_path / "a.log"), Replica(env, tmp_path / "b.log")]
    killed, survivor = replicas
    try:
        wait_until(lambda: consumer_count(amqp_url) == 2, 20, "the replicas never consumed")
        with Peer(amqp_url, AGENT_QUEUE, answering([]), delay=AGENT_DELAY) as agent:
            corrs = [client.send(create_body("kill")(i)) for i in range(16)]
            wait_until(lambda: len(agent.requests) >= 16, 10, "not all requests in flight")
            first_pass = Counter(p.reply_to for p in agent.props)  # one reply-to per replica
            killed.proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            assert killed.proc.wait(10) == -signal.SIGKILL
            replies = client.wait(corrs, 30)
            recovered_s = time.monotonic() - killed_at
            second_pass = Counter(p.reply_to for p in agent.props[16:])
        redelivered = survivor.metric("customer_manager_requests_redelivered_total")
    finally:
        for replica in replicas:
            replica.stop()
    # read after the stop: the daemon writes its log lines in batches (flushed at exit)
    by_survivor = survivor.answered() & set(corrs)
    by_killed = killed.answered() & set(corrs)
    statuses = [r["status_code"] for r in replies.values()]
    assert len(first_pass) == 2 and len(second_pass) == 1, (first_pass, second_pass)
    held_by_killed = sum(n for rt, n in first_pass.items() if rt not in second_pass)
    report(
        sent=len(corrs),
        held_unacked_by_killed=held_by_killed,
        answered=len(replies),
        answered_by_survivor=len(by_survivor),
        redelivered_to_survivor=int(redelivered),
        all_answered_within_s=round(recovered_s, 1),
    )
    assert len(replies) == len(corrs), f"{len(corrs) - len(replies)} requests lost"
    assert statuses == [200] * len(corrs), statuses
    assert not by_killed and by_survivor == set(corrs)
    assert held_by_killed > 0 and redelivered == held_by_killed


def test_sigterm_under_steady_load_loses_nothing(
    client: Client,
    migrated_dsn: str,
    redis_address: str,
    amqp_url: str,
    tmp_path: Path,
    report: Callable[..., None],
) -> None:
    env = replica_env(
        amqp_url, migrated_dsn, redis_address, REDIS_DB, AGENT_CHECK="off", PREFETCH="32"
    )
    replicas = [Replica(env, tmp_path / "a.log"), Replica(env, tmp_path / "b.log")]
    stopping, marks = replicas[0], {}
    try:
        wait_until(lambda: consumer_count(amqp_url) == 2, 20, "the replicas never consumed")
        created = client.call("POST", "/v1/customers", {"email": unique_email("term")})
        uri = f"/v1/customers/{created['data']['id']}/is_valid_balance"
        body = envelope("POST", uri, {"reference_type": "call", "country": "us", "count": 1})

        def sigterm(elapsed: float) -> None:
            if elapsed >= 2.0 and "term" not in marks:
                stopping.proc.send_signal(signal.SIGTERM)
                marks["term"] = time.monotonic()
            if "term" in marks and "exit" not in marks and stopping.proc.poll() is not None:
                marks["exit"] = time.monotonic()

        with Peer(amqp_url, BILLING_QUEUE, answering({"valid": True}), delay=0.3):
            corrs = steady_load(client, lambda _i: body, 60.0, 6.0, sigterm)
            replies = client.wait(corrs, 30)
        code = stopping.proc.wait(30)
        marks.setdefault("exit", time.monotonic())
    finally:
        for replica in replicas:
            replica.stop()
    # read after the stop: the daemon writes its log lines in batches (flushed at exit)
    by_a, by_b = (r.answered() & set(corrs) for r in replicas)
    drained = [r for r in stopping.records() if "drained" in r]
    statuses = {r["status_code"] for r in replies.values()}
    report(
        sent=len(corrs),
        answered=len(replies),
        by_stopped=len(by_a),
        by_survivor=len(by_b),
        drain_s=round(marks["exit"] - marks["term"], 2),
        exit_code=code,
    )
    assert len(replies) == len(corrs), f"{len(corrs) - len(replies)} requests lost"
    assert statuses == {200}
    assert code == 0
    assert drained and drained[-1]["drained"] is True
    assert by_a and by_b and by_a | by_b == set(corrs)


def test_50_parallel_creates_one_email_two_replicas(
    client: Client,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    report: Callable[..., None],
) -> None:
    for _ in range(2):
        daemons.append(start_daemon(service_settings(agent_check="off", prefetch=16)))
    email = f"race-{uuid.uuid4().hex[:10]}@fault.test"
    corrs = [client.send(envelope("POST", "/v1/customers", {"email": email})) for _ in range(50)]
    replies = client.wait(corrs, 30)
    statuses = [r["status_code"] for r in replies.values()]
    handled = [d.consumer.proxy().handled().get(timeout=5) for d in daemons]
    reasons = {r["data"]["reason"] for r in replies.values() if r["status_code"] == 409}
    report(
        sent=50,
        ok_200=statuses.count(200),
        conflict_409=statuses.count(409),
        other=len(statuses) - statuses.count(200) - statuses.count(409),
        per_replica=handled,
    )
    assert len(replies) == 50
    assert statuses.count(200) == 1 and statuses.count(409) == 49, statuses
    assert reasons == {"EMAIL_ALREADY_EXISTS"}
    assert all(h > 0 for h in handled), f"one replica took everything: {handled}"
