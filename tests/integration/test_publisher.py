"""AmqpPublisher against the real broker: outbox relay, outage survival, outgoing RPC.

Storage is a MemoryStorage behind a real StorageActor pool (the relay asks it, as in
production); the peers are fake services on the real VoIPbin queue names.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from customer_manager import metrics
from customer_manager.actors.amqp.publisher import DIRECT_REPLY_TO, AmqpPublisher
from customer_manager.actors.publisher import rpc
from customer_manager.actors.service.outbox import customer_outbox
from customer_manager.actors.storage import StorageClient, start_storage_pool
from customer_manager.config import Settings
from customer_manager.errors import Unavailable
from customer_manager.messages.queues import AGENT_QUEUE, EVENT_EXCHANGE, WEBHOOK_QUEUE
from customer_manager.messages.records import NIL, SENTINEL, Customer
from customer_manager.messages.wire import Request
from customer_manager.storage.memory import MemoryStorage
from tests.support.amqp import EventTap, Peer, peer_reply
from tests.support.metrics import count, sample
from tests.support.proxy import broker_proxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def store() -> Iterator[tuple[MemoryStorage, StorageClient]]:
    memory = MemoryStorage()
    pool = start_storage_pool(lambda: memory, 1)
    yield memory, StorageClient(pool, timeout=5)
    pool.stop(5)


def add_customer(memory: MemoryStorage, name: str, webhook: bool = True) -> Customer:
    customer = Customer(
        id=uuid.uuid4(),
        name=name,
        email=f"{name}@example.com",
        webhook_method="POST" if webhook else "",
        webhook_uri="https://hooks.example.com/x" if webhook else "",
        billing_account_id=NIL,
        tm_create="2024-04-18 03:22:17.995000",
        tm_update=SENTINEL,
        tm_delete=SENTINEL,
    )
    return memory.customer_insert(customer, customer_outbox("customer_created"))


def start_publisher(url: str, store: StorageClient) -> Any:
    publisher = AmqpPublisher.start(Settings(rabbitmq_address=url), store, relay_interval=0.5)
    wait_until(lambda: publisher.proxy().ready().get(timeout=5), 10, "the publisher connected")
    return publisher


def outbox_empty(memory: MemoryStorage, timeout: float) -> None:
    wait_until(lambda: memory.outbox_size() == 0, timeout, "the outbox emptied")


def backlog_is(size: int) -> None:
    """Wait for the relay to count ``size`` outbox entries (the gauge the alerts read)."""
    what = f"the relay counting {size} outbox entries"
    wait_until(lambda: sample("customer_manager_outbox_backlog") == size, 5, what)


def test_outbox_relay_publishes_events_and_webhooks(
    amqp_url: str, store: tuple[MemoryStorage, StorageClient]
) -> None:
    memory, st = store
    tap = EventTap(amqp_url, EVENT_EXCHANGE)
    with Peer(amqp_url, WEBHOOK_QUEUE, lambda r: None) as hooks:
        customer = add_customer(memory, "relay1")
        assert memory.outbox_size() == 2
        publisher = start_publisher(amqp_url, st)
        publisher.proxy().flush()
        events = tap.wait_for(1, 10)
        wait_until(lambda: len(hooks.requests) == 1, 10, "the webhook request")
    assert [e["type"] for e in events] == ["customer_created"]
    assert events[0]["publisher"] == "customer-manager"
    assert events[0]["data"]["id"] == str(customer.id)
    assert tap.props[0].content_type == "text/plain"
    assert tap.props[0].delivery_mode in (None, 1)  # transient
    hook = hooks.requests[0]
    assert (hook["uri"], hook["method"], hook["publisher"]) == (
        "/v1/webhooks",
        "POST",
        "customer-manager",
    )
    assert hook["data"]["customer_id"] == str(customer.id)
    assert hook["data"]["data_type"] == "application/json"
    assert hook["data"]["data"]["type"] == "customer_created"
    assert hook["data"]["data"]["data"]["id"] == str(customer.id)
    outbox_empty(memory, 5)
    tap.close()


def test_outbox_waits_for_the_broker(
    amqp_url: str, store: tuple[MemoryStorage, StorageClient]
) -> None:
    memory, st = store
    proxy, url = broker_proxy(amqp_url)
    tap = EventTap(amqp_url, EVENT_EXCHANGE)
    publisher = start_publisher(url, st)
    age = "customer_manager_outbox_oldest_age_seconds"
    try:
        backlog_is(0)
        assert sample(age) == 0
        proxy.pause()
        ready = publisher.proxy().ready
        wait_until(lambda: not ready().get(timeout=5), 10, "the publisher saw the outage")
        written = time.time()
        for i in range(5):
            add_customer(memory, f"outage{i}", webhook=False)
        done = time.time()
        publisher.proxy().flush()
        for _ in range(3):  # three relay intervals with the broker down, each counting all 5
            metrics.outbox_backlog.set(-1)
            backlog_is(5)  # the relay counts the outbox broker or not: the gauges alerts read
        assert memory.outbox_size() == 5
        before, oldest, after = time.time(), sample(age), time.time()
        assert oldest is not None and before - done <= oldest <= after - written
        proxy.resume()
        events = tap.wait_for(5, 20)
        # the first five events are the five, once each: none went out during the outage
        assert sorted(e["data"]["name"] for e in events) == [f"outage{i}" for i in range(5)]
        outbox_empty(memory, 5)
        backlog_is(0)
        assert sample(age) == 0
    finally:
        publisher.stop()
        proxy.close()
        tap.close()


def test_outgoing_rpc_reply_and_timeout(
    amqp_url: str, store: tuple[MemoryStorage, StorageClient]
) -> None:
    _, st = store
    agents = [{"id": str(uuid.uuid4()), "username": "taken@example.com"}]

    def agent_manager(request: dict[str, Any]) -> Any:
        if request["data"]["username"] == "silent@example.com":
            return None
        found = agents if request["data"]["username"] == "taken@example.com" else []
        return peer_reply(found)

    publisher = start_publisher(amqp_url, st).proxy()
    with Peer(amqp_url, AGENT_QUEUE, agent_manager) as peer:
        for email, count in (("taken@example.com", 1), ("free@example.com", 0)):
            response = rpc(publisher.actor_ref, AGENT_QUEUE, _agent_request(email), 3.0)
            assert response.status_code == 200
            assert len(msgspec.json.decode(response.data)) == count
        started = time.monotonic()
        with pytest.raises(Unavailable):
            rpc(publisher.actor_ref, AGENT_QUEUE, _agent_request("silent@example.com"), 3.0)
        assert 2.9 <= time.monotonic() - started < 4.0
    props = peer.props[0]
    assert props.reply_to.startswith(DIRECT_REPLY_TO)
    assert props.content_type == "text/plain"
    assert props.correlation_id
    assert peer.requests[0] == json.loads(
        '{"uri":"/v1/agents?page_token=&page_size=100","method":"GET",'
        '"publisher":"customer-manager","data_type":"application/json",'
        '"data":{"deleted":false,"username":"taken@example.com"}}'
    )


def test_call_fails_fast_without_broker(store: tuple[MemoryStorage, StorageClient]) -> None:
    _, st = store
    settings = Settings(rabbitmq_address="amqp://guest:guest@127.0.0.1:1/%2F")
    publisher = AmqpPublisher.start(settings, st).proxy()
    assert publisher.ready().get(timeout=5) is False
    started = time.monotonic()
    with pytest.raises(Unavailable):
        rpc(publisher.actor_ref, AGENT_QUEUE, _agent_request("x@example.com"), 3.0)
    assert time.monotonic() - started < 1.0


def _agent_request(email: str) -> Request:
    data = {"deleted": False, "username": email}
    return Request(
        uri="/v1/agents?page_token=&page_size=100",
        method="GET",
        publisher="customer-manager",
        data_type="application/json",
        data=msgspec.Raw(msgspec.json.encode(data)),
    )


def test_event_metrics_and_backlog_gauge(
    amqp_url: str, store: tuple[MemoryStorage, StorageClient]
) -> None:
    """The event metrics count each relayed event; the backlog gauge returns to 0."""

    def sent() -> float:
        return count("customer_manager_notify_total", type="customer_created")

    memory, facade = store
    before = sent()
    add_customer(memory, "metrics", webhook=False)
    publisher = start_publisher(amqp_url, facade)
    try:
        outbox_empty(memory, 10)
        assert sent() - before == 1
        backlog_is(0)
    finally:
        publisher.stop()


def test_a_burst_larger_than_a_batch_goes_out_complete_and_in_order(
    amqp_url: str, store: tuple[MemoryStorage, StorageClient]
) -> None:
    """250 events (2.5 relay batches, each confirmed by the broker as a whole) arrive once
    each, in write order, and the outbox ends empty."""
    memory, st = store
    tap = EventTap(amqp_url, EVENT_EXCHANGE)
    names = [f"burst{i:03d}" for i in range(250)]
    for name in names:
        add_customer(memory, name, webhook=False)
    publisher = start_publisher(amqp_url, st)
    try:
        publisher.proxy().flush()
        events = tap.wait_for(250, 20)
        assert [e["data"]["name"] for e in events] == names
        outbox_empty(memory, 5)
    finally:
        publisher.stop()
        tap.close()


def test_outbox_relay_without_the_pika_tricks(
    amqp_url: str, store: tuple[MemoryStorage, StorageClient], tricks_off: None
) -> None:
    """On a pika outside the measured range the events go out one confirmed publish at a time
    through the BlockingChannel, with the same outcome."""
    test_outbox_relay_publishes_events_and_webhooks(amqp_url, store)
