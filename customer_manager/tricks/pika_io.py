"""pika's private parts: the transport's send loop and a BlockingChannel's async core.

Both measured on pika 1.4.4 (pinned ``>=1.4.4,<1.5`` in setup.cfg); ``tricks.install()`` turns
them on, and ``tests/unit/test_tricks_pika.py`` pins the pika behaviour they rely on.

* **Joined send** (``_AsyncPlaintextTransport._produce``). pika queues every AMQP frame as its
  own transmit buffer and ``_produce`` sends them one ``send`` call each: a reply costs four
  system calls (method, header, body frame, then the ack), each releasing and re-taking the
  GIL. Joining the queued buffers first writes the same bytes, in the same order, with one
  call. Measured (bench/RESULTS.md item 1): ``_sigint_safe_send`` was the top self-time entry,
  21 % of the samples of ``get``; afterwards 1,413 sends for 3,973 replies (from ~4 per reply).
* **Channel core** (``BlockingChannel._impl``, a ``pika.channel.Channel``). Its
  ``basic_publish``/``basic_ack`` queue frames without the full ``_flush_output`` poll that
  the BlockingChannel runs after each call (item 1: replies and acks of a pump slice go out
  together), and its ``confirm_delivery`` takes a callback, so a batch of events waits once
  for all its confirms (item 5: create 2.4 → 1.9 ms of CPU, 396 → 478 req/s). The publisher's
  outgoing RPC queues on it too (issue 17: create with the agent check 0.14 → 0.15 × echo,
  1.89 → 1.58 ms of daemon CPU per create). Off, callers
  get ``None`` and use the BlockingChannel (a flush per call, a round trip per event).
"""

from __future__ import annotations

from typing import Any

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.adapters.utils import io_services_utils as _io

_transport: Any = _io._AsyncPlaintextTransport
_original_produce = _transport._produce
_core_enabled = False


def _produce_joined(self: Any) -> None:
    buffers = self._tx_buffers
    if len(buffers) > 1:
        joined = b"".join(buffers)
        buffers.clear()
        buffers.append(joined)
    _original_produce(self)


def enable() -> None:
    """Idempotent: joined sends for every plaintext connection, channel cores for callers."""
    global _core_enabled
    _transport._produce = _produce_joined
    _core_enabled = True


def disable() -> None:
    """Back to pika's own behaviour (tests)."""
    global _core_enabled
    _transport._produce = _original_produce
    _core_enabled = False


def joined_send_on() -> bool:
    return _transport._produce is _produce_joined


def channel_core(channel: BlockingChannel) -> Any | None:
    """The async ``pika.channel.Channel`` under ``channel`` while the trick is on, else None.
    Use it only in the thread that owns the connection, as the BlockingChannel itself."""
    return channel._impl if _core_enabled else None


def server_properties(connection: BlockingConnection) -> dict[str, Any]:
    """The broker's ``server_properties`` (version, product) from the connection's core; the
    bench reports the version. Empty if pika no longer has them there."""
    props = getattr(getattr(connection, "_impl", None), "server_properties", None)
    return props if isinstance(props, dict) else {}
