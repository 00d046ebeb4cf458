"""Waiting for a condition: the one polling loop of the suite."""

from __future__ import annotations

import time
from collections.abc import Callable

Idle = Callable[[float], object]


def until(
    predicate: Callable[[], object],
    timeout: float,
    *,
    idle: Idle = time.sleep,
    every: float = 0.05,
) -> float | None:
    """Check ``predicate`` until it is true and return the seconds that took, or None once
    ``timeout`` has passed. Between checks ``idle(every)`` runs: a sleep, or a connection's
    event pump where the condition depends on that connection's deliveries."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started >= timeout:
            return None
        idle(every)
    return time.monotonic() - started


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    what: str = "the condition",
    *,
    idle: Idle = time.sleep,
    every: float = 0.05,
) -> float:
    """``until`` that fails the test after ``timeout``, naming ``what`` it waited for."""
    took = until(predicate, timeout, idle=idle, every=every)
    assert took is not None, f"timed out after {timeout} s: {what}"
    return took
