"""What travels through a pool (``kit/pool.py``): the ``Work`` envelope, its completion
(``deliver``), ``Flow`` chains and the one-shot ``Waiter`` behind ``Pool.ask``.

A handler that needs another actor's result does not wait for it: it returns a ``Flow``, a
first hop (a message for a target such as a pool) followed by steps, written top to bottom::

    return (
        deps.customer(customer_id)          # hop: the cache actor (storage on a miss)
        .then(insert_key)                   # step: build the key, hop to storage
        .then(deps.saved)                   # step: hop to the cache to refresh the entry
        .then(ok)                           # step: the reply
    )

Each step runs in the thread that produced its input (a cache or storage actor) and may return
a value or the next ``Flow``. A pool calls ``deliver(work.done, value, error)`` exactly once per
work; when the value is a Flow, the work is done only when the Flow's last step is. This saves
the hop back to the worker between steps (~33 µs of CPU per round trip between two threads).

Rule: a step never blocks, because it runs inside another pool's member. ``Waiter.result``
(behind ``Pool.ask``) raises ``BlockingInStep`` at once when called from a step, so a step that
asks an actor fails loudly instead of stalling a pool until a timeout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, overload

import msgspec

from customer_manager.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")
E = TypeVar("E", bound=BaseException)
Done = Callable[[Any, BaseException | None], None]
Finish = Callable[[Any, BaseException | None], Any]


class Target(Protocol):
    """Where a Flow's hop goes: ``submit`` calls ``done(value, error)`` exactly once, from the
    thread that finished the message (``Pool`` is one; the outgoing-RPC port another)."""

    def submit(self, message: Any, done: Done, *, timeout: float) -> None: ...


class Work(msgspec.Struct, kw_only=True):
    """A message in flight through a pool. Mutated only under the pool's lock."""

    id: int
    message: Any
    done: Done
    deadline: float
    member: str = ""
    started: bool = False


class BlockingInStep(RuntimeError):
    """A step of a Flow tried to wait for an actor (see the module doc)."""


def _result(value: Any, error: BaseException | None) -> Any:
    if error is not None:
        raise error
    return value


class Flow(Generic[T]):
    """A value that ``target`` will produce from ``message``, and the steps that follow it.
    ``Flow.of(value)`` is a Flow with no hop (the value is there already)."""

    __slots__ = ("finish", "message", "target", "timeout")

    def __init__(
        self, target: Target | None, message: Any, timeout: float, finish: Finish = _result
    ) -> None:
        self.target, self.message, self.timeout, self.finish = target, message, timeout, finish

    @staticmethod
    def of(value: U) -> Flow[U]:
        return Flow(None, value, 0.0)

    @overload
    def then(self, step: Callable[[T], Flow[U]]) -> Flow[U]: ...
    @overload
    def then(self, step: Callable[[T], U | Flow[U]]) -> Flow[U]: ...
    def then(self, step: Callable[[T], Any]) -> Flow[Any]:
        """Run ``step`` on the result; its value (or its Flow's) is the new result."""
        finish = self.finish

        def chained(value: Any, error: BaseException | None) -> Any:
            result = finish(value, error)
            return result.then(step) if isinstance(result, Flow) else step(result)

        return Flow(self.target, self.message, self.timeout, chained)

    def tap(self, step: Callable[[T], Any]) -> Flow[T]:
        """Run ``step`` (a value or a Flow) for its effect, then go on with the same result."""

        def keep(value: T) -> T | Flow[T]:
            effect = step(value)
            return effect.then(lambda _: value) if isinstance(effect, Flow) else value

        return self.then(keep)

    def recover(self, kind: type[E], fallback: Callable[[E], U]) -> Flow[T | U]:
        """Turn an error of ``kind`` raised so far into ``fallback(error)``."""
        finish = self.finish

        def guarded(value: Any, error: BaseException | None) -> Any:
            try:
                result = finish(value, error)
            except kind as exc:
                return fallback(exc)
            return result.recover(kind, fallback) if isinstance(result, Flow) else result

        return Flow(self.target, self.message, self.timeout, guarded)


_in_step = threading.local()


def deliver(done: Done, value: Any, error: BaseException | None) -> None:
    """Call ``done(value, error)``, following a ``Flow`` to its end first; never raises."""
    if error is None and isinstance(value, Flow):
        flow: Flow[Any] = value

        def resumed(result: Any, failure: BaseException | None) -> None:
            outer = getattr(_in_step, "active", False)
            _in_step.active = True
            try:
                following, error_ = flow.finish(result, failure), None
            except Exception as exc:
                following, error_ = None, exc
            finally:
                _in_step.active = outer
            deliver(done, following, error_)

        if flow.target is None:
            resumed(flow.message, None)
        else:
            flow.target.submit(flow.message, resumed, timeout=flow.timeout)
        return
    try:
        done(value, error)
    except Exception:
        log.exception("completion callback failed")


class Waiter:
    """The cheapest one-shot hand-over between two threads: a lock held until ``done``."""

    __slots__ = ("error", "lock", "value")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.value: Any = None
        self.error: BaseException | None = None

    def done(self, value: Any, error: BaseException | None) -> None:
        self.value, self.error = value, error
        self.lock.release()

    def result(self, timeout: float, who: str) -> Any:
        """Block until ``done``: the value, or raise the error (Unavailable naming ``who``
        if nothing came within ``timeout`` seconds). BlockingInStep inside a Flow's step."""
        if getattr(_in_step, "active", False):
            raise BlockingInStep(f"a Flow step waited for {who}; return a Flow instead")
        if not self.lock.acquire(timeout=timeout):
            raise Unavailable(f"{who} did not answer within {timeout:g} s")
        if self.error is not None:
            raise self.error
        return self.value


def wait(flow: Flow[T], timeout: float, who: str) -> T:
    """Follow ``flow`` to its end and block for the result (for a caller outside the actor
    system, such as the CLI or a test); Unavailable after ``timeout`` seconds."""
    waiter = Waiter()
    deliver(waiter.done, flow, None)
    result: T = waiter.result(timeout, who)
    return result
