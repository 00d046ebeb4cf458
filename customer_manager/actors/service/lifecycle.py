"""The customer lifecycle (docs/lifecycle.md#statuses-and-transitions): freeze, recover,
freeze_and_delete, metadata and identity verification (the sweeps are in sweeps.py).

Every transition is a conditional update in storage (``Storage.customer_transition``): the
handler decides from the record what to answer, and the guard in the WHERE clause decides
what happens when another request or replica changed the row meanwhile (0 rows: the row is
re-read and answered from its new state, with no event). Freeze, recover and
freeze_and_delete read no body (api-manager sends none).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.service.customers import refuse_protected, update_customer
from customer_manager.actors.service.deps import Deps, body, handlers
from customer_manager.actors.service.outbox import customer_outbox, revoked_key_outbox
from customer_manager.errors import FailedPrecondition, InvalidArgument
from customer_manager.messages.ops import Op
from customer_manager.messages.records import (
    IDENTITY_STATUSES,
    SENTINEL,
    Customer,
    Metadata,
    now,
)
from customer_manager.messages.wire import Response, ok
from customer_manager.storage.base import Deleted, Storage, Transition

log = logging.getLogger(__name__)

FREEZE_GRACE = 30 * 86400  # docs/lifecycle.md#settings: deletion is due 30 days after the freeze
_ANONYMIZED = re.compile(r"deleted_[0-9a-f]{8}@removed\.voipbin\.net")

Check = Callable[[Customer], Response | None]  # a reply (nothing to do), None (go on), or raise


def _live_or_refuse(customer: Customer) -> None:
    if customer.deleted:
        raise FailedPrecondition(f"customer {customer.id} is deleted", "CUSTOMER_DELETED")
    if customer.status == "initial":
        raise FailedPrecondition(
            f"customer {customer.id} has not verified its email", "CUSTOMER_NOT_ACTIVE"
        )


def _transition(
    deps: Deps,
    customer_id: uuid.UUID,
    check: Check,
    settle: Check,
    steps: Callable[[Customer, str], Sequence[Transition]],
) -> Flow[Response]:
    """Read the customer; ``check`` it; run ``steps``; on a lost race re-read and answer
    with ``settle`` (or 409 if it has nothing to say)."""

    def start(customer: Customer) -> Response | Flow[Response]:
        answer = check(customer)
        if answer is not None:
            return answer
        moment = now()
        return deps.storage.run(
            Storage.customer_transition, customer_id, steps(customer, moment), moment
        ).then(finish)

    def finish(result: Deleted | None) -> Response | Flow[Response]:
        if result is not None:
            return deps.deleted(result)
        return deps.storage.run(Storage.customer_get, customer_id).then(raced)

    def raced(customer: Customer) -> Flow[Response]:
        def answer(_: Any) -> Response:
            reply = settle(customer)
            if reply is None:
                raise FailedPrecondition(
                    f"customer {customer.id} changed meanwhile, try again", "CUSTOMER_CHANGED"
                )
            return reply

        return deps.cache.put(customer).then(answer)

    return deps.customer(customer_id).then(start)


def _freeze_step(moment: str) -> Transition:
    return Transition(
        changes={"status": "frozen", "tm_deletion_scheduled": moment},
        status="active",
        outbox=customer_outbox("customer_frozen"),
        operation="freeze",
    )


def anonymize_step(customer_id: uuid.UUID, moment: str) -> Transition:
    """docs/lifecycle.md#freeze-and-delete with F10: the personal data goes, the row stays
    (soft-deleted)."""
    short = str(customer_id)[:8]
    changes = {
        "name": f"deleted_user_{short}",
        "email": f"deleted_{short}@removed.voipbin.net",
        "phone_number": "",
        "address": "",
        "webhook_uri": "",
        "detail": "",
        "terms_agreed_ip": "",
        "webhook_secret": "",
        "status": "deleted",
        "tm_delete": moment,
    }
    return Transition(
        changes=changes,
        status="frozen",
        outbox=customer_outbox("customer_deleted"),
        revoke_keys=True,
        key_outbox=revoked_key_outbox,
        operation="anonymize_pii",
    )


def freeze(deps: Deps, op: Op) -> Flow[Response]:
    refuse_protected(op.id)

    def check(customer: Customer) -> Response | None:
        if customer.status == "frozen":
            return ok(customer)  # idempotent: no event
        _live_or_refuse(customer)
        return None

    return _transition(deps, op.id, check, check, lambda _c, moment: [_freeze_step(moment)])


def recover(deps: Deps, op: Op) -> Flow[Response]:
    def check(customer: Customer) -> Response | None:
        if customer.status != "frozen":
            raise FailedPrecondition(f"customer {customer.id} is not frozen", "CUSTOMER_NOT_FROZEN")
        return None

    def settle(customer: Customer) -> Response | None:
        if customer.status == "active":
            return ok(customer)  # a concurrent recover won: no event
        return check(customer)

    step = Transition(
        changes={"status": "active", "tm_deletion_scheduled": SENTINEL},
        status="frozen",
        outbox=customer_outbox("customer_recovered"),
        operation="recover",
    )
    return _transition(deps, op.id, check, settle, lambda _c, _m: [step])


def freeze_and_delete(deps: Deps, op: Op) -> Flow[Response]:
    refuse_protected(op.id)

    def check(customer: Customer) -> Response | None:
        if customer.status == "deleted" and _ANONYMIZED.fullmatch(customer.email):
            return ok(customer)  # F11: already done, no event
        _live_or_refuse(customer)
        return None

    def steps(customer: Customer, moment: str) -> list[Transition]:
        first = [_freeze_step(moment)] if customer.status == "active" else []
        return [*first, anonymize_step(customer.id, moment)]

    return _transition(deps, op.id, check, check, steps)


class _MetadataBody(msgspec.Struct):
    metadata: Any = None


def metadata(deps: Deps, op: Op) -> Flow[Response]:
    """docs/lifecycle.md#metadata: a full replace of ``metadata``; ``customer_updated`` even if
    unchanged."""
    raw = bytes(op.request.data)
    try:
        given = msgspec.json.decode(raw, type=_MetadataBody).metadata if raw else None
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidArgument("the body is not a metadata object", "INVALID_BODY") from None
    if not raw:
        raise InvalidArgument("a body is required", "INVALID_BODY")
    flag = given.get("rtp_debug", False) if isinstance(given, dict) else None
    if not isinstance(flag, bool):
        raise InvalidArgument('metadata must be {"rtp_debug":<bool>}', "INVALID_METADATA")
    return update_customer(deps, op.id, {"metadata": Metadata(rtp_debug=flag)})


class _IdentityBody(msgspec.Struct):
    status: str = ""


def set_identity_verification(deps: Deps, op: Op) -> Flow[Response]:
    """docs/lifecycle.md#identity-verification (no route; the CLI): a new status is stored and
    published, the same one is
    answered as it is. Deleted customers are not refused."""
    status = body(op.request.data, _IdentityBody).status
    if status not in IDENTITY_STATUSES:
        raise InvalidArgument(
            f"invalid status {status[:32]!r}: must be one of {', '.join(IDENTITY_STATUSES)}",
            "INVALID_STATUS",
        )

    def change(customer: Customer) -> Response | Flow[Response]:
        if customer.identity_verification_status == status:
            return ok(customer)
        event = "customer_identity_verification_updated"
        return update_customer(deps, op.id, {"identity_verification_status": status}, event)

    return deps.customer(op.id).then(change)


HANDLERS = handlers(
    set_identity_verification,
    freeze,
    recover,
    freeze_and_delete,
    metadata,
)
