"""The actor kit: least-in-flight pool, completion exactly once, supervision, redelivery."""

from __future__ import annotations

import threading
from typing import Any

import pykka
import pytest

from customer_manager import metrics
from customer_manager.actors.kit.flow import Forward
from customer_manager.actors.kit.members import Crash, PoolMember
from customer_manager.actors.kit.pool import Pool
from customer_manager.actors.kit.timing import Ticker
from customer_manager.errors import Unavailable


class Echo(PoolMember):
    def handle(self, message: Any) -> Any:
        if isinstance(message, threading.Event):
            assert message.wait(10)
            return "released"
        if message == "boom":
            raise ValueError("boom")
        return (message, self.actor_ref.actor_urn)


class FailingSetup(PoolMember):
    def setup(self) -> None:
        raise RuntimeError("cannot connect")


def echo_pool(size: int = 3) -> Pool:
    return Pool("echo", size, lambda pool: Echo.start(pool)).start()


def dead_letters(pool: str) -> float:
    return metrics.dead_letters_total.labels(pool)._value.get()  # type: ignore[no-any-return]


def test_ask_returns_value_and_raises_handler_error() -> None:
    pool = echo_pool()
    assert pool.ask(1, timeout=5)[0] == 1
    with pytest.raises(ValueError, match="boom"):
        pool.ask("boom", timeout=5)
    assert pool.ask(2, timeout=5)[0] == 2  # the member lived on
    assert pool.in_flight() == 0


class Forwarder(PoolMember):
    """Hands ``(target, message, then)`` on to ``target`` instead of answering itself."""

    def handle(self, message: Any) -> Any:
        target, inner, then = message
        return Forward(target, inner, then, 5.0)


def test_forward_finishes_the_work_in_the_other_pool() -> None:
    front = Pool("front", 2, lambda pool: Forwarder.start(pool)).start()
    back = echo_pool(2)
    back_urns = {ref.actor_urn for ref in back.members()}
    seen: list[str] = []

    def then(value: Any, error: BaseException | None) -> Any:
        seen.append(threading.current_thread().name)
        assert error is None and value[1] in back_urns  # handled by a back member
        return ("then", value[0])

    assert front.ask((back, 7, then), timeout=5) == ("then", 7)
    assert len(seen) == 1 and front.in_flight() == back.in_flight() == 0

    # ``then`` sees the other pool's error, may raise its own, or forward again
    def to_error(value: Any, error: BaseException | None) -> Any:
        assert isinstance(error, ValueError)
        raise LookupError("mapped")

    with pytest.raises(LookupError, match="mapped"):
        front.ask((back, "boom", to_error), timeout=5)

    def again(value: Any, error: BaseException | None) -> Any:
        return Forward(back, value[0] + 1, lambda v, e: v[0], 5.0)

    assert front.ask((back, 1, again), timeout=5) == 2

    # a stopped target pool completes the work with Unavailable, never leaves it hanging
    back.stop(5)
    with pytest.raises(Unavailable):
        front.ask((back, 1, lambda v, e: (_ for _ in ()).throw(e) if e else v), timeout=5)
    front.stop(5)


def test_least_in_flight_avoids_a_busy_member() -> None:
    pool = echo_pool(2)
    gate = threading.Event()
    blocked = pykka.ThreadingFuture()
    pool.submit(gate, lambda value, error: blocked.set(value), timeout=5)
    busy = {pool.ask(i, timeout=5)[1] for i in range(10)}
    assert len(busy) == 1  # every quick message went to the idle member
    gate.set()
    assert blocked.get(timeout=5) == "released"


def test_crashed_member_is_replaced_and_its_queue_redelivered() -> None:
    pool = echo_pool(1)
    gate = threading.Event()
    first = pykka.ThreadingFuture()
    victim = pool.members()[0]
    pool.submit(gate, lambda value, error: first.set(error), timeout=5)
    victim.tell(Crash())  # queued behind the blocked work
    results: list[pykka.ThreadingFuture[Any]] = []
    for i in range(5):  # queued behind the crash: never handled by the victim
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        pool.submit(i, lambda value, error, f=future: f.set((value, error)), timeout=10)
        results.append(future)
    before = dead_letters("echo")
    gate.set()
    assert first.get(timeout=5) is None
    assert victim.actor_stopped.wait(5)
    got = [f.get(timeout=10) for f in results]
    assert [value[0] for value, error in got] == [0, 1, 2, 3, 4]
    assert all(value[1] != victim.actor_urn for value, _ in got)
    assert pool.wait_full(5) and victim not in pool.members()
    assert dead_letters("echo") - before == 5


def test_setup_failures_back_off_and_queued_work_times_out() -> None:
    pool = Pool("broken", 1, lambda pool: FailingSetup.start(pool)).start()
    with pytest.raises(Unavailable):
        pool.ask("x", timeout=0.5)
    assert not pool.wait_full(0.2)


def test_stop_completes_queued_work_with_unavailable() -> None:
    pool = echo_pool(1)
    gate = threading.Event()
    pool.submit(gate, lambda value, error: None, timeout=5)
    queued = pykka.ThreadingFuture()
    pool.submit("later", lambda value, error: queued.set(error), timeout=5)
    pool.shutdown()
    gate.set()
    refused = pykka.ThreadingFuture()
    pool.submit("after", lambda value, error: refused.set(error), timeout=5)
    assert isinstance(refused.get(timeout=5), Unavailable)
    assert queued.get(timeout=5) is None  # already dispatched: it is still handled
    pool.stop(5)


class Counter(pykka.ThreadingActor):
    def __init__(self, done: threading.Event) -> None:
        super().__init__()
        self.count, self.done = 0, done

    def on_receive(self, message: Any) -> Any:
        self.count += 1
        if self.count >= 3:
            self.done.set()


def test_ticker_tells_periodically_until_stopped() -> None:
    done = threading.Event()
    ref = Counter.start(done)
    ticker = Ticker(ref, "tick", 0.01).start()
    assert done.wait(5)
    ticker.stop()


def test_queue_depth_and_in_flight_gauges() -> None:
    """The pools' mailbox depth and in-flight works are exported at scrape time."""
    from prometheus_client import REGISTRY

    gate = threading.Event()

    class Slow(PoolMember):
        def handle(self, message: Any) -> Any:
            gate.wait(5)
            return message

    pool = Pool("gauge-test", 1, lambda p: Slow.start(p)).start()
    try:
        done = threading.Semaphore(0)
        for i in range(3):
            pool.submit(i, lambda value, error: done.release(), timeout=10)
        labels = {"pool": "gauge-test"}
        assert REGISTRY.get_sample_value("customer_manager_pool_in_flight", labels) == 3
        assert REGISTRY.get_sample_value("customer_manager_pool_queued", labels) in (2, 3)
        gate.set()
        for _ in range(3):
            assert done.acquire(timeout=5)
        assert REGISTRY.get_sample_value("customer_manager_pool_in_flight", labels) == 0
        assert REGISTRY.get_sample_value("customer_manager_pool_queued", labels) == 0
    finally:
        pool.stop(5)
