"""Where the daemon's threads run: all on one CPU that follows the load, or where the kernel
puts them (``CPU_PLACEMENT``, docs/configuration.md#cpu-placement).

The GIL lets one thread run Python at a time, so the daemon's Python never uses more than one
core; what it pays for having its threads spread over cores is every hand-off of a request
(consumer -> router -> worker -> cache -> consumer) being a wake-up on another core: an
inter-processor interrupt (on a virtual machine an exit to the hypervisor) and data cold in
that core's caches. With every thread on one core a hand-off is a switch on the same core.
Measured on the 2-core bench machine (bench/RESULTS.md, seventh session): service-added p50
at 1 in flight, GET +0.62 -> +0.34..0.42 ms, auth +0.73 -> +0.51..0.54 ms on the CPU the
broker was not working on; creates at 32 in flight +5..25 %.

``one`` binds every thread to the CPU the process runs on at start (threads made later
inherit it from their creator). A neighbour may take that core: every ``INTERVAL`` seconds a
watcher thread compares the CPU's busy time, less the daemon's own, with the least busy other
CPU the process may use, and moves every thread there when the home CPU is busier by more
than ``MARGIN`` of a core (no move back and forth between two CPUs about as busy); the
interval is randomised and a move waits for a coin toss, so that replicas on one host that
started together do not all move to the same CPU at once.
Linux only (``/proc``, ``sched_setaffinity``); elsewhere, or when the process may use one CPU
only, nothing is done.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Mapping

from customer_manager import metrics

log = logging.getLogger("customer_manager.placement")

INTERVAL = 2.0  # seconds between two looks at the CPUs' load
MARGIN = 0.25  # of a core: how much busier with other work the home CPU must be to move

# user nice system steal (of /proc/stat): not irq and softirq, which the daemon's own traffic
# causes and its utime/stime do not count (it would look like a neighbour and move)
_STAT_FIELDS_BUSY = (0, 1, 2, 7)


def cpu_busy() -> dict[int, int]:
    """Busy clock ticks of each CPU since boot, from ``/proc/stat`` (idle, iowait and
    interrupts not counted; steal is: time the hypervisor gave to others)."""
    busy: dict[int, int] = {}
    with open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                busy[int(name[3:])] = sum(int(values[i]) for i in _STAT_FIELDS_BUSY)
    return busy


def _own_stat() -> list[str]:
    """The fields of ``/proc/self/stat`` after the command name (field 3 first)."""
    with open("/proc/self/stat", encoding="ascii", errors="replace") as stat:
        return stat.read().rpartition(")")[2].split()


def own_busy() -> int:
    """Clock ticks of CPU the process used (utime + stime)."""
    fields = _own_stat()
    return int(fields[11]) + int(fields[12])


def current_cpu() -> int:
    """The CPU the calling process last ran on."""
    return int(_own_stat()[36])


def bind(cpus: set[int] | frozenset[int]) -> None:
    """Bind every thread of the process to ``cpus``. A thread started meanwhile by one not yet
    bound inherits the old set: the listing is read again until every thread is bound."""
    for _ in range(5):
        moved = False
        for name in os.listdir("/proc/self/task"):
            tid = int(name)
            try:
                if os.sched_getaffinity(tid) != cpus:
                    os.sched_setaffinity(tid, cpus)
                    moved = True
            except ProcessLookupError:  # the thread ended
                continue
        if not moved:
            return


def better_cpu(home: int, busy: Mapping[int, int], own: int, margin_ticks: float) -> int | None:
    """The CPU to move to, or None to stay: ``busy`` is each allowed CPU's busy ticks over the
    last interval, ``own`` the daemon's (all of it on ``home``)."""
    others = {cpu: ticks for cpu, ticks in busy.items() if cpu != home}
    if not others:
        return None
    best = min(others, key=lambda cpu: (others[cpu], cpu))
    neighbours_at_home = busy.get(home, 0) - own
    return best if neighbours_at_home - others[best] > margin_ticks else None


class Placement:
    """``one``: the process's threads on one CPU that follows the load (``start``); the
    watcher is a daemon thread that runs until the process ends."""

    def __init__(self, interval: float = INTERVAL, margin: float = MARGIN) -> None:
        self.interval, self.margin = interval, margin
        self.allowed: frozenset[int] = frozenset()
        self.home = -1
        self._ticks_per_s = 100

    def start(self) -> Placement:
        """Bind to the current CPU and start the watcher; log and do nothing where the system
        cannot (not Linux, one CPU allowed, binding refused)."""
        try:
            self._ticks_per_s = os.sysconf("SC_CLK_TCK")
            self.allowed = frozenset(os.sched_getaffinity(0))
            if len(self.allowed) < 2:
                return self
            self.home = current_cpu()
            bind({self.home})
        except (AttributeError, OSError, ValueError, IndexError) as exc:
            log.warning("CPU placement off: %s", exc)
            self._unbind()
            return self
        metrics.cpu_home.set(self.home)
        log.info("threads on CPU %d (of %s)", self.home, sorted(self.allowed))
        threading.Thread(target=self._watch, name="cpu-placement", daemon=True).start()
        return self

    def _unbind(self) -> None:
        """Back to every allowed CPU (after a failure part-way), the gauge to -1."""
        self.home = -1
        metrics.cpu_home.set(-1)
        if self.allowed:
            with contextlib.suppress(OSError, ValueError):
                bind(self.allowed)

    def _watch(self) -> None:
        try:
            last, last_own, since = cpu_busy(), own_busy(), time.monotonic()
            # a random interval and a coin toss per move: two replicas that started together
            # on one CPU must not move to the same CPU at once, and back, and again
            while True:
                time.sleep(self.interval * random.uniform(0.75, 1.25))
                self._follow_cpuset()
                now, now_own, moment = cpu_busy(), own_busy(), time.monotonic()
                span = (moment - since) * self._ticks_per_s
                busy = {c: now[c] - last.get(c, now[c]) for c in self.allowed if c in now}
                own = now_own - last_own
                target = better_cpu(self.home, busy, own, self.margin * span)
                if target is not None and random.random() < 0.5:
                    self._move(target, (busy.get(self.home, 0) - own) / span, busy[target] / span)
                last, last_own, since = now, now_own, moment
        except (OSError, ValueError, IndexError) as exc:  # /proc unreadable, binding refused
            log.warning("CPU placement stopped: %s", exc)
            self._unbind()

    def _follow_cpuset(self) -> None:
        """A cpuset change resets the threads' CPUs (or takes ours away): take the new set
        as the allowed one and bind again where this thread runs now."""
        current = frozenset(os.sched_getaffinity(0))
        if current == {self.home}:
            return
        self.allowed = current
        self.home = current_cpu()
        log.info("CPU set changed to %s: threads on CPU %d", sorted(current), self.home)
        bind({self.home})
        metrics.cpu_home.set(self.home)

    def _move(self, target: int, neighbours: float, busy_there: float) -> None:
        log.info(
            "threads moved from CPU %d (%d%% busy with other work) to CPU %d (%d%% busy)",
            self.home,
            round(100 * neighbours),
            target,
            round(100 * busy_there),
        )
        bind({target})
        self.home = target
        metrics.cpu_home.set(target)
        metrics.cpu_moves_total.inc()
