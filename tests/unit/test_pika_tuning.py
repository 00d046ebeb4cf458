"""The pika transport patch: queued frames go out in one send, same bytes, same order."""

from __future__ import annotations

from collections import deque
from typing import Any

from pika.adapters.utils.io_services_utils import _AsyncPlaintextTransport

from customer_manager.actors.amqp import pika_tuning


class FakeSocket:
    def __init__(self, accept: int = 1 << 20) -> None:
        self.sent: list[bytes] = []
        self.accept = accept

    def send(self, data: bytes) -> int:
        taken = bytes(data[: self.accept])
        self.sent.append(taken)
        return len(taken)


def transport(sock: FakeSocket, *chunks: bytes) -> Any:
    t: Any = object.__new__(_AsyncPlaintextTransport)
    t._sock, t._tx_buffers = sock, deque(chunks)
    t._tx_buffered_byte_count = sum(map(len, chunks))
    return t


def test_frames_are_joined_into_one_send() -> None:
    pika_tuning.install()
    pika_tuning.install()  # idempotent
    sock = FakeSocket()
    t = transport(sock, b"method", b"header", b"body", b"ack")
    t._produce()
    assert sock.sent == [b"methodheaderbodyack"]
    assert not t._tx_buffers and t._tx_buffered_byte_count == 0


def test_a_partial_send_keeps_the_rest_in_order() -> None:
    pika_tuning.install()
    sock = FakeSocket(accept=5)
    t = transport(sock, b"abc", b"defg", b"hi")
    t._produce()
    assert b"".join(sock.sent) == b"abcdefghi" and all(len(s) <= 5 for s in sock.sent)
    assert t._tx_buffered_byte_count == 0
