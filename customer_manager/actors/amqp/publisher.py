"""AmqpPublisher: the production publisher actor (the contract in ``actors/publisher.py``).

It owns one connection (``PumpActor``) with one channel in publisher-confirm mode that also
consumes direct reply-to (``amq.rabbitmq.reply-to``, auto-ack) for outgoing RPC.

* Outbox relay (docs/events.md#outbox-relay): on ``flush()`` and every ``relay_interval``
  seconds it claims entries from storage, publishes each (confirmed by the broker) and marks
  them done. While the broker is down nothing is claimed; a publish that fails leaves the
  rest of the batch leased to this owner, which claims it again with its next batch once it
  is reconnected (another replica gets it only when the lease runs out). Every
  ``relay_interval`` seconds too, broker or not, it counts the outbox for the backlog and
  oldest-entry-age gauges.
* ``call(queue, request, timeout, done)`` publishes with a fresh correlation id and returns
  at once; the reply (matched by correlation id) or a timeout (checked between pump slices)
  calls ``done``. A connection loss fails the pending calls with Unavailable.

Threading contract: every method runs in the actor's thread (``OutgoingCall`` and proxy calls
are messages); ``done`` callbacks are called from that thread.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
import uuid
from typing import Any

import msgspec
import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from customer_manager import metrics
from customer_manager.actors.amqp.confirms import ConfirmedChannel
from customer_manager.actors.amqp.deferred import DeferredCalls
from customer_manager.actors.amqp.link import AMQP_ERRORS, PumpActor
from customer_manager.actors.kit.flow import Done
from customer_manager.actors.kit.pool import Pool
from customer_manager.actors.publisher import Relaying
from customer_manager.actors.storage import StorageClient
from customer_manager.config import Settings
from customer_manager.errors import ServiceError, Unavailable
from customer_manager.messages.queues import DEFERRED_CALL, EVENT_EXCHANGE
from customer_manager.messages.records import unix
from customer_manager.messages.wire import Request, Response, encode
from customer_manager.storage.base import OutboxEntry, OutboxStats, Storage
from customer_manager.tricks import pika_io

log = logging.getLogger(__name__)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
TEXT = "text/plain"
_response_decoder = msgspec.json.Decoder(Response)


class _EventType(msgspec.Struct):
    type: str = ""


_event_type_decoder = msgspec.json.Decoder(_EventType)


class _Pending(msgspec.Struct, kw_only=True):
    done: Done
    deadline: float
    started: float
    queue: str
    request: Request


def default_owner() -> str:
    """An outbox lease owner name unique to this publisher (two in one process differ)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class AmqpPublisher(Relaying, PumpActor):
    """Events, webhooks and outgoing RPC over one connection (see the module docstring).

    ``storage`` is the storage pool (or a ``StorageClient`` on it) that holds the outbox.
    """

    slice_seconds = 0.1  # also the precision of outgoing-call timeouts

    def __init__(
        self,
        settings: Settings,
        storage: StorageClient | Pool,
        *,
        owner: str = "",
        relay_interval: float = 1.0,
        batch: int = 100,
        lease_seconds: float = 30.0,
        connection_name: str = "customer-manager-publisher",
        deferred_backoff: float = 5.0,
    ) -> None:
        super().__init__(settings.rabbitmq_address, connection_name)
        self._store = storage if isinstance(storage, StorageClient) else StorageClient(storage)
        self._owner = owner or settings.instance_id or default_owner()
        self._interval, self._batch, self._lease = relay_interval, batch, lease_seconds
        self._channel: BlockingChannel | None = None
        self._events: ConfirmedChannel | None = None
        self._pending: dict[str, _Pending] = {}
        self._reclaim = False  # set on (re)connect: the first claim takes our own leases
        self._next_relay = self._next_count = 0.0
        self._deferred = DeferredCalls(self.call, self._done, first_backoff=deferred_backoff)

    # -- the publisher contract ----------------------------------------------------------

    def flush(self) -> None:
        """Relay the outbox at the end of this slice."""
        self._next_relay = 0.0

    def ready(self) -> bool:
        return self.link.connected

    def relay_now(self) -> int:
        """Relay the whole outbox within this call and return how many entries went out
        (``customer-control`` calls it before it exits, so its events are not left behind)."""
        total = 0
        while self._channel is not None:
            published = self._relay()
            total += published
            if published < self._batch:
                break
        return total

    def call(self, queue: str, request: Request, timeout: float, done: Done) -> None:
        channel = self._channel
        if channel is None or not self.link.connected:
            done(None, Unavailable(f"broker unreachable, cannot call {queue}"))
            return
        corr, now = uuid.uuid4().hex, time.monotonic()
        props = pika.BasicProperties(
            content_type=TEXT, reply_to=DIRECT_REPLY_TO, correlation_id=corr
        )
        # Through the channel's core (trick pika-channel-core), as the consumer's replies: the
        # frames go out with the next pump slice, together with the calls and relays queued
        # meanwhile, instead of a poll and a send per call (BlockingChannel.basic_publish).
        core = pika_io.channel_core(channel) or channel
        try:
            core.basic_publish("", queue, encode(request), props)
        except AMQP_ERRORS as exc:
            self._lost(exc)
            done(None, Unavailable(f"broker unreachable, cannot call {queue}"))
            return
        self._pending[corr] = _Pending(
            done=done, deadline=now + timeout, started=now, queue=queue, request=request
        )

    # -- connection ----------------------------------------------------------------------

    def on_connect(self, connection: BlockingConnection) -> None:
        channel = connection.channel()
        channel.exchange_declare(EVENT_EXCHANGE, "fanout", durable=True)
        channel.basic_consume(DIRECT_REPLY_TO, self._on_reply, auto_ack=True)
        self._events = ConfirmedChannel(connection)
        self._channel = channel
        self._next_relay = 0.0
        self._reclaim = True  # what a failed publish left leased to us goes out now

    def _lost(self, exc: BaseException) -> None:
        self._channel = self._events = None
        self.link.lost(exc)
        self._fail_pending("connection to the broker lost")

    def after_pump(self) -> None:
        if self._channel is not None and not self.link.connected:
            self._channel = self._events = None
            self._fail_pending("connection to the broker lost")
        self._expire()
        now = time.monotonic()
        if now >= self._next_relay:
            self._next_relay = now + self._interval
            if self._channel is not None:
                self._relay()
        if now >= self._next_count:  # on its own clock: fresh in a long backlog, broker down
            self._next_count = now + self._interval
            self._count_backlog()

    def on_stop(self) -> None:
        self._fail_pending("publisher stopped")
        self._channel = self._events = None
        super().on_stop()

    # -- outgoing RPC --------------------------------------------------------------------

    def _on_reply(
        self, _channel: Any, _method: Any, props: pika.BasicProperties, body: bytes
    ) -> None:
        pending = self._pending.pop(props.correlation_id or "", None)
        if pending is None:
            return  # late reply to a call that timed out
        _observe(pending)
        try:
            response = _response_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pending.done(None, Unavailable(f"{pending.queue} sent an unreadable reply"))
            return
        pending.done(response, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for corr in [c for c, p in self._pending.items() if p.deadline <= now]:
            pending = self._pending.pop(corr)
            waited = now - pending.started
            pending.done(None, Unavailable(f"{pending.queue} did not answer in {waited:.1f} s"))

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for item in pending.values():
            item.done(None, Unavailable(f"{why}; no reply from {item.queue}"))

    # -- outbox relay --------------------------------------------------------------------

    def _relay(self) -> int:
        """Claim a batch, publish it with confirms, mark the published entries done; return
        how many were published and marked done."""
        try:
            entries: list[OutboxEntry] = self._store.call(
                Storage.outbox_claim,
                self._owner,
                self._batch,
                self._lease,
                reclaim_own=self._reclaim,
            )
        except Exception as exc:  # storage down or stopping: try again next interval
            log.warning("outbox claim failed: %s", _describe(exc))
            return 0
        self._reclaim = False
        published = self._publish_entries(entries)
        if published:
            try:
                self._store.call(Storage.outbox_done, published)
            except Exception as exc:  # they will be published again: at-least-once
                log.warning("outbox done failed: %s", _describe(exc))
                return 0
            metrics.outbox_relayed_total.inc(len(published))
        if len(entries) == self._batch and len(published) == len(entries):
            self._next_relay = 0.0  # more waiting: continue next slice
        return len(published)

    def _done(self, ids: list[int]) -> None:
        try:
            self._store.call(Storage.outbox_done, ids)
        except Exception as exc:  # sent again later: at-least-once
            log.warning("outbox done failed: %s", _describe(exc))

    def _count_backlog(self) -> None:
        try:
            stats: OutboxStats = self._store.call(Storage.outbox_stats)
        except Exception as exc:  # only gauges: never fail the relay for them
            log.debug("outbox size unavailable: %s", _describe(exc))
            return
        metrics.outbox_backlog.set(stats.size)
        metrics.outbox_oldest.since = unix(stats.oldest) if stats.oldest else None

    def _publish_entries(self, entries: list[OutboxEntry]) -> list[int]:
        """Publish a claimed batch with one wait for the broker's confirms; return the ids it
        acked (the others stay leased and are claimed again later: at-least-once)."""
        events = self._events
        if self._channel is None or events is None or not entries:
            return []
        calls = [e for e in entries if e.message.exchange == DEFERRED_CALL]
        if calls:  # sent as RPCs; done when answered (docs/lifecycle.md#outgoing-requests)
            self._deferred.take(calls)
            entries = [e for e in entries if e.message.exchange != DEFERRED_CALL]
            if not entries:
                return []
        started = time.monotonic()
        try:
            published = events.publish(entries)
        except AMQP_ERRORS as exc:
            log.warning("outbox publish failed, will retry: %r", exc)
            self._lost(exc)
            return []
        if len(published) < len(entries):
            log.warning("broker confirmed %d of %d outbox entries", len(published), len(entries))
        acked = set(published)
        for entry in entries:
            if entry.id in acked and entry.message.exchange == EVENT_EXCHANGE:
                _observe_event(entry.message.body, started)
        return published


def _observe_event(body: bytes, started: float) -> None:
    """The event metrics (docs/configuration.md#metrics-and-health) of one published event."""
    try:
        kind = _event_type_decoder.decode(body).type
    except (msgspec.DecodeError, msgspec.ValidationError):
        kind = ""
    elapsed_ms = int((time.monotonic() - started) * 1000)
    metrics.child(metrics.notify_process_time, kind).observe(elapsed_ms)
    metrics.child(metrics.notify_total, kind).inc()
    metrics.child(metrics.event_publish_total, kind).inc()


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ServiceError) else type(exc).__name__


def _observe(pending: _Pending) -> None:
    """The outgoing-RPC metric (docs/configuration.md#metrics-and-health): ``resource`` is
    e.g. ``agent/agents``."""
    service = pending.queue.split(".")[1].removesuffix("-manager") if "." in pending.queue else ""
    path = pending.request.uri.split("?", 1)[0].removeprefix("/v1/")
    elapsed_ms = int((time.monotonic() - pending.started) * 1000)
    metrics.request_process_time.labels(
        pending.queue, f"{service}/{path}", pending.request.method
    ).observe(elapsed_ms)
