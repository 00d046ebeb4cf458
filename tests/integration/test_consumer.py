"""ConsumerActor against the real broker, with a fake router
(docs/api.md#queues-and-delivery).

The fake router echoes ``{"method","uri"}`` back as a 200 reply after ``delay`` seconds, from
its own actor thread, exactly as the real router calls ``reply`` from a worker thread.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pykka
import pytest

from customer_manager.actors.amqp.consumer import CONSUMER_TAG, ConsumerActor, uri_template
from customer_manager.config import Settings
from customer_manager.messages.queues import EVENT_EXCHANGE, REQUEST_QUEUE
from customer_manager.messages.wire import Request, Response, ok
from customer_manager.tricks import pika_io, pika_pump
from tests.support.amqp import (
    Client,
    connect,
    consumer_count,
    envelope,
    queued,
    reset_request_queue,
)
from tests.support.proxy import broker_proxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


class EchoRouter(pykka.ThreadingActor):
    """Replies to every request with its method and uri; ``hold`` requests are never answered."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay, self.seen = delay, 0

    def on_receive(self, message: Any) -> Any:
        request, reply = message
        self.seen += 1
        if request.uri == "/hold":
            return None
        if self.delay:
            threading.Timer(self.delay, reply, [_echo(request)]).start()
        else:
            reply(_echo(request))
        return None


def _echo(request: Request) -> Response:
    return ok({"method": request.method, "uri": request.uri})


def start_consumer(url: str, delay: float = 0.0, prefetch: int = 16) -> tuple[Any, Any]:
    router = EchoRouter.start(delay)
    settings = Settings(rabbitmq_address=url, prefetch=prefetch)
    consumer = ConsumerActor.start(
        settings, lambda handles: [router.tell((h.request, h.reply)) for h in handles]
    )
    wait_ready(consumer)
    return consumer, router


def wait_ready(consumer: Any, timeout: float = 10.0, want: bool = True) -> None:
    ready = consumer.proxy().ready
    wait_until(lambda: ready().get(timeout=5) is want, timeout, f"consumer ready() is {want}")


def test_declares_topology_and_answers_with_copied_correlation_id(
    amqp_url: str, client: Client
) -> None:
    consumer, _ = start_consumer(amqp_url)
    corr = client.send(envelope("GET", "/v1/customers/x"), corr="corr-42")
    assert client.wait([corr], 5)[corr] == {
        "status_code": 200,
        "data_type": "application/json",
        "data": {"method": "GET", "uri": "/v1/customers/x"},
    }
    props = client.props[corr]
    assert props.content_type == "text/plain"
    assert props.correlation_id == "corr-42"
    conn = connect(amqp_url)
    channel = conn.channel()
    channel.exchange_declare(EVENT_EXCHANGE, "fanout", durable=True, passive=True)
    # the same declaration with no x-arguments succeeds (a mismatch would close the channel)
    assert channel.queue_declare(REQUEST_QUEUE, durable=True).method.consumer_count == 1
    conn.close()
    consumer.stop()


def test_bad_envelope_gets_400_and_is_acked(amqp_url: str, client: Client) -> None:
    consumer, router = start_consumer(amqp_url)
    bad = [client.send(b"not json"), client.send(b'{"uri": 5}'), client.send(b"[1,2]")]
    got = client.wait(bad, 5)
    for corr in bad:
        assert got[corr]["status_code"] == 400
        assert got[corr]["data"]["reason"] == "INVALID_BODY"
    client.send(b"not json either", reply=False)  # no reply_to: acked, not answered
    fine = client.send(envelope("GET", "/after"))
    assert client.wait([fine], 5)[fine]["status_code"] == 200
    consumer.stop()
    assert queued(amqp_url) == 0  # nothing was requeued
    assert router.proxy().seen.get(timeout=5) == 1


def test_oversized_body_refused_without_decoding(amqp_url: str, client: Client) -> None:
    consumer, router = start_consumer(amqp_url)
    big = envelope("POST", "/v1/customers", {"name": "x" * (1 << 20)})
    corr = client.send(big)
    reply = client.wait([corr], 10)[corr]
    assert reply["status_code"] == 400
    assert reply["data"]["reason"] == "INVALID_BODY"
    assert router.proxy().seen.get(timeout=5) == 0
    consumer.stop()


def test_ack_only_after_reply_and_prefetch_bounds_in_flight(amqp_url: str, client: Client) -> None:
    consumer, router = start_consumer(amqp_url, prefetch=3)
    for _ in range(5):
        client.send(envelope("GET", "/hold"))
    echo = router.proxy()  # each ``echo.seen`` asks the router anew
    wait_until(lambda: echo.seen.get(timeout=5) >= 3, 5, "three deliveries")
    # The broker holds the other two back: 3 unacked + 2 ready = all 5 (prefetch = 3).
    wait_until(lambda: queued(amqp_url) == 2, 5, "two requests held back by the broker")
    assert echo.seen.get(timeout=5) == 3  # prefetch = 3 unanswered deliveries
    assert consumer.proxy().in_flight().get(timeout=5) == 3
    consumer.stop(timeout=10)
    assert queued(amqp_url) == 5  # unanswered requests were never acked: back in the queue
    reset_request_queue(amqp_url)


def test_drain_answers_everything_in_flight(amqp_url: str, client: Client) -> None:
    consumer, _ = start_consumer(amqp_url, delay=0.5, prefetch=32)
    corrs = [client.send(envelope("GET", f"/r/{i}")) for i in range(20)]
    in_flight = consumer.proxy().in_flight
    wait_until(lambda: in_flight().get(timeout=5) >= 20, 5, "20 requests in flight", every=0.02)
    assert consumer.proxy().drain(10).get(timeout=15) is True
    assert consumer.proxy().ready().get(timeout=5) is False
    assert len(client.wait(corrs, 5)) == 20
    assert consumer_count(amqp_url) == 0
    late = client.send(envelope("GET", "/late"))
    # no longer consuming: the late request stays in the queue, nobody takes it
    wait_until(lambda: queued(amqp_url) == 1, 5, "the late request queued")
    assert consumer_count(amqp_url) == 0 and late not in client.replies
    consumer.stop()
    reset_request_queue(amqp_url)


def test_reconnects_after_connection_loss(amqp_url: str, client: Client) -> None:
    proxy, url = broker_proxy(amqp_url)
    consumer, _ = start_consumer(url, delay=0.05)
    try:
        first = [client.send(envelope("GET", f"/a/{i}")) for i in range(10)]
        assert len(client.wait(first, 5)) == 10
        proxy.cut()
        wait_ready(consumer, want=False)
        wait_ready(consumer, timeout=15)
        second = [client.send(envelope("GET", f"/b/{i}")) for i in range(10)]
        assert len(client.wait(second, 5)) == 10
        assert consumer_count(amqp_url) == 1  # consuming again, once
    finally:
        consumer.stop()
        proxy.close()


def test_two_consumers_share_the_queue(amqp_url: str, client: Client) -> None:
    routers = []
    consumers = []
    for _ in range(2):
        consumer, router = start_consumer(amqp_url, delay=0.02, prefetch=4)
        consumers.append(consumer)
        routers.append(router)
    corrs = [client.send(envelope("GET", f"/s/{i}")) for i in range(60)]
    assert len(client.wait(corrs, 10)) == 60
    seen = [r.proxy().seen.get(timeout=5) for r in routers]
    assert sum(seen) == 60
    assert min(seen) > 0, seen
    for consumer in consumers:
        consumer.stop()


def test_consumer_tag_and_uri_templates() -> None:
    assert CONSUMER_TAG == "call-manager"
    uid = "2cfbb148-7dc7-11ec-85df-47cf2c8492f0"
    assert uri_template("GET", "/v1/customers?page_size=1") == "/v1/customers"
    assert uri_template("DELETE", f"/v1/customers/{uid}") == "/v1/customers"
    assert uri_template("GET", f"/v1/accesskeys/{uid}") == "/v1/accesskeys/<accesskey-id>"
    assert (
        uri_template("POST", f"/v1/customers/{uid}/is_valid_balance")
        == "/v1/customers/<customer_id>/is_valid_balance"
    )
    assert uri_template("GET", "/v1/customers") == "notfound"
    assert uri_template("PATCH", f"/v1/customers/{uid}") == "notfound"


def test_answers_and_acks_without_the_pika_tricks(
    amqp_url: str, client: Client, tricks_off: None
) -> None:
    """On a pika outside the measured range the tricks stay off: replies and acks go through
    the BlockingChannel, with the same outcome."""
    consumer, _ = start_consumer(amqp_url, delay=0.05, prefetch=32)
    corrs = [client.send(envelope("GET", f"/plain/{i}")) for i in range(20)]
    assert len(client.wait(corrs, 10)) == 20
    consumer.stop()  # closing the channel would requeue any delivery left unacked
    wait_until(lambda: consumer_count(amqp_url) == 0, 5, "the consumer gone")
    assert queued(amqp_url) == 0  # every request was acked before its channel closed


def test_the_broker_version_is_in_the_connections_core(amqp_url: str) -> None:
    """``pika_io.server_properties`` (the bench reports the broker version from it)."""
    conn = connect(amqp_url)
    try:
        version = pika_io.server_properties(conn)["version"]
    finally:
        conn.close()
    text = version.decode() if isinstance(version, bytes) else version
    assert isinstance(text, str) and text[:1].isdigit()


def test_the_poll_hook_runs_before_each_poll_and_the_fast_wake_ends_a_slice(
    amqp_url: str,
) -> None:
    """Trick pika-poll-hook+fast-wake (``tricks/pika_pump.py``) on pika's own loop: the hook
    runs in the owner's thread before each ``poll``; a wake from another thread (a no-op ready
    event and the poller's interrupt byte) ends a long ``process_data_events`` at once."""
    conn = connect(amqp_url)
    try:
        calls: list[str] = []
        assert pika_pump.before_poll(conn, lambda: calls.append(threading.current_thread().name))
        conn.process_data_events(time_limit=0.01)
        assert calls and set(calls) == {threading.current_thread().name}
        wake = pika_pump.waker(conn)
        assert wake is not None
        threading.Timer(0.05, wake).start()
        started = time.monotonic()
        conn.process_data_events(time_limit=5)
        assert time.monotonic() - started < 1
        assert not conn._ready_events  # dispatched (a no-op) by process_data_events
    finally:
        conn.close()
    wake()  # after close: pika drops the interrupt, nothing raises


def test_without_the_pump_trick_the_consumer_answers_as_before(
    amqp_url: str, client: Client
) -> None:
    """Off, the consumer dispatches after the slice and wakes through add_callback_threadsafe."""
    pika_pump.disable()
    try:
        consumer, _ = start_consumer(amqp_url)
        assert not consumer.proxy().link.get().polls_first
        corrs = [client.send(envelope("GET", f"/off/{i}")) for i in range(5)]
        assert len(client.wait(corrs, 10)) == 5
        consumer.stop()
    finally:
        pika_pump.enable()
