"""The pika tricks (customer_manager/tricks/pika_io.py) and the pika behaviour they rely on:
the plaintext transport's ``_produce`` sends its queued buffers, and a BlockingChannel keeps
its async core in ``_impl`` with the same publish/ack signatures and a callback confirm mode."""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pika.channel
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.utils.io_services_utils import _AsyncPlaintextTransport

from customer_manager.tricks import pika_io


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


@pytest.fixture
def off() -> Iterator[None]:
    pika_io.disable()
    yield
    pika_io.enable()


def test_frames_are_joined_into_one_send() -> None:
    pika_io.enable()
    pika_io.enable()  # idempotent
    sock = FakeSocket()
    t = transport(sock, b"method", b"header", b"body", b"ack")
    t._produce()
    assert sock.sent == [b"methodheaderbodyack"]
    assert not t._tx_buffers and t._tx_buffered_byte_count == 0


def test_a_partial_send_keeps_the_rest_in_order() -> None:
    pika_io.enable()
    sock = FakeSocket(accept=5)
    t = transport(sock, b"abc", b"defg", b"hi")
    t._produce()
    assert b"".join(sock.sent) == b"abcdefghi" and all(len(s) <= 5 for s in sock.sent)
    assert t._tx_buffered_byte_count == 0


def test_without_the_trick_pika_sends_each_frame_on_its_own(off: None) -> None:
    assert not pika_io.joined_send_on()
    sock = FakeSocket()
    t = transport(sock, b"method", b"header", b"body")
    t._produce()
    assert sock.sent == [b"method", b"header", b"body"]


def test_channel_core_is_the_blocking_channels_async_channel(off: None) -> None:
    impl = mock.Mock(spec=pika.channel.Channel, channel_number=1)
    channel = BlockingChannel(impl, mock.Mock())
    assert pika_io.channel_core(channel) is None
    pika_io.enable()
    assert pika_io.channel_core(channel) is impl


@pytest.mark.parametrize("method", ["basic_publish", "basic_ack"])
def test_the_core_takes_the_blocking_channels_arguments(method: str) -> None:
    """The consumer calls either with the same positional arguments."""
    core = list(inspect.signature(getattr(pika.channel.Channel, method)).parameters)
    blocking = list(inspect.signature(getattr(BlockingChannel, method)).parameters)
    assert core == blocking


def test_the_core_confirms_through_callbacks() -> None:
    params = inspect.signature(pika.channel.Channel.confirm_delivery).parameters
    assert list(params)[1:3] == ["ack_nack_callback", "callback"]
