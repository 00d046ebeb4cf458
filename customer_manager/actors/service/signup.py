"""Signup and email verification (docs/lifecycle.md#redis-keys, docs/lifecycle.md#signup,
docs/lifecycle.md#email-verification, docs/lifecycle.md#outgoing-requests).

Signup validates as create does, stores the verification token in Redis, then inserts the
customer and its access key with every outbox row (events, webhooks, the verification-email
request) in one transaction (F7). email_verify looks the token up, takes the per-customer
lock, activates the customer with a conditional update (never a deleted or expired one, F9)
and stores ``customer_updated`` (F4) and the password-reset request with it. The two
outgoing requests are deferred outbox entries, sent after the reply (F8).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from customer_manager import metrics
from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.service.accesskeys import TOKEN_PREFIX_LEN, new_token
from customer_manager.actors.service.customers import agents_free, new_customer, validate
from customer_manager.actors.service.deps import Deps, body, handlers
from customer_manager.actors.service.outbox import (
    customer_outbox,
    deferred_call,
    event_message,
    webhook_message,
)
from customer_manager.errors import FailedPrecondition, InvalidArgument, ServiceError, Unavailable
from customer_manager.messages.bodies import CustomerFields, EmailVerifyBody, SignupBody
from customer_manager.messages.ops import Op
from customer_manager.messages.query import hash_token
from customer_manager.messages.queues import AGENT_QUEUE, EMAIL_QUEUE
from customer_manager.messages.records import (
    NIL,
    SENTINEL,
    SYSTEM_ID,
    Accesskey,
    Customer,
    after,
    now,
)
from customer_manager.messages.wire import Response, json_request, ok
from customer_manager.storage.base import Deleted, OutboxMessage, Storage, Transition

TOKEN_TTL = 3600  # docs/lifecycle.md#settings constants
LOCK_TTL = 30
SIGNUP_KEY_LIFETIME = 31_536_000
EMAIL_TIMEOUT = 3.0
PASSWORD_FORGOT_TIMEOUT = 30.0
_TOKEN = re.compile(r"[0-9a-f]{64}")
SUBJECT = "VoIPBin - Verify Your Email"
CONTENT = (
    "Welcome to VoIPBin!\n\nClick the link below to verify your email address (expires in 1"
    " hour):\n\n{link}\n\nIf you did not create this account, you can safely ignore this email."
)


def token_key(token: str) -> str:
    return f"email_verify:{token}"


def lock_key(customer_id: uuid.UUID) -> str:
    return f"verify_lock:{customer_id}"


# -- signup -------------------------------------------------------------------------------------


def signup(deps: Deps, op: Op) -> Flow[Response]:
    try:
        given = body(op.request.data, SignupBody)
        _check_ip(given.client_ip)
        fields = CustomerFields(**{k: getattr(given, k) for k in CustomerFields.__struct_fields__})
        validate(fields)
    except ServiceError:
        _count_signup("validation_failed")
        raise
    customer = new_customer(
        fields,
        email_verified=False,
        status="initial",
        terms_agreed_version=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        terms_agreed_ip=given.client_ip,
    )
    token, verify_token = new_token(), secrets.token_hex(32)
    created = now()
    key = Accesskey(
        id=uuid.uuid4(),
        customer_id=customer.id,
        name="default",
        detail="Auto-provisioned API key",
        token_prefix=token[:TOKEN_PREFIX_LEN],
        tm_expire=after(SIGNUP_KEY_LIFETIME, created),
        tm_create=created,
        tm_update=SENTINEL,
        tm_delete=SENTINEL,
    )

    def store(emailing: bool) -> Flow[tuple[Customer, Accesskey]]:
        email = _verification_email(deps, customer, verify_token) if emailing else None
        outbox = _signup_outbox(email)
        return deps.storage.run(Storage.customer_signup, customer, key, hash_token(token), outbox)

    def saved(rows: tuple[Customer, Accesskey]) -> Flow[Response]:
        _count_signup("success")
        stored_customer, stored_key = rows
        reply = {
            "customer": stored_customer,
            "accesskey": msgspec.structs.replace(stored_key, token=token),
        }
        return (
            deps.cache.put_token(hash_token(token), stored_key.id)
            .then(lambda _: deps.cache.put(stored_key))
            .then(lambda _: deps.saved(stored_customer))
            .then(lambda _: ok(reply))
        )

    return (
        agents_free(deps, fields.email)
        .then(
            lambda _: deps.cache.claim(
                token_key(verify_token), str(customer.id), TOKEN_TTL, only_if_absent=False
            ).recover(
                Unavailable, lambda _: False
            )  # no Redis: no email (docs/lifecycle.md#signup step 3)
        )
        .then(store)
        .then(saved)
        .recover(ServiceError, _signup_failed)
    )


def _signup_failed(exc: ServiceError) -> Any:
    _count_signup(
        "validation_failed" if exc.status != "UNAVAILABLE" and exc.status != "INTERNAL" else "error"
    )
    raise exc


def _count_signup(status: str) -> None:
    metrics.child(metrics.signup_total, status).inc()


def _check_ip(client_ip: str) -> None:
    if not client_ip:
        return
    try:
        ipaddress.ip_address(client_ip)
    except ValueError:
        valid = False
    else:
        valid = len(client_ip) <= 45
    if not valid:
        raise InvalidArgument(
            f"client_ip {client_ip[:64]!r} is not an IP address", "INVALID_CLIENT_IP"
        )


def _signup_outbox(email: OutboxMessage | None) -> Any:
    """docs/lifecycle.md#signup step 4: accesskey_created, customer_created (headless), their
    webhooks, then
    the verification-email request."""

    def build(customer: Customer, key: Accesskey) -> list[OutboxMessage]:
        hooks = [
            webhook_message("accesskey_created", customer, key),
            webhook_message("customer_created", customer, customer),
        ]
        return [
            event_message("accesskey_created", key),
            event_message("customer_created", customer, headless=True),
            *(hook for hook in hooks if hook is not None),
            *([email] if email is not None else []),
        ]

    return build


class _Address(msgspec.Struct, omit_defaults=True):
    type: str = ""
    target: str = ""


class _EmailBody(msgspec.Struct):
    """``V1DataEmailsPost`` (docs/lifecycle.md#outgoing-requests), keys in Go order."""

    customer_id: uuid.UUID
    activeflow_id: uuid.UUID
    destinations: list[_Address]
    subject: str
    content: str
    attachments: None = None


def _verification_email(deps: Deps, customer: Customer, token: str) -> OutboxMessage:
    link = f"{deps.settings.email_verify_base_url}/auth/email-verify?token={token}"
    data = _EmailBody(
        customer_id=SYSTEM_ID,
        activeflow_id=NIL,
        destinations=[_Address(type="email", target=customer.email)],
        subject=SUBJECT,
        content=CONTENT.format(link=link),
    )
    request = json_request("/v1/emails", "POST", data)
    return deferred_call(EMAIL_QUEUE, request, EMAIL_TIMEOUT, after(TOKEN_TTL), "email_send")


def _password_forgot(customer: Customer) -> OutboxMessage:
    request = json_request("/v1/password-forgot", "POST", {"username": customer.email})
    return deferred_call(
        AGENT_QUEUE, request, PASSWORD_FORGOT_TIMEOUT, after(TOKEN_TTL), "password_forgot"
    )


# -- email_verify -------------------------------------------------------------------------------


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


HANDLERS = handlers(signup, email_verify)
