"""The actor kit: least-in-flight pool, completion exactly once, supervision, redelivery."""

from __future__ import annotations

import threading
import time
from typing import Any

import pykka
import pytest

from customer_manager.actors.kit.flow import BlockingInStep, Flow
from customer_manager.actors.kit.members import Crash, PoolMember
from customer_manager.actors.kit.pool import Pool
from customer_manager.actors.kit.timing import Ticker
from customer_manager.errors import Unavailable
from tests.support.metrics import count, sample


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
    return count("customer_manager_dead_letters_total", pool=pool)


def test_ask_returns_value_and_raises_handler_error() -> None:
    pool = echo_pool()
    assert pool.ask(1, timeout=5)[0] == 1
    with pytest.raises(ValueError, match="boom"):
        pool.ask("boom", timeout=5)
    assert pool.ask(2, timeout=5)[0] == 2  # the member lived on
    assert pool.in_flight() == 0


class Flows(PoolMember):
    """Answers a message ``build`` with the Flow that ``build()`` returns."""

    def handle(self, message: Any) -> Any:
        return message()


def test_flow_finishes_the_work_in_the_other_pool() -> None:
    front = Pool("front", 2, lambda pool: Flows.start(pool)).start()
    back = echo_pool(2)
    back_urns = {ref.actor_urn for ref in back.members()}
    steps: list[str] = []

    def step(value: Any) -> Any:
        steps.append(threading.current_thread().name)
        assert value[1] in back_urns  # the step runs where the value was made
        return ("then", value[0])

    assert front.ask(lambda: Flow(back, 7, 5.0).then(step), timeout=5) == ("then", 7)
    assert len(steps) == 1 and front.in_flight() == back.in_flight() == 0

    # errors skip the steps; recover maps them; a step may hop again; Flow.of has no hop
    with pytest.raises(ValueError, match="boom"):
        front.ask(lambda: Flow(back, "boom", 5.0).then(step), timeout=5)
    recovered = lambda: Flow(back, "boom", 5.0).then(step).recover(ValueError, str)  # noqa: E731
    assert front.ask(recovered, timeout=5) == "boom"
    again = lambda: Flow(back, 1, 5.0).then(lambda v: Flow(back, v[0] + 1, 5.0))  # noqa: E731
    assert front.ask(lambda: again().then(lambda v: v[0]), timeout=5) == 2
    tapped: list[Any] = []
    kept = lambda: Flow.of(3).tap(lambda v: Flow(back, v, 5.0).then(tapped.append))  # noqa: E731
    assert front.ask(kept, timeout=5) == 3 and tapped[0][0] == 3  # the tap ran, the value kept

    # a stopped target pool completes the work with Unavailable, never leaves it hanging
    back.stop(5)
    with pytest.raises(Unavailable):
        front.ask(lambda: Flow(back, 1, 5.0), timeout=5)
    front.stop(5)


def test_a_step_that_waits_for_an_actor_fails_at_once() -> None:
    """A step runs inside another pool's member: waiting there could stall that pool, so the
    kit refuses the wait at once instead of letting it run into a timeout."""
    front = Pool("front", 1, lambda pool: Flows.start(pool)).start()
    back = echo_pool(1)

    def blocking_step(value: Any) -> Any:
        return back.ask(value[0], timeout=5)  # waits for a member of the pool it runs in

    started = time.monotonic()
    with pytest.raises(BlockingInStep):
        front.ask(lambda: Flow(back, 1, 5.0).then(blocking_step), timeout=5)
    assert time.monotonic() - started < 1.0
    assert back.ask(2, timeout=5)[0] == 2  # the pool lived on
    front.stop(5)
    back.stop(5)


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


class Batching(Echo):
    """Echo that runs queued ``("b", n)`` messages together (records each batch); a batch
    holding ``("b", "boom")`` raises, one holding ``("b", "short")`` returns one outcome."""

    batch_limit = 3
    batches_seen: list[list[Any]] = []

    def batches(self, message: Any) -> bool:
        return isinstance(message, tuple) and message[0] == "b"

    def handle_batch(self, messages: list[Any]) -> list[tuple[Any, BaseException | None]]:
        Batching.batches_seen.append(messages)
        if ("b", "boom") in messages:
            raise RuntimeError("batch failed")
        if ("b", "short") in messages:
            return [("only one", None)]
        return [(("batched", m[1]), None) for m in messages]


def submitted(pool: Pool, message: Any) -> pykka.ThreadingFuture[Any]:
    future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    pool.submit(message, lambda value, error: future.set((value, error)), timeout=10)
    return future


def test_a_member_runs_its_queued_batchable_works_together_and_each_completes_once() -> None:
    Batching.batches_seen = []
    pool = Pool("batching", 1, lambda pool: Batching.start(pool)).start()
    gate = threading.Event()
    blocked = submitted(pool, gate)
    first = [submitted(pool, m) for m in [("b", 1), "alone", ("b", 2), ("b", 3), ("b", 4)]]
    gate.set()
    assert blocked.get(timeout=5) == ("released", None)
    values = [f.get(timeout=5)[0] for f in first]
    assert values[0] == ("batched", 1) and values[2:4] == [("batched", 2), ("batched", 3)]
    assert values[1][0] == "alone"  # not batchable: handled alone, in its turn
    assert values[4][0] == ("b", 4)  # over the limit (3): alone, after "alone"
    assert Batching.batches_seen == [[("b", 1), ("b", 2), ("b", 3)]]
    assert pool.in_flight() == 0

    # a batch that raises, or gives a wrong number of outcomes, fails every work in it
    for odd in ["boom", "short"]:
        gate = threading.Event()
        blocked = submitted(pool, gate)
        batch = [submitted(pool, m) for m in [("b", 5), ("b", odd)]]
        gate.set()
        for future in batch:
            value, error = future.get(timeout=5)
            assert value is None and isinstance(error, RuntimeError)
    assert pool.ask(("b", 7), timeout=5)[0] == ("b", 7)  # alone: plain handle
    assert pool.in_flight() == 0
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
        assert sample("customer_manager_pool_in_flight", **labels) == 3
        assert sample("customer_manager_pool_queued", **labels) in (2, 3)
        gate.set()
        for _ in range(3):
            assert done.acquire(timeout=5)
        assert sample("customer_manager_pool_in_flight", **labels) == 0
        assert sample("customer_manager_pool_queued", **labels) == 0
    finally:
        pool.stop(5)
