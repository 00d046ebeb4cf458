"""Remembered write results (issue 18 #3): a write request redelivered by the broker, or
re-sent by its caller with the same correlation id, gets the result of its first execution
instead of running again (which would answer 409 to a create that its own first run made, or
re-apply an update over newer ones).

A write given a ``request_key`` stores its result (the record as the first run returned it,
Go JSON) with the change, in the same transaction; the SQL backends keep it in
``customer_replies`` and purge entries older than REPLY_WINDOW with an outbox claim at most
every PURGE_EVERY seconds (so an entry may outlive the window by that much). The
reply is rebuilt from that record, so it is the first reply exactly. Access-key creates are
not remembered: their reply carries the token, which is never stored (docs/storage.md#tokens).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from customer_manager.errors import Internal, ServiceError, Unavailable
from customer_manager.messages import gojson
from customer_manager.messages.records import Accesskey, Customer, now
from customer_manager.storage import sqlrows as q
from customer_manager.storage.base import REPLY_WINDOW, Deleted

R = TypeVar("R", Customer, Accesskey)
Replay = Callable[[bytes], Any]
T = TypeVar("T")
Run = Callable[..., Any]  # SQLStorage._run(work, noun, write)


def encode(result: Any) -> bytes:
    """What is stored for a write's ``result`` (a record, or Deleted): its record."""
    return gojson.encode(result.record if isinstance(result, Deleted) else result)


def record_of(cls: type[R]) -> Callable[[bytes], R]:
    """The stored result of an insert or update, as the write returned it."""
    return lambda raw: msgspec.json.decode(raw, type=cls)


def deletion_of(cls: type[R]) -> Callable[[bytes], Deleted]:
    """The stored result of a delete: the record it left (nothing was changed this time)."""
    return lambda raw: Deleted(record=msgspec.json.decode(raw, type=cls), changed=False)


def once(run: Run, work: Callable[[Any], T], noun: str, request_key: str, replay: Replay) -> T:
    """For the SQL backends: ``run`` (their transaction runner) the write ``work``, storing
    its result under ``request_key`` in the same transaction; if the key has a result
    already, return ``replay(result)`` instead.

    The stored result is not looked up first (a SELECT in every write's transaction, one of
    its five round trips, bench/RESULTS.md issue 17): a repeat runs the work again and fails on
    the key's primary key when it stores its result (or fails earlier on something its first
    run changed: the email it created, the record it deleted); the transaction is rolled back
    and the stored result is returned instead of the error. A repeat racing its first run
    waits for that run's row and fails the same way once it commits."""
    if not request_key:
        done: T = run(work, noun)
        return done

    def remembered(tx: Any) -> T:
        result = work(tx)
        tx.count(q.REPLY_PUT, (request_key, encode(result), now()))
        return result

    try:
        first: T = run(remembered, noun)
        return first
    except ServiceError as exc:
        if isinstance(exc, Unavailable | Internal):
            raise  # no answer from the database: nothing to look up either
        earlier = run(lambda tx: tx.scalar(q.REPLY_GET, (request_key,)), noun, False)
        if earlier is None:
            raise
        found: T = replay(bytes(earlier))
        return found


class ReplyLog:
    """The in-process store of results (MemoryStorage): key → (when, stored result)."""

    def __init__(self, window: float = REPLY_WINDOW) -> None:
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._window = window

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def put(self, key: str, raw: bytes) -> None:
        moment = time.monotonic()
        self._entries[key] = (moment, raw)
        if len(self._entries) % 1000 == 0:
            cutoff = moment - self._window
            for old in [k for k, (at, _) in self._entries.items() if at < cutoff]:
                del self._entries[old]


def remembered(replay: Replay) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a MemoryStorage write taking ``request_key=``: a repeat of the key returns
    ``replay(stored)`` instead of writing. The storage's ``_lock`` must be reentrant."""

    def wrap(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def run(self: Any, *args: Any, request_key: str = "") -> T:
            if not request_key:
                return method(self, *args)
            lock: threading.RLock = self._lock
            log: ReplyLog = self._replies
            with lock:
                earlier = log.get(request_key)
                if earlier is not None:
                    replayed: T = replay(earlier)
                    return replayed
                result = method(self, *args)
                log.put(request_key, encode(result))
                return result

        return run

    return wrap
