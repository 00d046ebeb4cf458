"""``Throttle``: once per key and interval, in this process. Thread-safe."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable

MAX_REMEMBERED = 100_000  # keys remembered before the expired ones are forgotten


class Throttle:
    """Has ``key`` passed within the last ``interval`` seconds? (see ``first``)"""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._until: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        """True, and remember it, if ``key`` did not pass within the interval."""
        moment = time.monotonic()
        with self._lock:
            if self._until.get(key, 0.0) > moment:
                return False
            if len(self._until) >= MAX_REMEMBERED:
                self._until = {k: t for k, t in self._until.items() if t > moment}
            self._until[key] = moment + self.interval
            return True
