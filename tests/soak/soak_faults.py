"""Faults from a seed, overlapping: a replica's broker connection closed, a replica
SIGKILLed or SIGTERMed and restarted, the Redis database flushed, MySQL or Redis
partitioned (``stall``) or their connections dropped (``cut``), through the TCP proxies of
the fault suite. The machine's servers are never stopped.

Replicas are real daemon processes (``tests.support.faults.Replica``); at most one is down
at a time, so the service stays available."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis

from tests.support.faults import Replica
from tests.support.proxy import TcpProxy

MEAN_GAP = 2.5  # seconds between fault starts (exponential)


class Slot:
    """A replica position: the process running in it now, its broker proxy, its exits."""

    def __init__(self, name: str, env: dict[str, str], logs: Path, amqp: TcpProxy) -> None:
        self.name, self.env, self.logs, self.amqp = name, env, logs, amqp
        self.starts = 0
        self.exits: list[tuple[str, int]] = []  # (how it was stopped, exit code)
        self.lock = threading.Lock()
        self.replica = self._start()

    def _start(self) -> Replica:
        self.starts += 1
        return Replica(self.env, self.logs / f"{self.name}-{self.starts}.log")

    @property
    def up(self) -> bool:
        return self.replica.proc.poll() is None

    def stop(self, how: str, sig: int, timeout: float = 40) -> None:
        proc = self.replica.proc
        if proc.poll() is None:
            if not self.replica.lines():  # the interpreter is still starting: no handler yet
                how += "-early"
            proc.send_signal(sig)
            code = proc.wait(timeout)
        else:
            how, code = "died", proc.returncode
        self.exits.append((how, code))

    def restart(self) -> None:
        with self.lock:
            self.replica = self._start()

    def unexpected_exits(self) -> list[tuple[str, int]]:
        term = -signal.SIGTERM
        expected = {"sigkill": {-signal.SIGKILL}, "sigterm": {0}, "end": {0}}
        expected |= {f"{how}-early": codes | {term} for how, codes in expected.items()}
        expected["sigkill-early"] = {-signal.SIGKILL}
        return [(how, code) for how, code in self.exits if code not in expected.get(how, set())]


class Held:
    """A proxy stalled by overlapping faults: resumed when the last of them ends."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy, self.holds, self.lock = proxy, 0, threading.Lock()

    def stall(self) -> None:
        with self.lock:
            self.holds += 1
            self.proxy.stall()

    def release(self) -> None:
        with self.lock:
            self.holds -= 1
            if self.holds == 0:
                self.proxy.resume()


class Faults(threading.Thread):
    """Injects faults until ``stop()``; ``active()`` names those in effect now."""

    def __init__(
        self,
        seed: int,
        slots: list[Slot],
        mysql: TcpProxy,
        redis_proxy: TcpProxy,
        cache: redis.Redis,
    ) -> None:
        super().__init__(daemon=True, name="soak-faults")
        self.rng = random.Random(f"{seed}-faults")
        self.slots, self.cache = slots, cache
        self.mysql, self.redis = Held(mysql), Held(redis_proxy)
        self.mysql_proxy = mysql
        self.counts: Counter[str] = Counter()
        self._active: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._timers: list[threading.Thread] = []
        self._cycling = threading.Lock()  # held while a replica is down
        self.error: BaseException | None = None

    def active(self) -> list[str]:
        with self._lock:
            return sorted(name for name, n in self._active.items() if n > 0)

    def run(self) -> None:
        actions: dict[str, Callable[[], None]] = {
            "amqp_cut": self._amqp_cut,
            "sigkill": lambda: self._down("sigkill", signal.SIGKILL),
            "sigterm": lambda: self._down("sigterm", signal.SIGTERM),
            "redis_flush": lambda: self._instant("redis_flush", self.cache.flushdb),
            "mysql_stall": lambda: self._stall("mysql_stall", self.mysql, 4.0),
            "mysql_cut": lambda: self._instant("mysql_cut", self.mysql_proxy.cut),
            "redis_stall": lambda: self._stall("redis_stall", self.redis, 3.0),
        }
        names = sorted(actions)
        try:
            while not self._stopping.wait(self.rng.expovariate(1 / MEAN_GAP)):
                actions[self.rng.choice(names)]()
        except BaseException as exc:  # reported by the runner
            self.error = exc

    def stop(self) -> None:
        """No new faults; wait for those in effect to end (replicas restarted, proxies on)."""
        self._stopping.set()
        self.join(10)
        for timer in self._timers:
            timer.join(60)

    # -- the faults ------------------------------------------------------------------------

    def _mark(self, name: str, delta: int) -> None:
        with self._lock:
            self._active[name] += delta
            if delta > 0:
                self.counts[name] += 1

    def _later(self, seconds: float, then: Callable[[], None]) -> None:
        def run() -> None:
            time.sleep(seconds)
            then()

        thread = threading.Thread(target=run, daemon=True)
        self._timers.append(thread)
        thread.start()

    def _instant(self, name: str, action: Callable[[], object]) -> None:
        self._mark(name, 1)
        action()
        self._later(0.5, lambda: self._mark(name, -1))

    def _amqp_cut(self) -> None:
        slot = self.rng.choice(self.slots)
        self._instant("amqp_cut", slot.amqp.cut)

    def _stall(self, name: str, held: Held, longest: float) -> None:
        seconds = self.rng.uniform(0.3, longest)
        self._mark(name, 1)
        held.stall()

        def end() -> None:
            held.release()
            self._mark(name, -1)

        self._later(seconds, end)

    def _down(self, name: str, sig: int) -> None:
        slot = self.rng.choice(self.slots)
        if not self._cycling.acquire(blocking=False):
            return  # one replica is down already: keep the service available
        pause = self.rng.uniform(0.2, 3.0)
        self._mark(name, 1)

        def cycle() -> None:
            slot.stop(name, sig)
            time.sleep(pause)
            slot.restart()
            self._mark(name, -1)
            self._cycling.release()

        self._later(0, cycle)
