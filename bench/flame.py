"""Summarise a py-spy ``raw`` (collapsed stacks) profile: ``python -m bench.flame FILE``.

Prints the share of samples per actor, per cost category, and the top functions by self
and by inclusive samples. A sample whose leaf frame blocks (lock or
future wait, socket poll, waiting for a Redis or MySQL reply) counts as waiting; otherwise
the category comes from the whole stack, first match wins: logging, metrics, pika, redis,
mysql, json, then "actor plumbing" (pykka, queue, threading at the leaf), "service code".
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("logging", ("logging/", "customer_manager/main.py")),
    ("metrics", ("prometheus_client/",)),
    ("pika", ("pika/",)),
    ("redis", ("redis/",)),
    ("mysql", ("mysql/",)),
    ("json", ("json/", "msgspec", "gojson.py")),
)
_PLUMBING = ("pykka/", "queue.py", "threading.py", "kit.py", "concurrent/")
# Leaf frames that block (py-spy's idle detection does not catch these): time spent waiting.
_WAITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # pykka's loop blocked in its inbox's ``get`` shows as Condition.wait or as this line
    ("wait: actor inbox / future", ("Condition.wait", "Event.wait", "pykka/_actor.py:255)")),
    ("wait: amqp socket poll", ("PollPoller.poll (pika/adapters/select_connection.py:1240)",)),
    ("wait: redis reply", ("_read_from_socket (redis/_parsers/socket.py:64)",)),
    ("wait: mysql reply", ("_recv_chunk", "MySQLSocket.recv")),
)
_ACTOR = re.compile(r"^(\w+Actor)\.")
_GENERIC = {"Actor", "PumpActor", "ThreadingActor"}


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def category(frames: list[str]) -> str:
    for name, needles in _WAITS:
        if any(n in frames[-1] for n in needles):
            return name
    for name, needles in _CATEGORIES:
        if any(n in f for f in frames for n in needles):
            return name
    leaf = frames[-1]
    return "actor plumbing" if any(p in leaf for p in _PLUMBING) else "service code"


def actor(frames: list[str]) -> str:
    found = "other thread"
    for frame in frames:
        m = _ACTOR.match(frame)
        if m and m.group(1) not in _GENERIC:
            found = m.group(1)
    if found == "other thread" and frames and "<module>" in frames[0]:
        return "main thread"
    return found


def _short(frame: str) -> str:
    return re.sub(r"\(/.*?site-packages/|\(/.*?/lib/python3\.\d+/|\(/work/main/", "(", frame)


def summarise(stacks: list[tuple[list[str], int]], top: int) -> str:
    total = sum(c for _, c in stacks) or 1
    by_actor: Counter[str] = Counter()
    by_cat: Counter[str] = Counter()
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    for frames, count in stacks:
        by_actor[actor(frames)] += count
        by_cat[category(frames)] += count
        self_t[_short(frames[-1])] += count
        for frame in set(frames):
            incl[_short(frame)] += count
    waits = sum(c for name, c in by_cat.items() if name.startswith("wait:"))
    work = total - waits or 1
    out = [f"{total} samples, {total - waits} not blocked"]
    out.append("\nnot blocked, by category (% of not-blocked samples):")
    for name, count in by_cat.most_common():
        if not name.startswith("wait:"):
            out.append(f"  {100 * count / work:5.1f}%  {name}")
    for title, counter in (
        ("by actor", by_actor),
        ("by category", by_cat),
        ("top self", self_t),
        ("top inclusive", incl),
    ):
        out.append(f"\n{title}:")
        for name, count in counter.most_common(top):
            out.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.flame", description=__doc__)
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    print(summarise(parse(args.profile), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
