"""Email verification (docs/lifecycle.md#email-verification): the Redis token, the
per-customer lock, the guarded activation with ``customer_updated`` and the password-reset
request (docs/lifecycle.md#outgoing-requests) in one transaction, single use.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

from customer_manager import metrics
from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.service.deps import Deps, body, handlers
from customer_manager.actors.service.outbox import customer_outbox, deferred_call
from customer_manager.actors.service.signup import TOKEN_TTL, token_key
from customer_manager.errors import FailedPrecondition, InvalidArgument, ServiceError, Unavailable
from customer_manager.messages.bodies import EmailVerifyBody
from customer_manager.messages.ops import Op
from customer_manager.messages.queues import AGENT_QUEUE
from customer_manager.messages.records import Customer, after, now
from customer_manager.messages.wire import Response, json_request, ok
from customer_manager.storage.base import Deleted, OutboxMessage, Storage, Transition

LOCK_TTL = 30  # docs/lifecycle.md#settings
PASSWORD_FORGOT_TIMEOUT = 30.0
_TOKEN = re.compile(r"[0-9a-f]{64}")


def lock_key(customer_id: uuid.UUID) -> str:
    return f"verify_lock:{customer_id}"


def _password_forgot(customer: Customer) -> OutboxMessage:
    request = json_request("/v1/password-forgot", "POST", {"username": customer.email})
    return deferred_call(
        AGENT_QUEUE, request, PASSWORD_FORGOT_TIMEOUT, after(TOKEN_TTL), "password_forgot"
    )


def email_verify(deps: Deps, op: Op) -> Flow[Response]:
    token = body(op.request.data, EmailVerifyBody).token
    if not _TOKEN.fullmatch(token):
        _count_verify("invalid_token")
        raise InvalidArgument("verification token expired or invalid", "INVALID_TOKEN")
    owner = secrets.token_hex(16)

    def locked(raw: bytes | None) -> Flow[Response]:
        try:
            customer_id = uuid.UUID(raw.decode()) if raw else None
        except ValueError:
            customer_id = None
        if customer_id is None:
            _count_verify("invalid_token")
            raise InvalidArgument("verification token expired or invalid", "INVALID_TOKEN")
        lock = lock_key(customer_id)

        def verify(acquired: bool) -> Flow[Response]:
            if not acquired:
                _count_verify("already_verified")  # as upstream counts contention
                raise FailedPrecondition(
                    "verification already in progress", "VERIFICATION_IN_PROGRESS"
                )
            flow: Flow[Any] = _verify(deps, customer_id, token)
            return flow.recover(Exception, lambda exc: exc).then(
                lambda outcome: _released(deps, lock, owner, outcome)
            )

        return deps.cache.claim(lock, owner, LOCK_TTL, only_if_absent=True).then(verify)

    return deps.cache.read(token_key(token)).then(locked).recover(ServiceError, _verify_failed)


def _released(deps: Deps, lock: str, owner: str, outcome: Any) -> Flow[Response]:
    """Release the lock (compare-and-delete), then answer or re-raise."""

    def answer(_: None) -> Response:
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, Response)
        return outcome

    return deps.cache.release(lock, owner).then(answer)


def _verify(deps: Deps, customer_id: uuid.UUID, token: str) -> Flow[Response]:
    def check(customer: Customer) -> Response | Flow[Response] | None:
        if customer.deleted:  # F9: never re-activate an expired or deleted customer
            return _done(deps, token, None, "invalid_token")
        if customer.email_verified:
            return _done(deps, token, ok({"customer": customer}), "already_verified")
        return None

    def first(customer: Customer) -> Response | Flow[Response]:
        answer = check(customer)
        if answer is not None:
            return answer
        moment = now()
        step = Transition(
            changes={"email_verified": True, "status": "active"},
            email_verified=False,
            outbox=lambda row: [*customer_outbox("customer_updated")(row), _password_forgot(row)],
        )
        return deps.storage.run(Storage.customer_transition, customer_id, [step], moment).then(
            activated
        )

    def activated(result: Deleted | None) -> Flow[Response]:
        if result is None:
            return deps.storage.run(Storage.customer_get, customer_id).then(raced)
        record = result.record
        assert isinstance(record, Customer)
        reply = ok({"customer": record})
        return deps.saved(record).then(lambda _: _done(deps, token, reply, "success"))

    def raced(customer: Customer) -> Response | Flow[Response]:
        answer = check(customer)
        if answer is None:
            raise Unavailable("the customer changed meanwhile, try again")
        return answer

    def loaded(found: Customer | None) -> Response | Flow[Response]:
        if found is None:
            return _done(deps, token, None, "invalid_token")
        return first(found)

    return (
        deps.storage.run(Storage.customer_get, customer_id)
        .recover(ServiceError, _missing)
        .then(loaded)
    )


def _missing(exc: ServiceError) -> None:
    if exc.status != "NOT_FOUND":
        raise exc
    return None


def _done(deps: Deps, token: str, reply: Response | None, status: str) -> Flow[Response]:
    """DEL the token (single use), count, and answer (None: 400 INVALID_TOKEN)."""

    def answer(_: None) -> Response:
        _count_verify(status)
        if reply is None:
            raise InvalidArgument("verification token expired or invalid", "INVALID_TOKEN")
        return reply

    return deps.cache.drop(token_key(token)).then(answer)


def _verify_failed(exc: ServiceError) -> Any:
    if exc.status in ("UNAVAILABLE", "INTERNAL"):
        _count_verify("error")
    raise exc


def _count_verify(status: str) -> None:
    metrics.child(metrics.email_verification_total, status).inc()


HANDLERS = handlers(email_verify)
