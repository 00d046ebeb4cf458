"""Test-side AMQP tools: an RPC client, fake peer services, an event tap and a TCP proxy.

Each tool owns its own pika connection and uses it only from the thread that calls it
(peers run their own thread). They talk to the real broker with the real queue names.
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pika

from customer_manager.messages.queues import REQUEST_QUEUE

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
        deadline = time.monotonic() + wait
        while True:
            ok = channel.queue_declare(REQUEST_QUEUE, durable=True)
            if ok.method.consumer_count == 0:
                break
            assert time.monotonic() < deadline, "a stray consumer remains on the request queue"
            conn.sleep(0.2)
        channel.queue_purge(REQUEST_QUEUE)
    finally:
        conn.close()


def consumer_count(url: str, queue: str = REQUEST_QUEUE) -> int:
    conn = connect(url, "cm-test-count")
    try:
        ok = conn.channel().queue_declare(queue, durable=True, passive=True)
        return int(ok.method.consumer_count)
    finally:
        conn.close()


def envelope(method: str, uri: str, data: Any = None, publisher: str = "api-manager") -> bytes:
    """A Request as VoIPbin callers send it (docs/api.md#request-envelope): ``data``
    omitted when None."""
    body: dict[str, Any] = {"uri": uri, "method": method, "publisher": publisher}
    body["data_type"] = "application/json"
    if data is not None:
        body["data"] = data
    return json.dumps(body).encode()


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

    def wait(self, corrs: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Pump until every correlation id has a reply or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while any(c not in self.replies for c in corrs) and time.monotonic() < deadline:
            self.conn.process_data_events(time_limit=0.05)
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

    def wait_for(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            self.conn.process_data_events(time_limit=0.05)
        return self.events

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()


class TcpProxy(threading.Thread):
    """A TCP proxy on 127.0.0.1 to ``target``; ``cut()`` drops every open connection,
    ``pause()`` also refuses new ones, ``stall()`` blackholes: connections stay open (new
    ones are accepted) but no byte flows either way until ``resume()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(daemon=True, name="tcp-proxy")
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self.cuts = 0
        self.down = False
        self.flowing = threading.Event()
        self.flowing.set()

    def run(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self._lock:  # registered under the lock, so a cut() never misses it
                if self.down:  # the server is unreachable: refuse by closing at once
                    client.close()
                    continue
                self._socks.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self.flowing.wait()  # stalled: hold the client, connect upstream only on resume
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            if client not in self._socks:  # cut while connecting upstream
                upstream.close()
                return
            self._socks.append(upstream)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b, self.flowing), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
            self.cuts += 1
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def pause(self) -> None:
        """Broker outage: drop every connection and refuse new ones until ``resume``."""
        with self._lock:
            self.down = True
        self.cut()

    def stall(self) -> None:
        """Network partition: keep every connection open but let no byte through."""
        self.flowing.clear()

    def resume(self) -> None:
        self.down = False
        self.flowing.set()

    def close(self) -> None:
        self.server.close()
        self.cut()
        self.flowing.set()  # release the threads held by a stall


def _pipe(src: socket.socket, dst: socket.socket, flowing: threading.Event) -> None:
    try:
        while data := src.recv(65536):
            flowing.wait()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
