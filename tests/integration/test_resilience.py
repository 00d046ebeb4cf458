"""Broker connection loss under load, SIGTERM drain of a real process
(docs/api.md#queues-and-delivery)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest

from customer_manager.config import Settings
from customer_manager.main import Daemon
from customer_manager.messages.queues import BILLING_QUEUE
from tests.support.amqp import Client, Peer, answering, consumer_count, envelope
from tests.support.faults import replica_env
from tests.support.proxy import broker_proxy
from tests.support.servers import REDIS_DB
from tests.support.service import start_daemon
from tests.support.waiting import wait_until

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
    proxy, url = broker_proxy(amqp_url)
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
    env = os.environ | replica_env(
        amqp_url, settings.database_dsn, settings.redis_address, REDIS_DB
    )
    args = [sys.executable, "-m", "customer_manager.main", "--agent_check", "off"]
    proc = subprocess.Popen([*args, "--prefetch", "64"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: consumer_count(amqp_url) == 1, 20, "the daemon never consumed")
        cid = new_customer(client)
        key = client.call("POST", "/v1/accesskeys", {"customer_id": cid, "name": "k"})
        token = key["data"]["token"]
        slow = Peer(amqp_url, BILLING_QUEUE, answering({"valid": True}), delay=0.5)
        with slow:
            body = {"reference_type": "call", "country": "us", "count": 1}
            uri = f"/v1/customers/{cid}/is_valid_balance"
            corrs = [client.send(envelope("POST", uri, body)) for _ in range(50)]
            wait_until(lambda: len(slow.requests) >= 4, 10, "no request reached billing-manager")
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


def _thread_cpus(pid: int) -> list[str]:
    """Each live thread's allowed CPU list, from /proc."""
    cpus = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status", encoding="ascii") as status:
                line = next(x for x in status if x.startswith("Cpus_allowed_list:"))
        except (FileNotFoundError, ProcessLookupError):  # the thread ended
            continue
        cpus.append(line.split(":", 1)[1].strip())
    return cpus


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
@pytest.mark.parametrize("placement", ["one", "any"])
def test_cpu_placement_of_a_real_daemon(
    client: Client, service_settings: Callable[..., Settings], amqp_url: str, placement: str
) -> None:
    """docs/configuration.md#cpu-placement: by default every thread of the serving daemon is
    bound to one CPU; with ``any`` none is."""
    settings = service_settings()
    env = os.environ | replica_env(
        amqp_url, settings.database_dsn, settings.redis_address, REDIS_DB, CPU_PLACEMENT=placement
    )
    args = [sys.executable, "-m", "customer_manager.main", "--agent_check", "off"]
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: consumer_count(amqp_url) == 1, 20, "the daemon never consumed")
        new_customer(client)  # served: every pool and the storage have their threads
        cpus = _thread_cpus(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = proc.communicate(timeout=10)[1]
    assert len(cpus) > 10
    everything = _thread_cpus(os.getpid())[0]
    if placement == "one":
        assert len(set(cpus)) == 1 and cpus[0].isdigit(), cpus
        assert "threads on CPU " in stderr  # bound as it started serving
    else:
        assert set(cpus) == {everything}, cpus
        assert "threads on CPU" not in stderr
