"""pika's poll loop, entered from both sides: work run right before the pump blocks in
``poll``, and a cheaper thread-safe wake-up of ``process_data_events``.

Both on pika 1.4.4 (pinned ``>=1.4.4,<1.5`` in setup.cfg); ``tricks.install()`` turns them on,
``tests/unit/test_tricks_pika.py`` pins the pika behaviour they rely on.

* **Before poll** (the connection's poller ``poll``). Under the GIL a thread that another
  thread has just told something runs only once the sender blocks; the consumer told the router
  at the end of its pump slice and then ran pykka's loop and ``process_data_events``'s set-up
  (~50 µs at 1 in flight, bench/RESULTS.md sixth session) before pika's ``poll`` released the
  GIL, with the router waiting. ``before_poll(connection, hook)`` runs ``hook`` in the owner's
  thread right before every ``poll`` of that connection's I/O loop, so a hand-off made there
  is the last Python before the thread sleeps.
* **Wake** (``BlockingConnection._ready_events`` and the poller's ``wake_threadsafe``).
  ``add_callback_threadsafe`` wraps the callback in a ``functools.partial`` that the I/O loop
  turns into a zero-delay timer, whose expiry becomes a ready event that ends
  ``process_data_events`` (~60 µs of Python in the woken thread at 1 in flight, before it can
  publish the reply). ``waker(connection)`` appends a ready event of its own (a no-op; a deque
  append is atomic) and writes the poller's interrupt byte: the same loop ends at its next
  ``is_done`` check. After the connection is closed the write is skipped by pika itself.

Off, ``before_poll`` returns False (callers do the work after the slice) and ``waker`` returns
None (callers use ``add_callback_threadsafe``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pika.adapters.blocking_connection import BlockingConnection

from customer_manager.tricks.switch import Switch

switch = Switch()
enable, disable = switch.enable, switch.disable


def enabled() -> bool:
    return switch.on


def before_poll(connection: BlockingConnection, hook: Callable[[], None]) -> bool:
    """Run ``hook`` right before each ``poll`` of ``connection``'s I/O loop (in the owner's
    thread; it must not raise). True if installed."""
    if not switch.on:
        return False
    poller: Any = connection._impl.ioloop._poller
    poll = poller.poll

    def hooked() -> None:
        hook()
        poll()

    poller.poll = hooked  # an instance attribute: this connection's poller only
    return True


class _Woken:
    """The ready event of a wake-up: ``process_data_events`` dispatches it as a no-op."""

    __slots__ = ()

    def dispatch(self) -> None:
        return None


_WOKEN = _Woken()


def waker(connection: BlockingConnection) -> Callable[[], None] | None:
    """A function any thread may call to end ``connection``'s current (or next)
    ``process_data_events`` at once; None when the trick is off."""
    if not switch.on:
        return None
    ready: Any = connection._ready_events
    wake_poller: Callable[[], None] = connection._impl.ioloop._poller.wake_threadsafe
    append = ready.append

    def wake() -> None:
        append(_WOKEN)
        wake_poller()

    return wake
