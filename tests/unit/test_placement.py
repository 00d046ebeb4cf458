"""CPU_PLACEMENT=one (customer_manager/placement.py, issue 17): every thread of the daemon on
one CPU, threads started later included, moved to a less busy CPU when a neighbour takes the
core, and never moved back and forth between CPUs about as busy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from customer_manager import placement

TWO_CPUS = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux and two CPUs",
)

# Starts the placement (watcher every 0.2 s), then a thread, and prints every thread's CPU set
# once at start and again when told (a line on stdin), with the moves counted.
PROBE = """
import json, os, sys, threading, time
from customer_manager import metrics, placement

def report():
    sets = {tid: sorted(os.sched_getaffinity(int(tid))) for tid in os.listdir('/proc/self/task')}
    print(json.dumps({'home': p.home, 'allowed': sorted(p.allowed), 'sets': sets,
                      'moves': metrics.cpu_moves_total._value.get(),
                      'gauge': metrics.cpu_home._value.get()}), flush=True)

if len(sys.argv) > 1:  # start on this CPU (then free again), and be busy like a daemon
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(sys.argv[1])})
    time.sleep(0.05)
    os.sched_setaffinity(0, allowed)
p = placement.Placement(interval=0.2, margin=0.25).start()
if len(sys.argv) > 1:
    threading.Thread(target=lambda: [0 for _ in iter(int, 1)], daemon=True).start()
threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
report()
for _ in sys.stdin:
    report()
"""


def _probe(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PROBE, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _report(proc: subprocess.Popen[str], ask: bool = True) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    if ask:
        proc.stdin.write("\n")
        proc.stdin.flush()
    return dict(json.loads(proc.stdout.readline()))


@TWO_CPUS
def test_every_thread_is_bound_to_the_home_cpu_and_new_threads_inherit_it() -> None:
    proc = _probe()
    try:
        seen = _report(proc, ask=False)
    finally:
        proc.kill()
        proc.wait()
    home = seen["home"]
    assert home in seen["allowed"] and seen["allowed"] == sorted(os.sched_getaffinity(0))
    sets = seen["sets"]
    assert isinstance(sets, dict) and len(sets) >= 3  # main, watcher, the thread started after
    assert all(cpus == [home] for cpus in sets.values())
    assert seen["gauge"] == home and seen["moves"] == 0


@TWO_CPUS
def test_a_neighbour_taking_the_core_moves_every_thread_to_a_less_busy_cpu() -> None:
    proc = _probe()
    spinner = None
    try:
        home = _report(proc, ask=False)["home"]
        assert isinstance(home, int)
        spinner = subprocess.Popen(  # a neighbour that takes the home CPU whole
            [sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{home}}})\nwhile 1: pass"]
        )
        deadline = time.monotonic() + 20
        seen = _report(proc)
        while seen["home"] == home and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = _report(proc)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
        proc.kill()
        proc.wait()
    assert seen["home"] != home and seen["home"] in seen["allowed"]
    sets = seen["sets"]
    assert isinstance(sets, dict) and all(cpus == [seen["home"]] for cpus in sets.values())
    assert seen["gauge"] == seen["home"] and seen["moves"] >= 1


@TWO_CPUS
def test_two_busy_daemons_started_on_one_cpu_end_on_two_and_stay() -> None:
    """Both see the other as a neighbour; the random interval and the coin toss let one move
    first (both may move at once now and then: they settle within a few looks)."""
    first = min(os.sched_getaffinity(0))
    probes = [_probe(str(first)), _probe(str(first))]
    try:
        homes = [_report(p, ask=False)["home"] for p in probes]
        assert homes == [first, first]  # each was running there when it bound itself
        deadline = time.monotonic() + 20
        while len(set(homes)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            homes = [_report(p)["home"] for p in probes]
        assert len(set(homes)) == 2, homes
        settled = [_report(p) for p in probes]
        time.sleep(2)  # ten more looks each: no move back and forth
        after = [_report(p) for p in probes]
    finally:
        for p in probes:
            p.kill()
            p.wait()
    assert [seen["home"] for seen in after] == [seen["home"] for seen in settled]
    assert [seen["moves"] for seen in after] == [seen["moves"] for seen in settled]


def test_the_home_cpu_stays_unless_a_neighbour_makes_it_busier_by_the_margin() -> None:
    # busy ticks over the last interval; the daemon's own 150 are all on home (CPU 1)
    assert placement.better_cpu(1, {0: 40, 1: 190}, own=150, margin_ticks=50) is None
    assert placement.better_cpu(1, {0: 40, 1: 240}, own=150, margin_ticks=50) is None  # 90 - 40
    assert placement.better_cpu(1, {0: 40, 1: 250}, own=150, margin_ticks=50) == 0
    # after the move, the CPU left behind is as busy as before: no move back
    assert placement.better_cpu(0, {0: 190, 1: 100}, own=150, margin_ticks=50) is None
    # the least busy of several; ties to the lowest number
    assert placement.better_cpu(2, {0: 30, 1: 10, 2: 200, 3: 10}, own=0, margin_ticks=50) == 1
    assert placement.better_cpu(0, {0: 200}, own=0, margin_ticks=50) is None


def test_the_readings_come_from_proc() -> None:
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc")
    busy = placement.cpu_busy()
    assert set(os.sched_getaffinity(0)) <= set(busy) and all(t >= 0 for t in busy.values())
    before = placement.own_busy()
    end = time.process_time() + 0.1
    while time.process_time() < end:
        pass
    assert placement.own_busy() > before
    assert placement.current_cpu() in os.sched_getaffinity(0)


@TWO_CPUS
def test_threads_reset_to_every_cpu_as_a_cpuset_change_does_are_bound_again() -> None:
    proc = _probe()
    try:
        first = _report(proc, ask=False)
        everything = set(os.sched_getaffinity(0))
        for tid in first["sets"]:  # what writing the cgroup's cpuset.cpus does to each thread
            os.sched_setaffinity(int(tid), everything)
        deadline = time.monotonic() + 10
        seen = _report(proc)
        while any(len(cpus) > 1 for cpus in seen["sets"].values()):
            assert time.monotonic() < deadline, seen
            time.sleep(0.1)
            seen = _report(proc)
    finally:
        proc.kill()
        proc.wait()
    assert all(cpus == [seen["home"]] for cpus in seen["sets"].values())
    assert seen["allowed"] == sorted(everything) and seen["gauge"] == seen["home"]
