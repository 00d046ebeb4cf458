"""The actor side of the kit (docs/architecture.md#rooms): the base of pool members. Pools
themselves are in ``actors/kit/pool.py``, what travels through them in ``actors/kit/flow.py``,
the ticker and backoff in ``actors/kit/timing.py``. Members take a C ``SimpleQueue`` as their
inbox (trick ``pykka-waking-inbox``, ``customer_manager/tricks/pykka_inbox.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from customer_manager.actors.kit.flow import Work
from customer_manager.actors.kit.pool import MemberCrashed, Outcome
from customer_manager.tricks.pykka_inbox import SimpleInboxActor

if TYPE_CHECKING:
    from customer_manager.actors.kit.pool import Pool


class Crash(msgspec.Struct, frozen=True, kw_only=True):
    """Tell this to a member to make it crash (fault injection for tests and chaos runs)."""

    reason: str = "crash requested"


class PoolMember(SimpleInboxActor):
    """Base of pool members. Subclasses override ``handle`` (and ``setup``/``teardown``).

    ``__init__`` runs in the caller's thread; ``setup``, ``handle`` and ``teardown`` in the
    member's own thread. ``handle`` may raise: the error goes to the work's ``done``.
    """

    def __init__(self, pool: Pool) -> None:
        super().__init__()
        self.pool = pool

    def setup(self) -> None:
        """Open resources (connections); an exception counts as a crash."""

    def teardown(self) -> None:
        """Release resources; called once when the member stops or crashes."""

    def handle(self, message: Any) -> Any:
        raise NotImplementedError

    # A member that can run several of its queued messages at once (one transaction for
    # many writes) overrides these three (``Pool.run``); by default each runs alone.
    batch_limit = 1

    def batches(self, message: Any) -> bool:
        return False

    def handle_batch(self, messages: list[Any]) -> list[Outcome]:
        raise NotImplementedError

    def on_start(self) -> None:
        try:
            self.setup()
        except Exception:
            self.pool.member_gone(self.actor_ref, crashed=True)
            raise

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Work):
            self.pool.run(self.actor_ref, message, self)
            return None
        if isinstance(message, Crash):
            raise MemberCrashed(message.reason)
        return super().on_receive(message)

    def on_stop(self) -> None:
        self.pool.member_gone(self.actor_ref, crashed=False)
        self.teardown()

    def on_failure(self, *exc_info: Any) -> None:
        self.pool.member_gone(self.actor_ref, crashed=True)
        self.teardown()
