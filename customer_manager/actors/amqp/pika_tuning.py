"""One send(2) per batch of frames instead of one per frame.

pika queues every AMQP frame as its own transmit buffer and ``_produce`` sends them one
``send`` call each: one reply costs four system calls (method, header and body frame, then
the ack), each releasing and re-taking the GIL. Joining the queued buffers before sending
writes the same bytes, in the same order, with one call. Applied once, at import, to the
plaintext transport both AMQP actors use (pika >= 1.2, < 2; a test pins the behaviour).
"""

from __future__ import annotations

from typing import Any

from pika.adapters.utils import io_services_utils as _io

_transport: Any = _io._AsyncPlaintextTransport
_original_produce = _transport._produce


def _produce_joined(self: Any) -> None:
    buffers = self._tx_buffers
    if len(buffers) > 1:
        joined = b"".join(buffers)
        buffers.clear()
        buffers.append(joined)
    _original_produce(self)


def install() -> None:
    """Idempotent: replace the plaintext transport's ``_produce`` with the joining one."""
    if _transport._produce is not _produce_joined:
        _transport._produce = _produce_joined
