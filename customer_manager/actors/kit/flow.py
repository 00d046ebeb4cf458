"""What travels through a pool (``actors/kit/pool.py``): the ``Work`` envelope, its completion
(``deliver``), ``Forward`` continuations and the one-shot ``Waiter`` behind ``Pool.ask``.

A pool calls ``deliver(work.done, value, error)`` exactly once per work. If a handler returned
a ``Forward``, the work is not done yet: its message is submitted to the other pool, and the
continuation's result (or error) completes the original work, from the thread that finished
the forwarded one. A worker thus hands a read to the cache actors together with what to do
with the result instead of waiting for it, which saves the thread hop back (~33 µs of CPU
per round trip between two threads here).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from customer_manager.errors import Unavailable

if TYPE_CHECKING:
    from customer_manager.actors.kit.pool import Pool

log = logging.getLogger(__name__)

Done = Callable[[Any, BaseException | None], None]


class Work(msgspec.Struct, kw_only=True):
    """A message in flight through a pool. Mutated only under the pool's lock."""

    id: int
    message: Any
    done: Done
    deadline: float
    member: str = ""
    started: bool = False


class Forward:
    """A handler's result meaning "finish this work in ``pool``": ``message`` is submitted
    there and ``then(value, error)``, run in the thread that completes it, turns its outcome
    into this work's value (or raises its error). ``then`` may return another Forward; it
    must not block (it runs in a member of the other pool), so it tells, never asks."""

    __slots__ = ("message", "pool", "then", "timeout")

    def __init__(
        self,
        pool: Pool,
        message: Any,
        then: Callable[[Any, BaseException | None], Any],
        timeout: float,
    ) -> None:
        self.pool, self.message, self.then, self.timeout = pool, message, then, timeout


def deliver(done: Done, value: Any, error: BaseException | None) -> None:
    """Call ``done(value, error)``, following a ``Forward`` first; never raises."""
    if error is None and isinstance(value, Forward):
        forward = value

        def resumed(result: Any, failure: BaseException | None) -> None:
            try:
                deliver(done, forward.then(result, failure), None)
            except Exception as exc:
                deliver(done, None, exc)

        forward.pool.submit(forward.message, resumed, timeout=forward.timeout)
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
        if nothing came within ``timeout`` seconds)."""
        if not self.lock.acquire(timeout=timeout):
            raise Unavailable(f"{who} did not answer within {timeout:g} s")
        if self.error is not None:
            raise self.error
        return self.value


def wait(forward: Forward, timeout: float, who: str) -> Any:
    """Follow ``forward`` to its end and block for the result (for a caller that needs it
    before going on); Unavailable after ``timeout`` seconds."""
    waiter = Waiter()
    deliver(waiter.done, forward, None)
    return waiter.result(timeout, who)
