"""Broker connection loss under load, SIGTERM drain of a real process
(docs/api.md#queues-and-delivery)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import pika
import pytest
from amqp_kit import Client, Peer, TcpProxy, consumer_count, envelope
from service_kit import REDIS_DB, start_daemon

from customer_manager.config import Settings
from customer_manager.main import Daemon
from customer_manager.messages.queues import BILLING_QUEUE

pytestmark = pytest.mark.integration


def new_customer(client: Client) -> str:
    body = {"email": f"r-{uuid.uuid4().hex[:10]}@test.com", "webhook_method": "POST"}
    created = client.call("POST", "/v1/customers", body)
    assert created["status_code"] == 200, created
    return str(created["data"]["id"])


def test_connection_loss_while_requests_flow(
    client: Client, daemons: list[Daemon], service_settings: Callable[..., Settings], amqp_url: str
) -> None:
    """The service's connections (consumer and publisher) run through a proxy that we cut
    while a client sends 300 requests. Nothing is re-sent: every request is answered anyway,
    because unacked deliveries go back to the queue and held replies are published after
    the reconnect (a request may be answered twice; the client keeps the first reply)."""
    target = pika.URLParameters(amqp_url)
    proxy = TcpProxy((target.host, target.port))
    proxy.start()
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F"
    daemon = start_daemon(service_settings(rabbitmq_address=url, agent_check="off"))
    daemons.append(daemon)
    try:
        cid = new_customer(client)
        corrs = []
        for i in range(300):
            if i == 100:
                proxy.cut()  # with requests of both halves in flight around it
            corrs.append(client.send(envelope("GET", f"/v1/customers/{cid}")))
            client.conn.process_data_events(time_limit=0.005)
        replies = client.wait(corrs, 30)
        assert proxy.cuts == 1
        assert len(replies) == 300, f"{300 - len(replies)} requests unanswered"
        assert {r["status_code"] for r in replies.values()} == {200}
        assert daemon.consumer.proxy().ready().get(timeout=5) is True
        assert consumer_count(amqp_url) == 1
    finally:
        proxy.close()


def test_sigterm_answers_all_50_in_flight_and_exits_0(
    client: Client, service_settings: Callable[..., Settings], amqp_url: str
) -> None:
    settings = service_settings()
    env = os.environ | {
        "RABBITMQ_ADDRESS": amqp_url,
        "DATABASE_DSN": settings.database_dsn,
        "REDIS_ADDRESS": settings.redis_address,
        "REDIS_DATABASE": str(REDIS_DB),
        "PROMETHEUS_LISTEN_ADDRESS": "127.0.0.1:0",
    }
    args = [sys.executable, "-m", "customer_manager.main", "--agent_check", "off"]
    proc = subprocess.Popen([*args, "--prefetch", "64"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: consumer_count(amqp_url) == 1, 20, "the daemon never consumed")
        cid = new_customer(client)
        key = client.call("POST", "/v1/accesskeys", {"customer_id": cid, "name": "k"})
        token = key["data"]["token"]
        slow = Peer(amqp_url, BILLING_QUEUE, _valid, delay=0.5)
        with slow:
            body = {"reference_type": "call", "country": "us", "count": 1}
            uri = f"/v1/customers/{cid}/is_valid_balance"
            corrs = [client.send(envelope("POST", uri, body)) for _ in range(50)]
            _wait(lambda: len(slow.requests) >= 4, 10, "no request reached billing-manager")
            proc.send_signal(signal.SIGTERM)
            replies = client.wait(corrs, 30)
            code = proc.wait(30)
        assert len(replies) == 50
        assert {r["status_code"] for r in replies.values()} == {200}
        assert code == 0
        assert consumer_count(amqp_url) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = proc.communicate(timeout=10)[1]
    assert token not in stderr  # docs/configuration.md#logs
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    stopped = [e for e in lines if e["message"] == "Customer-manager stopped safely."]
    assert stopped and stopped[-1]["drained"] is True
    rpc = [e for e in lines if "correlation_id" in e]
    assert {e["correlation_id"] for e in rpc} >= set(corrs)  # one INFO line per RPC, with its id
    assert any(e["uri_template"] == "/v1/customers/<customer_id>/is_valid_balance" for e in rpc)


def _valid(_request: dict[str, Any]) -> dict[str, Any]:
    return {"status_code": 200, "data_type": "application/json", "data": {"valid": True}}


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
