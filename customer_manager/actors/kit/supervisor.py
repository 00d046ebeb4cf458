"""The supervisor of a pool (``kit/pool.py``): on every ``Tick`` of its ticker it restarts
crashed members whose backoff elapsed and expires works that never started.

Threading contract: runs in its own actor thread; it only calls the pool's thread-safe
``supervise`` and, when stopped, ``shutdown``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec
import pykka

if TYPE_CHECKING:
    from customer_manager.actors.kit.pool import Pool

log = logging.getLogger(__name__)


class Tick(msgspec.Struct, frozen=True):
    """The supervisor's periodic message."""


class Supervisor(pykka.ThreadingActor):
    """Restarts crashed members and expires stale works, once per ``Tick``. Stopping it
    stops the pool (no more restarts; queued works complete with Unavailable)."""

    def __init__(self, pool: Pool) -> None:
        super().__init__()
        self._pool = pool

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Tick):
            try:
                self._pool.supervise()
            except Exception:
                log.exception("supervision of pool %s failed", self._pool.name)
        return None

    def on_stop(self) -> None:
        self._pool.shutdown()
