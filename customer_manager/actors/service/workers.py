"""CustomerActor: the pool member serving every customer ``Op`` (the older operations in
customers.py, the lifecycle in lifecycle.py, the sweeps in sweeps.py, signup in signup.py,
email verification in verify.py).

Threading contract: a member handles one ``Op`` at a time in its own thread and returns
exactly one Response or a ``Flow`` of the steps that follow (deps.py); it never waits for
another actor.
"""

from __future__ import annotations

from customer_manager.actors.service import customers, lifecycle, signup, sweeps, verify
from customer_manager.actors.service.deps import Handler, Worker

HANDLERS: dict[str, Handler] = {
    **customers.HANDLERS,
    **lifecycle.HANDLERS,
    **sweeps.HANDLERS,
    **signup.HANDLERS,
    **verify.HANDLERS,
}


class CustomerActor(Worker):
    """A pool member serving customer ``Op``s (see module doc)."""

    handlers = HANDLERS
