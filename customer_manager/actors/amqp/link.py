"""Shared AMQP plumbing for the consumer and the publisher actor
(docs/api.md#queues-and-delivery).

``AmqpLink`` owns one pika ``BlockingConnection`` and reconnects it with jittered backoff.
``PumpActor`` is a pykka actor that owns a link and pumps ``process_data_events`` in short
slices through a self-tell loop, so stop requests, asks and replies are handled between
slices. With the ``pykka-waking-inbox`` trick (``customer_manager/tricks/pykka_inbox.py``) its
inbox wakes the pump when any other message arrives, so an ask is answered at once rather than
at the end of the current slice.

Threading contract: a link and its connection are created and used only in the owning
actor's thread. The one exception is ``AmqpLink.wake()``, which any thread may call.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingConnection

from customer_manager import metrics
from customer_manager.config import mask_url
from customer_manager.tricks import pika_pump
from customer_manager.tricks.pykka_inbox import WakingInboxActor

log = logging.getLogger(__name__)

AMQP_ERRORS: tuple[type[BaseException], ...] = (pika.exceptions.AMQPError, OSError)
HEARTBEAT_SECONDS = 15
BLOCKED_TIMEOUT_SECONDS = 30.0


class Backoff:
    """Exponential backoff with jitter: ``base * 2**n`` capped at ``cap``, times 0.5..1.

    The cap is short (3 s; the Go service retries every 1 s): one attempt every few seconds
    costs a broker nothing, and the service is back within seconds of the broker."""

    def __init__(self, base: float = 0.5, cap: float = 3.0) -> None:
        self.base, self.cap, self.attempts = base, cap, 0

    def delay(self) -> float:
        raw: float = min(self.cap, self.base * 2.0**self.attempts)
        self.attempts += 1
        return raw * (0.5 + random.random() / 2)

    def reset(self) -> None:
        self.attempts = 0


def _noop() -> None:
    return None


class AmqpLink:
    """One BlockingConnection that comes back after a loss.

    ``on_connect(connection)`` runs in the owner's thread after every (re)connect; it declares
    the topology and starts consuming. ``generation`` counts connections, so callers can tell
    that a delivery tag belongs to an earlier channel. All methods except ``wake`` must be
    called from the owner's thread.

    ``before_poll`` (set by the owner before connecting) runs in the owner's thread right
    before the connection's I/O loop blocks in ``poll`` (trick ``pika-poll-hook``,
    ``tricks/pika_pump.py``): a hand-off made there is the last Python before the thread
    sleeps. ``polls_first`` tells whether it is installed on the current connection.
    """

    def __init__(
        self, url: str, name: str, on_connect: Callable[[BlockingConnection], None]
    ) -> None:
        self.params = pika.URLParameters(url)
        self.params.heartbeat = HEARTBEAT_SECONDS
        self.params.blocked_connection_timeout = BLOCKED_TIMEOUT_SECONDS
        self.params.connection_attempts = 1
        self.params.socket_timeout = 5
        self.params.client_properties = {"connection_name": name}
        self.name, self.safe_url = name, mask_url(url)
        self.generation = 0
        self._on_connect = on_connect
        self._conn: BlockingConnection | None = None
        self._backoff = Backoff()
        self._next_try = 0.0
        self._closed = False
        self._wakeup = threading.Event()
        self.before_poll: Callable[[], None] | None = None
        self._hooked = False
        self._fast_wake: Callable[[], None] | None = None

    @property
    def connection(self) -> BlockingConnection | None:
        return self._conn

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and conn.is_open

    @property
    def polls_first(self) -> bool:
        """True if ``before_poll`` runs before the current connection's next ``poll``."""
        return self._hooked and self._conn is not None

    def connect(self) -> bool:
        """Connect and run ``on_connect``; on failure schedule the next attempt."""
        if self._closed:
            return False
        try:
            conn = BlockingConnection(self.params)
        except AMQP_ERRORS as exc:
            self._schedule(f"cannot connect to {self.safe_url}: {exc!r}")
            return False
        self._conn = conn
        self.generation += 1
        hook = self.before_poll
        self._hooked = hook is not None and pika_pump.before_poll(conn, hook)
        self._fast_wake = pika_pump.waker(conn)
        try:
            self._on_connect(conn)
        except AMQP_ERRORS as exc:
            self.lost(exc)
            return False
        if self.generation > 1:
            metrics.amqp_reconnects_total.labels(self.name).inc()
        self._backoff.reset()
        log.info("amqp %s connected to %s", self.name, self.safe_url)
        return True

    def pump(self, time_limit: float) -> None:
        """Run the connection for up to ``time_limit`` seconds, or wait to reconnect."""
        conn = self._conn
        if conn is None:
            wait = self._next_try - time.monotonic()
            if not self._closed and wait <= 0:
                self.connect()
                return
            self._wakeup.wait(time_limit if self._closed else min(wait, time_limit))
            self._wakeup.clear()
            return
        try:
            conn.process_data_events(time_limit=time_limit)
        except AMQP_ERRORS as exc:
            self.lost(exc)

    def flush(self) -> None:
        """Write what is queued on the connection now (one poll, no waiting for input);
        callbacks of what arrived meanwhile are dispatched as in ``pump``."""
        conn = self._conn
        if conn is None:
            return
        try:
            conn.process_data_events(time_limit=0)
        except AMQP_ERRORS as exc:
            self.lost(exc)

    def lost(self, exc: BaseException) -> None:
        """Forget the connection after ``exc`` and schedule a reconnect."""
        self._fast_wake = None
        conn, self._conn = self._conn, None
        if conn is not None:
            _close_quietly(conn)
        self._schedule(f"connection lost: {exc!r}")

    def wake(self) -> None:
        """Make the current (or next) ``pump`` return at once. Safe from any thread. The
        event stays set while connected (only a pump without a connection clears it)."""
        if not self._wakeup.is_set():
            self._wakeup.set()
        fast = self._fast_wake
        if fast is not None:  # trick pika-fast-wake: no callback, timer and partial
            fast()
            return
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):  # closed meanwhile: the next pump notices
                conn.add_callback_threadsafe(_noop)

    def close(self) -> None:
        """Close for good: no more reconnects."""
        self._closed = True
        self._fast_wake = None
        conn, self._conn = self._conn, None
        if conn is not None:
            _close_quietly(conn)

    def _schedule(self, why: str) -> None:
        delay = self._backoff.delay()
        self._next_try = time.monotonic() + delay
        if not self._closed:
            log.warning("amqp %s: %s; retrying in %.1f s", self.name, why, delay)


def _close_quietly(conn: BlockingConnection) -> None:
    with contextlib.suppress(Exception):  # the connection is being discarded anyway
        if conn.is_open:
            conn.close()


class _Pump:
    """The self-told message that runs one pump slice."""


PUMP = _Pump()


class PumpActor(WakingInboxActor):
    """A pykka actor that owns an ``AmqpLink`` and pumps it in slices of ``slice_seconds``.

    Subclasses implement ``on_connect`` (declare, consume) and may implement ``after_pump``
    (work to do between slices: flush replies, check timeouts, relay the outbox). Both run
    in the actor's thread. The connection is opened in ``on_start`` (the actor's thread).
    """

    slice_seconds = 0.25  # any message or reply wakes the pump at once; this is the idle beat

    def __init__(self, url: str, name: str) -> None:
        super().__init__()
        self.link = AmqpLink(url, name, self.on_connect)
        self.set_waker(self.link.wake, quiet=PUMP)

    def on_connect(self, connection: BlockingConnection) -> None:
        raise NotImplementedError

    def after_pump(self) -> None:
        return None

    def on_start(self) -> None:
        self.link.connect()
        self.actor_ref.tell(PUMP)

    def on_receive(self, message: Any) -> Any:
        if message is not PUMP:
            return super().on_receive(message)
        try:
            self.link.pump(self.slice_seconds)
            self.after_pump()
        except Exception as exc:  # a bug must not kill the actor: drop the connection
            log.exception("amqp %s: unexpected error in the pump loop", self.link.name)
            self.link.lost(exc)
        self.actor_ref.tell(PUMP)
        return None

    def on_stop(self) -> None:
        self.link.close()
