"""The optional delayed-message exchange ``bin-manager.delay`` (docs/api.md).

The Go service declares it with the ``x-delayed-message`` type and binds the request queue to
it, so other services can send delayed requests. Brokers without the plugin reject that type
by closing the whole connection, so presence is checked without risking the consumer's
connection: a passive declare on a throwaway channel first, then, once per process, a declare
on a throwaway connection.

Threading contract: called only from the consumer's thread, with its connection.
"""

from __future__ import annotations

import logging

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from customer_manager.actors.amqp.link import AMQP_ERRORS
from customer_manager.messages.queues import DELAY_EXCHANGE, REQUEST_QUEUE

log = logging.getLogger(__name__)

_ARGUMENTS = {"x-delayed-type": "direct"}


def delay_plugin_present(connection: BlockingConnection, params: pika.ConnectionParameters) -> bool:
    """True if the broker can hold the delay exchange (logged once when it cannot)."""
    present = _delay_exchange_exists(connection) or _probe_plugin(params)
    if not present:
        log.warning("broker lacks x-delayed-message; %s not declared", DELAY_EXCHANGE)
    return present


def declare_delay_exchange(channel: BlockingChannel) -> None:
    """Declare ``bin-manager.delay`` and bind the request queue to it."""
    channel.exchange_declare(
        DELAY_EXCHANGE, "x-delayed-message", durable=True, arguments=_ARGUMENTS
    )
    channel.queue_bind(REQUEST_QUEUE, DELAY_EXCHANGE, routing_key=REQUEST_QUEUE)


def _delay_exchange_exists(connection: BlockingConnection) -> bool:
    """Passive declare on a throwaway channel (a 404 closes only that channel)."""
    try:
        channel = connection.channel()
        channel.exchange_declare(DELAY_EXCHANGE, passive=True)
    except pika.exceptions.ChannelClosedByBroker:
        return False
    channel.close()
    return True


def _probe_plugin(params: pika.ConnectionParameters) -> bool:
    try:
        probe = pika.BlockingConnection(params)
    except AMQP_ERRORS:
        return False
    try:
        probe.channel().exchange_declare(
            DELAY_EXCHANGE, "x-delayed-message", durable=True, arguments=_ARGUMENTS
        )
    except AMQP_ERRORS:
        return False
    finally:
        if probe.is_open:
            probe.close()
    return True


class _ProbeNoise(logging.Filter):
    """Drops pika's own warnings about the delayed-exchange probe (expected, logged once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return DELAY_EXCHANGE not in text and "x-delayed-message" not in text


for _name in ("pika.channel", "pika.adapters.blocking_connection"):
    logging.getLogger(_name).addFilter(_ProbeNoise())
