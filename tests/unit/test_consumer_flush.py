"""ConsumerActor.after_pump (issue 17): the replies of a pump slice are written at once (one
zero-time flush), logged after the write, and a reply completed during that flush is not left
waiting for the next pump beat (its wake-up may be taken by the flush itself)."""

from __future__ import annotations

from typing import Any

from customer_manager.actors.amqp.consumer import ConsumerActor
from customer_manager.config import Settings
from customer_manager.messages.ops import Handle
from customer_manager.messages.wire import Request, ok


class FakeChannel:
    """The consumer's channel (and, through ``_impl``, its core): records what is sent."""

    is_open = True

    def __init__(self, log: list[str]) -> None:
        self._impl, self.log = self, log

    def basic_publish(self, exchange: str, routing_key: str, body: bytes, props: Any) -> None:
        self.log.append(f"publish {props.correlation_id}")

    def basic_ack(self, tag: int) -> None:
        self.log.append(f"ack {tag}")


class FakeLink:
    """Connected; ``flush`` writes what was queued and may run ``during_flush`` (a reply
    completed by another thread meanwhile)."""

    connected = True
    generation = 1
    polls_first = False  # the poll hook (trick pika-poll-hook): see the last test

    def __init__(self, log: list[str]) -> None:
        self.log, self.flushes = log, 0
        self.during_flush: list[Any] = []

    def flush(self) -> None:
        self.flushes += 1
        self.log.append("flush")
        while self.during_flush:
            self.during_flush.pop()()

    def wake(self) -> None:
        self.log.append("wake")


def _consumer(log: list[str]) -> tuple[ConsumerActor, FakeLink, list[Handle]]:
    handles: list[Handle] = []
    consumer = ConsumerActor(Settings(rabbitmq_address="amqp://unused"), handles.extend)
    link = FakeLink(log)
    consumer.link = link  # type: ignore[assignment]
    consumer._channel = FakeChannel(log)  # type: ignore[assignment]
    consumer._generation = 1
    consumer._observe = lambda item, response: log.append(f"log {item.correlation_id}")  # type: ignore[method-assign]
    return consumer, link, handles


def _deliver(consumer: ConsumerActor, tag: int) -> None:
    method = type("M", (), {"delivery_tag": tag, "redelivered": False})()
    props = type("P", (), {"reply_to": "q", "correlation_id": f"c{tag}"})()
    consumer._on_message(None, method, props, b'{"uri":"/v1/customers","method":"GET"}')  # type: ignore[arg-type]


def test_replies_are_written_before_they_are_logged() -> None:
    log: list[str] = []
    consumer, _link, handles = _consumer(log)
    _deliver(consumer, 1)
    consumer.after_pump()  # dispatches the delivery
    handles[0].reply(ok({"n": 1}))
    consumer.after_pump()
    assert log[log.index("publish c1") :] == ["publish c1", "ack 1", "flush", "log c1"]
    assert consumer.in_flight() == 0


def test_a_reply_completed_during_the_flush_is_sent_in_the_same_call() -> None:
    log: list[str] = []
    consumer, link, handles = _consumer(log)
    _deliver(consumer, 1)
    _deliver(consumer, 2)
    consumer.after_pump()
    handles[0].reply(ok({"n": 1}))
    link.during_flush.append(lambda: handles[1].reply(ok({"n": 2})))
    consumer.after_pump()
    assert "publish c2" in log and "ack 2" in log and link.flushes == 2
    assert consumer.in_flight() == 0
    assert Request(uri="/v1/customers", method="GET") == handles[1].request


def test_with_the_poll_hook_the_batch_goes_to_the_router_right_before_the_poll() -> None:
    """Trick pika-poll-hook: the tell to the router is the consumer's last Python before pika
    sleeps in ``poll`` (bench/RESULTS.md, sixth session), not the end of the pump slice."""
    log: list[str] = []
    consumer, link, handles = _consumer(log)
    link.polls_first = True
    _deliver(consumer, 1)
    consumer.after_pump()
    assert handles == []
    consumer._before_poll()
    assert [h.correlation_id for h in handles] == ["c1"]
    consumer._before_poll()  # nothing new: nothing told
    assert len(handles) == 1
    link.polls_first = False  # the connection is gone: after_pump dispatches again
    _deliver(consumer, 2)
    consumer.after_pump()
    assert [h.correlation_id for h in handles] == ["c1", "c2"]
