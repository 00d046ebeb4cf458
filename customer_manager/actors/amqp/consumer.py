"""ConsumerActor: the RabbitMQ edge of the service (docs/api.md#queues-and-delivery).

It owns one connection (``PumpActor``), declares the topology, consumes the request queue
with consumer tag ``call-manager`` and hands the requests decoded in one pump slice to
``dispatch`` as one list of ``Handle(request, reply)`` (in production: one message to the
router, so a burst of deliveries costs the router one wake-up). The ``reply`` callback may be called
from any thread, exactly once; it queues the Response and wakes the pump, and the consumer's
own thread then publishes the reply to ``reply_to`` and only then acks.

Threading contract: everything except the ``reply`` callbacks runs in the actor's thread.
Deliveries never block that thread: nothing here waits on a future.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from customer_manager import metrics
from customer_manager.actors.amqp.delay import declare_delay_exchange, delay_plugin_present
from customer_manager.actors.amqp.link import AMQP_ERRORS, PumpActor
from customer_manager.config import Settings
from customer_manager.errors import InvalidArgument, Unavailable, error_response
from customer_manager.messages.ops import Handle
from customer_manager.messages.queues import EVENT_EXCHANGE, REQUEST_QUEUE
from customer_manager.messages.routes import match
from customer_manager.messages.wire import EnvelopeError, Request, Response, decode_request, encode
from customer_manager.tricks import pika_io

log = logging.getLogger(__name__)

CONSUMER_TAG = "call-manager"
MAX_BODY = 1 << 20
Dispatch = Callable[[list[Handle]], None]


def uri_template(method: str, uri: str) -> str:
    """The route label of a request for logs (the ``type`` label of
    docs/configuration.md#metrics-and-health): no ids, no query string."""
    route = match(Request(method=method, uri=uri))
    return route.label if route is not None else "notfound"


class _Delivery(msgspec.Struct, kw_only=True):
    """One received message until its reply is published and it is acked."""

    generation: int
    tag: int
    reply_to: str
    correlation_id: str
    started: float
    method: str = ""
    uri: str = ""
    response: Response | None = None


class ConsumerActor(PumpActor):
    """Consumes ``REQUEST_QUEUE`` and answers every request (see the module docstring).

    Proxy methods: ``ready() -> bool`` (connected and not draining), ``drain(timeout) ->
    bool`` (stop consuming, answer what is in flight, close; True if nothing was left),
    ``in_flight() -> int``, ``handled() -> int``.
    """

    def __init__(
        self,
        settings: Settings,
        dispatch: Dispatch,
        *,
        connection_name: str = "customer-manager",
        max_body: int = MAX_BODY,
    ) -> None:
        super().__init__(settings.rabbitmq_address, connection_name)
        self._dispatch, self._prefetch, self._max_body = dispatch, settings.prefetch, max_body
        self._channel: BlockingChannel | None = None
        self._generation = 0
        self._done: queue.SimpleQueue[_Delivery] = queue.SimpleQueue()
        self._batch: list[Handle] = []  # decoded in this pump slice, dispatched after it
        self._held: list[_Delivery] = []
        self._in_flight = self._handled = 0
        self._draining = False
        self._wake_pending = False
        self._delay_plugin: bool | None = None
        self.link.before_poll = self._before_poll

    # -- proxy methods -------------------------------------------------------------------

    def ready(self) -> bool:
        return self.link.connected and not self._draining

    def in_flight(self) -> int:
        return self._in_flight

    def handled(self) -> int:
        """Requests answered (or acked without reply_to) since start."""
        return self._handled

    def drain(self, timeout: float) -> bool:
        """Cancel the consumer, answer in-flight requests (up to ``timeout`` s), close."""
        self._draining = True
        channel, deadline = self._channel, time.monotonic() + timeout
        if channel is not None and channel.is_open:
            try:
                channel.basic_cancel(CONSUMER_TAG)
            except AMQP_ERRORS as exc:
                self.link.lost(exc)
        while self._in_flight > 0 and time.monotonic() < deadline:
            self.link.pump(min(self.slice_seconds, deadline - time.monotonic()))
            self.after_pump()
        left = self._in_flight
        self.link.close()
        self._channel = None
        log.info("consumer drained; %d request(s) left unanswered", left)
        return left == 0

    # -- connection ----------------------------------------------------------------------

    def on_connect(self, connection: BlockingConnection) -> None:
        """Declare the topology (docs/api.md#queues-and-delivery), apply QoS, publish held
        replies, consume last."""
        channel = connection.channel()
        channel.exchange_declare(EVENT_EXCHANGE, "fanout", durable=True)
        channel.queue_declare(REQUEST_QUEUE, durable=True)
        if self._delay_plugin is None:
            self._delay_plugin = delay_plugin_present(connection, self.link.params)
        if self._delay_plugin:
            declare_delay_exchange(channel)
        channel.basic_qos(prefetch_count=self._prefetch)
        self._channel, self._generation = channel, self.link.generation
        held, self._held = self._held, []
        for item in held:
            if self._finish(item) and item.response is not None:
                self._observe(item, item.response)
        if not self._draining:
            channel.basic_consume(REQUEST_QUEUE, self._on_message, consumer_tag=CONSUMER_TAG)

    # -- deliveries ----------------------------------------------------------------------

    def _on_message(
        self,
        channel: BlockingChannel,
        method: Any,
        props: pika.BasicProperties,
        body: bytes,
    ) -> None:
        item = _Delivery(
            generation=self._generation,
            tag=method.delivery_tag,
            reply_to=props.reply_to or "",
            correlation_id=props.correlation_id or "",
            started=time.monotonic(),
        )
        self._in_flight += 1
        metrics.later(metrics.requests_in_flight.inc)
        if method.redelivered:
            metrics.later(metrics.requests_redelivered_total.inc)
        if len(body) > self._max_body:
            too_big = InvalidArgument(f"body exceeds {self._max_body} bytes", "INVALID_BODY")
            self._complete(item, error_response(too_big))
            return
        try:
            request = decode_request(body)
        except EnvelopeError as exc:
            self._complete(item, error_response(InvalidArgument(str(exc), "INVALID_BODY")))
            return
        item.method, item.uri = request.method, request.uri
        self._batch.append(
            Handle(
                request=request,
                reply=lambda r: self._complete(item, r),
                correlation_id=item.correlation_id,
            )
        )

    def _before_poll(self) -> None:
        """Right before the pump sleeps (trick pika-poll-hook): the router waits for the GIL
        from the tell on, so the tell is the last thing this thread does."""
        if self._batch:
            self._dispatch_batch()

    def _dispatch_batch(self) -> None:
        batch, self._batch = self._batch, []
        try:
            self._dispatch(batch)
        except Exception:  # the router is gone: answer 503, never leave the caller waiting
            log.exception("dispatch failed")
            for handle in batch:
                handle.reply(error_response(Unavailable("service is shutting down")))

    def _complete(self, item: _Delivery, response: Response) -> None:
        """The reply callback: any thread, once per delivery. Wakes the pump only if no
        wake-up is pending already (replies that finish together share one)."""
        item.response = response
        self._done.put(item)
        if not self._wake_pending:
            self._wake_pending = True
            self.link.wake()

    def after_pump(self) -> None:
        """Dispatch what this slice received; publish and ack every completed request, write
        them out at once, and only then log them (the access log line took ~120 µs of a
        reply's path at 1 in flight, bench/RESULTS.md issue 17). Repeats until nothing is
        left: the flush may have taken the wake-up of a reply completed meanwhile. With the
        poll hook the batch goes to the router from ``_before_poll`` instead, as late as can
        be."""
        while True:
            if self._batch and not self.link.polls_first:
                self._dispatch_batch()
            self._wake_pending = False
            finished: list[_Delivery] = []
            while True:
                try:
                    item = self._done.get_nowait()
                except queue.Empty:
                    break
                if self._finish(item):
                    finished.append(item)
            if not finished:
                return
            self.link.flush()
            for item in finished:
                assert item.response is not None
                self._observe(item, item.response)
            metrics.settle()  # this slice's deferred metrics, the replies written

    def _finish(self, item: _Delivery) -> bool:
        """Queue the reply and the ack (written by the next flush or pump); False if they
        are held for a reconnect."""
        channel = self._channel
        if channel is None or not channel.is_open or not self.link.connected:
            self._held.append(item)  # published after the reconnect
            return False
        assert item.response is not None
        # The channel's async core (trick pika-channel-core) queues the frames without flushing
        # per call; the next pump slice writes every reply and ack of this batch (BlockingChannel
        # polls the socket after each publish and each ack). Same signatures on both.
        core = pika_io.channel_core(channel) or channel
        try:
            if item.reply_to:
                props = pika.BasicProperties(
                    content_type="text/plain", correlation_id=item.correlation_id or None
                )
                core.basic_publish("", item.reply_to, encode(item.response), props)
            if item.generation == self._generation:
                core.basic_ack(item.tag)
        except AMQP_ERRORS as exc:
            self._held.append(item)
            self.link.lost(exc)
            self._channel = None
            return False
        self._in_flight -= 1
        self._handled += 1
        metrics.later(metrics.requests_in_flight.dec)
        return True

    def _observe(self, item: _Delivery, response: Response) -> None:
        elapsed_ms = (time.monotonic() - item.started) * 1000
        template = uri_template(item.method, item.uri)
        log.info(
            "rpc %s %s -> %d in %.1f ms",
            item.method,
            template,
            response.status_code,
            elapsed_ms,
            extra={
                "method": item.method,
                "uri_template": template,
                "status": response.status_code,
                "ms": round(elapsed_ms, 1),
                "correlation_id": item.correlation_id,
            },
        )

    def on_stop(self) -> None:
        self._channel = None
        super().on_stop()
