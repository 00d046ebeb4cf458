"""Deferred outgoing calls (docs/lifecycle.md#outgoing-requests, F8): outbox entries on the
``DEFERRED_CALL`` marker are
sent as RPCs with a reply queue after the request that wrote them was answered.

An entry stays leased (not done) while its call is out. A reply below 500 ends it (a 4xx is
logged); a timeout or a reply of 500 or more leaves it leased, so the relay claims it again
when the lease runs out, and it is tried again once its backoff has passed (doubling from
``first_backoff`` up to ``max_backoff``); after the entry's ``until`` it is dropped. The
retries survive a restart (the entry is still in the outbox). A repeat after a lost reply is
accepted (docs/lifecycle.md#outgoing-requests: a repeated email carries the same link). Nothing
here ever touches a request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from customer_manager import metrics
from customer_manager.actors.kit.flow import Done
from customer_manager.messages.records import now
from customer_manager.messages.wire import Request, Response
from customer_manager.storage.base import OutboxEntry

log = logging.getLogger(__name__)


class _Call(msgspec.Struct, frozen=True, kw_only=True):
    timeout: float
    until: str
    method: str
    request: Request


_decoder = msgspec.json.Decoder(_Call)
Send = Callable[[str, Request, float, Done], None]


class DeferredCalls:
    """The deferred calls of one publisher (its thread only). ``send`` makes an RPC
    (``call(queue, request, timeout, done)``); ``finished(ids)`` marks entries done."""

    def __init__(
        self,
        send: Send,
        finished: Callable[[list[int]], None],
        *,
        first_backoff: float = 5.0,
        max_backoff: float = 300.0,
    ) -> None:
        self._send, self._finished = send, finished
        self._first, self._max = first_backoff, max_backoff
        self._out: set[int] = set()
        self._attempts: dict[int, int] = {}
        self._next_try: dict[int, float] = {}

    def take(self, entries: list[OutboxEntry]) -> None:
        """Start the calls of these claimed entries that are due."""
        moment = time.monotonic()
        for entry in entries:
            if entry.id in self._out or self._next_try.get(entry.id, 0.0) > moment:
                continue  # still out, or backing off: its lease runs on
            try:
                call = _decoder.decode(entry.message.body)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.error("dropping unreadable deferred call %d", entry.id)
                self._end(entry.id)
                continue
            if call.until < now():
                log.warning("deferred %s to %s given up", call.method, entry.message.routing_key)
                self._count(entry.message.routing_key, call.method, "error", None)
                self._end(entry.id)
                continue
            self._start(entry, call)

    def _start(self, entry: OutboxEntry, call: _Call) -> None:
        queue, started = entry.message.routing_key, time.monotonic()
        self._out.add(entry.id)

        def done(reply: Response | None, error: BaseException | None) -> None:
            self._out.discard(entry.id)
            ok = reply is not None and reply.status_code < 500
            self._count(queue, call.method, "success" if ok else "error", started)
            if ok:
                assert reply is not None
                if reply.status_code >= 400:
                    log.warning("%s answered %d to %s", queue, reply.status_code, call.method)
                self._end(entry.id)
                return
            why = type(error).__name__ if error else f"status {reply.status_code if reply else '?'}"
            attempts = self._attempts.get(entry.id, 0) + 1
            self._attempts[entry.id] = attempts
            wait = min(self._first * 2 ** (attempts - 1), self._max)
            self._next_try[entry.id] = time.monotonic() + wait
            log.warning(
                "deferred %s to %s failed (%s), retry in %g s", call.method, queue, why, wait
            )

        self._send(queue, call.request, call.timeout, done)

    def _end(self, entry_id: int) -> None:
        self._attempts.pop(entry_id, None)
        self._next_try.pop(entry_id, None)
        self._finished([entry_id])

    @staticmethod
    def _count(queue: str, method: str, status: str, started: float | None) -> None:
        service = queue.split(".")[1] if "." in queue else queue
        metrics.child(metrics.rpc_call_total, service, method, status).inc()
        if started is not None:
            elapsed_ms = (time.monotonic() - started) * 1000
            metrics.child(metrics.rpc_call_duration, service, method).observe(elapsed_ms)
