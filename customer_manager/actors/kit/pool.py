"""Pools of actors, the part of the kit pykka lacks (docs/architecture.md#rooms): routing,
supervision, dead letters. Members are ``kit.PoolMember`` actors.

``Pool`` runs N ``PoolMember`` actors. ``submit(message, done, timeout=...)`` wraps the
message in a ``Work`` envelope and tells it to the member with the fewest works in flight
(counted from dispatch to completion). The member runs ``handle(message)`` in its own thread
and the pool then calls ``done(value, error)`` exactly once, from that thread.

A member may say which messages it can run together (``batches``, ``handle_batch``: the
storage actors' creates, one transaction for many): when it starts such a work, the works of
the same kind queued behind it on that member start with it, each still completed once.

pykka 4 futures have no done-callbacks, so completion is the callback carried by the work:
nobody has to block on a future. ``Pool.ask`` builds a blocking call on top of it (the
timeout is mandatory). A handler may instead return a ``Flow`` (``actors/kit/flow.py``): the
work then finishes in another pool.

Failure handling (no request lost, exactly one completion):

* A member that crashes (an exception escapes a tell, or ``setup`` fails) notifies the pool
  from its own thread before it stops handling messages. Its works that had not started go
  back to the pool and are redelivered to another member (each one counted as a dead
  letter); a work that was running when it crashed completes with the error.
* The ``Supervisor`` actor, driven by a ``Ticker``, starts replacements with exponential
  backoff, and completes works that waited longer than their timeout without starting.
* A member stopped on purpose (``ActorRef.stop``, ``ActorRegistry.stop_all``) is not
  replaced. Stopping the supervisor stops the pool: queued works complete with Unavailable.

Thread safety: every Pool method may be called from any thread; the state is guarded by one
lock and callbacks are always called outside it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import pykka

from customer_manager import metrics
from customer_manager.actors.kit.flow import Done, Waiter, Work, deliver
from customer_manager.actors.kit.supervisor import Supervisor, Tick
from customer_manager.actors.kit.timing import Backoff, Ticker
from customer_manager.errors import Unavailable

log = logging.getLogger(__name__)

StartMember = Callable[["Pool"], "pykka.ActorRef[Any]"]


class MemberCrashed(RuntimeError):
    """The member that was running a work died."""


Outcome = tuple[Any, BaseException | None]


class Member(Protocol):
    """What ``Pool.run`` needs of a member (``kit.PoolMember``): ``handle`` runs one message;
    ``batches`` and ``handle_batch`` run several of its queued messages at once."""

    batch_limit: int

    def handle(self, message: Any) -> Any: ...

    def batches(self, message: Any) -> bool:
        """``message`` may run in a batch with other messages this says yes to."""
        ...

    def handle_batch(self, messages: list[Any]) -> list[Outcome]:
        """One (value, error) per message, in order."""
        ...


class Pool:
    """N members of one actor class, least-in-flight routing, supervised (module doc)."""

    def __init__(
        self, name: str, size: int, start_member: StartMember, *, tick: float = 0.25
    ) -> None:
        self.name, self.size, self._start_member, self._tick = name, size, start_member, tick
        self._lock = threading.Lock()  # a plain lock: entered ~5 times per work
        self._ids = itertools.count(1)
        self._members: dict[str, pykka.ActorRef[Any]] = {}
        self._inflight: dict[str, dict[int, Work]] = {}
        self._works: dict[int, Work] = {}  # every work not yet completed
        self._pending: deque[Work] = deque()  # works waiting for a live member
        self._gone: set[str] = set()
        self._seen: set[str] = set()
        self._restart_at: list[float] = []
        self._backoff = Backoff()
        self._rotation = 0
        self._stopping = False
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._ticker: Ticker | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Pool:
        """Start the members, then the supervisor and its ticker. Returns self."""
        for _ in range(self.size):
            self._add_member()
        self._supervisor = Supervisor.start(self)
        self._ticker = Ticker(self._supervisor, Tick(), self._tick).start()
        metrics.pool_queued.labels(self.name).set_function(self.queued)
        metrics.pool_in_flight.labels(self.name).set_function(self.in_flight)
        return self

    def stop(self, timeout: float) -> None:
        """Stop supervisor and members; works still queued complete with Unavailable."""
        if self._ticker is not None:
            self._ticker.stop()
        if self._supervisor is not None:
            self._supervisor.stop(block=True, timeout=timeout)
        self.shutdown()
        for ref in self.members():
            try:
                ref.stop(block=True, timeout=timeout)
            except pykka.Timeout:
                log.warning("pool %s: member %s did not stop in %g s", self.name, ref, timeout)

    def shutdown(self) -> None:
        """Refuse new works and complete the queued ones with Unavailable."""
        with self._lock:
            self._stopping = True
            queued = list(self._pending)
            self._pending.clear()
        self._fail_all(queued, Unavailable(f"{self.name} is shutting down"))

    def members(self) -> list[pykka.ActorRef[Any]]:
        with self._lock:
            return list(self._members.values())

    def queued(self) -> int:
        """Works not started yet: waiting in a member's inbox or for a live member."""
        with self._lock:
            return sum(1 for work in self._works.values() if not work.started)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._works)

    def wait_full(self, timeout: float) -> bool:
        """Block until the pool has ``size`` live members (True) or ``timeout`` passed."""
        deadline = _now() + timeout
        while True:
            with self._lock:
                if len(self._members) >= self.size:
                    return True
            if _now() >= deadline:
                return False
            time.sleep(0.005)

    # -- callers ----------------------------------------------------------------------------

    def submit(self, message: Any, done: Done, *, timeout: float) -> None:
        """Queue ``message``; ``done(value, error)`` is called exactly once, from the thread
        that finishes it. A work not started within ``timeout`` s completes Unavailable."""
        work = Work(id=next(self._ids), message=message, done=done, deadline=_now() + timeout)
        ref: pykka.ActorRef[Any] | None = None
        with self._lock:
            if self._stopping:
                refused = True
            else:
                refused = False
                self._works[work.id] = work
                if self._pending or not self._members:
                    self._pending.append(work)  # behind the works waiting already
                else:
                    ref = self._assign(work)  # the common case: one lock, tell at once
        if refused:
            done(None, Unavailable(f"{self.name} is shutting down"))
        elif ref is not None:
            self._tell(ref, work)
        else:
            self._dispatch()

    def ask(self, message: Any, *, timeout: float) -> Any:
        """Submit and wait up to ``timeout`` s; return the value or raise the handler's error
        (Unavailable if no completion in time). Never call it from a member of this pool."""
        waiter = Waiter()
        self.submit(message, waiter.done, timeout=timeout)
        return waiter.result(timeout, self.name)

    # -- members (called from member threads) -----------------------------------------------

    def run(self, ref: pykka.ActorRef[Any], work: Work, member: Member) -> None:
        """Run ``member.handle`` on a work delivered to ``ref`` (unless it was completed
        already). If the member batches the work's message, the works queued behind it on the
        same member that it batches too run with it in one ``member.handle_batch`` call (their
        own deliveries then find them completed)."""
        with self._lock:
            if self._works.get(work.id) is not work or work.member != ref.actor_urn:
                return
            work.started = True
            batch = [work]
            if member.batches(work.message):
                moment = _now()
                for queued in self._inflight.get(work.member, {}).values():
                    if len(batch) >= member.batch_limit:
                        break
                    if (
                        not queued.started
                        and queued.deadline >= moment  # else the supervisor expires it
                        and member.batches(queued.message)
                    ):
                        queued.started = True
                        batch.append(queued)
        if len(batch) > 1:
            self._run_batch(batch, member)
            return
        try:
            value, error = member.handle(work.message), None
        except Exception as exc:
            value, error = None, exc
        self._complete(work, value, error)

    def _run_batch(self, batch: list[Work], member: Member) -> None:
        try:
            outcomes = member.handle_batch([w.message for w in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} outcomes for a batch of {len(batch)}")
        except Exception as exc:
            log.exception("pool %s: a batch of %d failed", self.name, len(batch))
            self._fail_all(batch, exc)
            return
        for work, (value, error) in zip(batch, outcomes, strict=True):
            self._complete(work, value, error)

    def member_gone(self, ref: pykka.ActorRef[Any], *, crashed: bool) -> None:
        """A member stops handling messages; requeue its unstarted works, fail the running
        one, and (if it crashed) schedule a replacement."""
        with self._lock:
            urn = ref.actor_urn
            if self._members.pop(urn, None) is None:
                if urn not in self._seen:
                    self._gone.add(urn)  # died before _add_member registered it
                return
            works = list(self._inflight.pop(urn, {}).values())
            running = [w for w in works if w.started]
            again = [w for w in works if not w.started]
            for work in again:
                work.member = ""
            self._pending.extendleft(reversed(again))
            if crashed and not self._stopping:
                self._restart_at.append(_now() + self._backoff.next_delay(_now()))
        if again:
            metrics.dead_letters_total.labels(self.name).inc(len(again))
            log.warning("pool %s: redelivering %d works of %s", self.name, len(again), ref)
        self._fail_all(running, MemberCrashed(f"{self.name} member died while handling"))
        self._dispatch()

    def supervise(self) -> None:
        """Start replacements whose backoff elapsed; expire works that never started."""
        moment = _now()
        with self._lock:
            due = [t for t in self._restart_at if t <= moment]
            self._restart_at = [t for t in self._restart_at if t > moment]
            stale = [w for w in self._works.values() if not w.started and w.deadline < moment]
            stopping = self._stopping
        for _ in due if not stopping else ():
            metrics.actor_restarts_total.labels(self.name).inc()
            self._add_member()
        for work in stale:
            self._complete(work, None, Unavailable(f"{self.name} did not take the request"))
        if due:
            self._dispatch()

    # -- internals --------------------------------------------------------------------------

    def _add_member(self) -> None:
        ref = self._start_member(self)
        with self._lock:
            self._seen.add(ref.actor_urn)
            if ref.actor_urn in self._gone:
                self._gone.discard(ref.actor_urn)
                self._restart_at.append(_now() + self._backoff.next_delay(_now()))
                return
            self._members[ref.actor_urn] = ref
            self._inflight[ref.actor_urn] = {}

    def _dispatch(self) -> None:
        """Tell pending works to the least busy live members."""
        more = True
        while more:
            with self._lock:
                if not self._pending or not self._members:
                    return
                work = self._pending.popleft()
                more = bool(self._pending)
                if work.id not in self._works:
                    continue
                ref = self._assign(work)
            self._tell(ref, work)

    def _assign(self, work: Work) -> pykka.ActorRef[Any]:
        """Give ``work`` to the least busy member (under the lock); its ref."""
        urn = self._least_busy()
        work.member = urn
        self._inflight[urn][work.id] = work
        return self._members[urn]

    def _tell(self, ref: pykka.ActorRef[Any], work: Work) -> None:
        try:
            ref.tell(work)
        except pykka.ActorDeadError:
            # The member is stopping; its own member_gone (from on_stop / on_failure)
            # requeues this work, which is already in its in-flight set.
            metrics.dead_letters_total.labels(self.name).inc()

    def _least_busy(self) -> str:
        """The member with the fewest works in flight; ties rotate between members."""
        self._rotation += 1
        inflight = self._inflight
        urns = list(self._members)
        start = self._rotation % len(urns)
        best = urns[start]
        if not inflight[best]:
            return best  # idle: the common case when the pool keeps up
        best_load = len(inflight[best])
        for urn in urns[start + 1 :] + urns[:start]:
            load = len(inflight[urn])
            if load < best_load:
                best, best_load = urn, load
                if not load:
                    break
        return best

    def _complete(self, work: Work, value: Any, error: BaseException | None) -> None:
        with self._lock:
            if self._works.pop(work.id, None) is None:
                return
            running = self._inflight.get(work.member) if work.member else None
            if running is not None:
                running.pop(work.id, None)
        deliver(work.done, value, error)
        if self._pending:
            self._dispatch()

    def _fail_all(self, works: list[Work], error: BaseException) -> None:
        for work in works:
            self._complete(work, None, error)


def _now() -> float:
    return time.monotonic()
