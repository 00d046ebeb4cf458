"""Time-driven helpers for the actor kit: a ticker thread and restart backoff."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import pykka


class Ticker:
    """A daemon thread that tells ``message`` to ``ref`` every ``interval`` seconds until
    ``stop()`` is called or the actor is dead."""

    def __init__(self, ref: pykka.ActorRef[Any], message: Any, interval: float) -> None:
        self._ref, self._message, self._interval = ref, message, interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"ticker-{ref}", daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._ref.tell(self._message)
            except pykka.ActorDeadError:
                return


class Backoff:
    """Restart delays: ``base * 2**n`` capped at ``cap``, n = crashes in the last minute."""

    def __init__(self, base: float = 0.05, cap: float = 5.0, window: float = 60.0) -> None:
        self.base, self.cap, self.window = base, cap, window
        self._crashes: deque[float] = deque()

    def next_delay(self, moment: float) -> float:
        while self._crashes and self._crashes[0] < moment - self.window:
            self._crashes.popleft()
        delay = min(self.cap, self.base * (1 << min(len(self._crashes), 20)))
        self._crashes.append(moment)
        return delay
