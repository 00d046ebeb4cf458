"""Publishing a batch with publisher confirms, waiting once for the whole batch.

``BlockingChannel.basic_publish`` in confirm mode waits for the broker's confirm of every
message before it returns: one round trip per event. ``ConfirmedChannel`` publishes a batch
through the channel's async core and then pumps the connection until every message of the
batch is confirmed (ack or nack) or the timeout passes, so a batch costs one round trip. The
core is the ``pika-channel-core`` trick (``customer_manager/tricks/pika_io.py``); without it,
the batch goes out through the BlockingChannel in confirm mode, one round trip per message.

Threading contract: created and used only in the thread that owns the connection.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pika
import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingConnection

from customer_manager.storage.base import OutboxEntry
from customer_manager.tricks import pika_io

CONFIRM_TIMEOUT = 5.0
_PROPS = pika.BasicProperties(content_type="text/plain")


class ConfirmedChannel:
    """A channel in confirm mode whose ``publish`` returns the ids the broker acked."""

    def __init__(self, connection: BlockingConnection, timeout: float = CONFIRM_TIMEOUT) -> None:
        self._connection, self._timeout = connection, timeout
        self._channel = connection.channel()  # keeps the BlockingChannel wrapper alive
        self._core: Any = pika_io.channel_core(self._channel)
        self._next_tag = 1
        self._waiting: dict[int, bool | None] = {}
        if self._core is None:
            self._channel.confirm_delivery()
            return
        selected: list[bool] = []
        self._core.confirm_delivery(
            ack_nack_callback=self._on_confirm, callback=lambda _frame: selected.append(True)
        )
        self._pump_until(lambda: bool(selected))
        if not selected:
            raise pika.exceptions.AMQPChannelError("confirm.select was not answered")

    def publish(self, entries: Sequence[OutboxEntry]) -> list[int]:
        """Publish ``entries`` in order; return the ids of those the broker acked, in order.
        Raises pika's connection errors (the caller reconnects; unconfirmed entries stay)."""
        if self._core is None:
            return self._publish_one_by_one(entries)
        tags: dict[int, int] = {}
        for entry in entries:
            msg = entry.message
            self._core.basic_publish(msg.exchange, msg.routing_key, msg.body, _PROPS)
            tags[self._next_tag] = entry.id
            self._waiting[self._next_tag] = None
            self._next_tag += 1
        self._pump_until(lambda: all(self._waiting[t] is not None for t in tags))
        acked = [entry_id for tag, entry_id in tags.items() if self._waiting.get(tag)]
        for tag in tags:
            self._waiting.pop(tag, None)
        return acked

    def _publish_one_by_one(self, entries: Sequence[OutboxEntry]) -> list[int]:
        acked: list[int] = []
        for entry in entries:
            msg = entry.message
            try:
                self._channel.basic_publish(msg.exchange, msg.routing_key, msg.body, _PROPS)
            except (pika.exceptions.NackError, pika.exceptions.UnroutableError):
                continue  # not confirmed: stays leased, claimed again later
            acked.append(entry.id)
        return acked

    def _pump_until(self, done: Any) -> None:
        deadline = time.monotonic() + self._timeout
        while not done() and time.monotonic() < deadline:
            self._connection.process_data_events(time_limit=0.05)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        ack = isinstance(method, pika.spec.Basic.Ack)
        for tag in self._waiting:
            if tag == method.delivery_tag or (method.multiple and tag <= method.delivery_tag):
                self._waiting[tag] = ack
