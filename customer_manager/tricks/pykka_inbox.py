"""pykka's inbox hook (``Actor._create_actor_inbox``, "internal, for implementors of new actor
types"): an inbox that wakes its actor's pika loop when a message arrives, and the C
``queue.SimpleQueue`` as the inbox of every other actor on a request's path.

A pump actor (``actors/amqp/link.py``) spends its life inside ``process_data_events`` slices
(0.1 s for the publisher, 0.25 s for the consumer), so a message from another actor (the
workers' outgoing RPC ``call``, a relay request, a health ask) would wait for the slice to end.
``WakingInboxActor`` puts a ``WakingInbox`` in place of pykka's ``queue.Queue``: a ``put`` of
anything but the actor's own pump tick calls the waker (``connection.add_callback_threadsafe``),
and the slice ends at once. Measured on pykka 4.5.0 (pinned ``>=4.5,<4.6`` in setup.cfg) with
``python -m bench.waking_inbox`` (bench/RESULTS.md, "Tricks"): a proxy ask to a pump actor with
a 0.1 s slice takes a median 0.2 ms (p90 0.4–0.6 ms) with the waking inbox, 88 ms without.
It relies on pykka creating the inbox in ``Actor.__init__`` through the hook and on every
``tell``/``ask`` arriving as an envelope whose ``message`` is the message told
(``tests/unit/test_tricks.py`` pins both). Off, the hook returns pykka's own ``queue.Queue``.

``SimpleInboxActor`` (the router and every pool member: workers, storage and cache actors)
takes a ``queue.SimpleQueue`` instead of pykka's ``queue.Queue``, whose ``put`` and ``get``
are Python code around a ``Condition``; a request makes three such hops. pykka uses only
``put``, ``get`` and ``empty`` of an inbox. Measured in-process (router → pools → Redis cache,
30,000 cache-hit GETs at 32 in flight, three alternating pairs under the bench lock): CPU per
request 164 / 142 / 142 µs with pykka's inbox, 129 / 132 / 124 µs with this one.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

import pykka

from customer_manager.tricks.switch import Switch

switch = Switch()
enable, disable = switch.enable, switch.disable


def enabled() -> bool:
    return switch.on


class WakingInbox(queue.Queue[Any]):
    """A ``queue.Queue`` that calls ``wake`` after a put of any message but ``quiet``."""

    def __init__(self) -> None:
        super().__init__()
        self.wake: Callable[[], None] | None = None
        self.quiet: object = None

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        wake = self.wake
        if wake is not None and getattr(item, "message", None) is not self.quiet:
            wake()


class SimpleInboxActor(pykka.ThreadingActor):
    """A threading actor whose inbox is a C ``queue.SimpleQueue`` (see the module doc)."""

    @staticmethod
    def _create_actor_inbox() -> Any:
        return queue.SimpleQueue() if switch.on else queue.Queue()


class WakingInboxActor(pykka.ThreadingActor):
    """A threading actor whose inbox calls a waker on arrival (once ``set_waker`` is called)."""

    @staticmethod
    def _create_actor_inbox() -> Any:
        return WakingInbox() if switch.on else queue.Queue()

    def set_waker(self, wake: Callable[[], None], quiet: object) -> None:
        """Call ``wake`` (from the sender's thread) whenever a message other than ``quiet``
        arrives. Without the trick the inbox is pykka's own and this does nothing."""
        inbox = self.actor_inbox
        if isinstance(inbox, WakingInbox):
            inbox.wake, inbox.quiet = wake, quiet
