"""Plugin: test-side AMQP tools (an RPC client, fake peer services, an event tap) and the
``client`` and ``events`` fixtures.

Each tool owns its own pika connection and uses it only from the thread that calls it
(peers run their own thread). They talk to the real broker with the real queue names.
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest

from customer_manager.messages.queues import EVENT_EXCHANGE, REQUEST_QUEUE
from tests.support.waiting import until, wait_until

DIRECT = "amq.rabbitmq.reply-to"


def connect(url: str, name: str = "cm-test") -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.client_properties = {"connection_name": name}
    return pika.BlockingConnection(params)


def reset_request_queue(url: str, wait: float = 10.0) -> None:
    """Declare and purge the shared request queue after any stray consumer has gone."""
    conn = connect(url, "cm-test-reset")
    try:
        channel = conn.channel()

        def no_consumer() -> bool:
            ok = channel.queue_declare(REQUEST_QUEUE, durable=True)
            return int(ok.method.consumer_count) == 0

        what = "a stray consumer to leave the request queue"
        wait_until(no_consumer, wait, what, idle=conn.sleep, every=0.2)
        channel.queue_purge(REQUEST_QUEUE)
    finally:
        conn.close()


def _declared(url: str, queue: str) -> Any:
    """The broker's Queue.DeclareOk for an existing ``queue`` (message and consumer counts)."""
    conn = connect(url, "cm-test-count")
    try:
        return conn.channel().queue_declare(queue, durable=True, passive=True).method
    finally:
        conn.close()


def consumer_count(url: str, queue: str = REQUEST_QUEUE) -> int:
    return int(_declared(url, queue).consumer_count)


def queued(url: str, queue: str = REQUEST_QUEUE) -> int:
    """Messages ready in ``queue``: neither delivered to a consumer nor unacked."""
    return int(_declared(url, queue).message_count)


def envelope(method: str, uri: str, data: Any = None, publisher: str = "api-manager") -> bytes:
    """A Request as VoIPbin callers send it (docs/api.md#request-envelope): ``data``
    omitted when None."""
    body: dict[str, Any] = {"uri": uri, "method": method, "publisher": publisher}
    body["data_type"] = "application/json"
    if data is not None:
        body["data"] = data
    return json.dumps(body).encode()


def peer_reply(data: Any) -> dict[str, Any]:
    """A fake peer's 200 reply carrying ``data``."""
    return {"status_code": 200, "data_type": "application/json", "data": data}


def answering(data: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A ``Peer`` handler answering every request with ``peer_reply(data)``."""
    return lambda _request: peer_reply(data)


class Client:
    """An RPC client on direct reply-to, like api-manager. Single-threaded."""

    def __init__(self, url: str) -> None:
        self.conn = connect(url, "cm-test-client")
        self.channel = self.conn.channel()
        self.replies: dict[str, dict[str, Any]] = {}
        self.props: dict[str, pika.BasicProperties] = {}
        self.channel.basic_consume(DIRECT, self._on_reply, auto_ack=True)

    def _on_reply(self, _ch: Any, _m: Any, props: pika.BasicProperties, body: bytes) -> None:
        self.replies[props.correlation_id or ""] = json.loads(body)
        self.props[props.correlation_id or ""] = props

    def send(self, body: bytes, corr: str | None = None, reply: bool = True) -> str:
        corr = corr or uuid.uuid4().hex
        props = pika.BasicProperties(reply_to=DIRECT if reply else None, correlation_id=corr)
        self.channel.basic_publish("", REQUEST_QUEUE, body, props)
        return corr

    def pump(self, seconds: float) -> None:
        """Run the connection (deliver replies) for ``seconds``."""
        self.conn.process_data_events(time_limit=seconds)

    def wait(self, corrs: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Pump until every correlation id has a reply or ``timeout`` passes."""
        until(lambda: all(c in self.replies for c in corrs), timeout, idle=self.pump)
        return {c: self.replies[c] for c in corrs if c in self.replies}

    def call(self, method: str, uri: str, data: Any = None, timeout: float = 10) -> dict[str, Any]:
        corr = self.send(envelope(method, uri, data))
        got = self.wait([corr], timeout)
        assert corr in got, f"no reply to {method} {uri} within {timeout} s"
        return got[corr]

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()


class Peer(threading.Thread):
    """A fake VoIPbin service consuming ``queue`` and answering with ``handler(request)``
    (a Response dict, or None to stay silent). Records every request it got."""

    def __init__(
        self,
        url: str,
        queue: str,
        handler: Callable[[dict[str, Any]], Any],
        delay: float = 0.0,
    ) -> None:
        super().__init__(daemon=True, name=f"peer-{queue}")
        self.url, self.queue, self.handler, self.delay = url, queue, handler, delay
        self.conn: pika.BlockingConnection | None = None
        self.requests: list[dict[str, Any]] = []
        self.props: list[pika.BasicProperties] = []
        self._stop_flag = threading.Event()
        self._ready = threading.Event()

    def run(self) -> None:
        conn = self.conn = connect(self.url, f"cm-test-peer-{self.queue}")
        channel = conn.channel()
        channel.queue_declare(self.queue, durable=True)
        channel.queue_purge(self.queue)
        channel.basic_consume(self.queue, self._on_message, auto_ack=True)
        self._ready.set()
        while not self._stop_flag.is_set():
            conn.process_data_events(time_limit=0.05)
        conn.close()

    def _on_message(self, ch: Any, _m: Any, props: pika.BasicProperties, body: bytes) -> None:
        request = json.loads(body)
        self.requests.append(request)
        self.props.append(props)
        answer = self.handler(request)
        if answer is not None and props.reply_to:
            reply_props = pika.BasicProperties(
                content_type="text/plain", correlation_id=props.correlation_id
            )
            body = json.dumps(answer).encode()
            publish = functools.partial(ch.basic_publish, "", props.reply_to, body, reply_props)
            if self.delay and self.conn is not None:
                self.conn.call_later(self.delay, publish)  # answer later, keep consuming
            else:
                publish()

    def __enter__(self) -> Peer:
        self.start()
        assert self._ready.wait(10), f"peer on {self.queue} did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_flag.set()
        self.join(10)


class EventTap:
    """An exclusive temporary queue bound to a fanout exchange; collects the events."""

    def __init__(self, url: str, exchange: str) -> None:
        self.conn = connect(url, "cm-test-tap")
        self.channel = self.conn.channel()
        self.channel.exchange_declare(exchange, "fanout", durable=True)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, exchange)
        self.events: list[dict[str, Any]] = []
        self.props: list[pika.BasicProperties] = []
        self.channel.basic_consume(self.queue, self._on_event, auto_ack=True)

    def _on_event(self, _ch: Any, _m: Any, props: pika.BasicProperties, body: bytes) -> None:
        self.events.append(json.loads(body))
        self.props.append(props)

    def pump(self, seconds: float) -> None:
        """Run the connection (collect events) for ``seconds``."""
        self.conn.process_data_events(time_limit=seconds)

    def wait_for(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """Pump until ``count`` events have arrived or ``timeout`` passes; all events so far."""
        until(lambda: len(self.events) >= count, timeout, idle=self.pump)
        return self.events

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()


@pytest.fixture
def client(amqp_url: str) -> Iterator[Client]:
    """An RPC client on an emptied request queue that no earlier consumer still holds."""
    reset_request_queue(amqp_url)
    c = Client(amqp_url)
    yield c
    c.close()


@pytest.fixture
def events(amqp_url: str) -> Iterator[EventTap]:
    """A tap on the service's event exchange."""
    tap = EventTap(amqp_url, EVENT_EXCHANGE)
    yield tap
    tap.close()
