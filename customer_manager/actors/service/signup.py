"""Signup (docs/lifecycle.md#signup, docs/lifecycle.md#redis-keys).

Signup validates as create does, stores the verification token in Redis, then inserts the
customer and its access key with every outbox row (events, webhooks, the verification-email
request) in one transaction. The email request is a deferred outbox entry, sent after the
reply (docs/lifecycle.md#outgoing-requests). Email verification is in verify.py.
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from customer_manager import metrics
from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.service.customers import agents_free, new_customer, validate
from customer_manager.actors.service.deps import Deps, body, handlers
from customer_manager.actors.service.newkey import new_key
from customer_manager.actors.service.outbox import (
    deferred_call,
    event_message,
    webhook_message,
)
from customer_manager.errors import InvalidArgument, ServiceError, Unavailable
from customer_manager.messages.bodies import CustomerFields, SignupBody
from customer_manager.messages.ops import Op
from customer_manager.messages.query import hash_token
from customer_manager.messages.queues import EMAIL_QUEUE
from customer_manager.messages.records import (
    NIL,
    SYSTEM_ID,
    Accesskey,
    Customer,
    after,
    now,
)
from customer_manager.messages.wire import Response, json_request, ok
from customer_manager.storage.base import OutboxMessage, Storage

TOKEN_TTL = 3600  # docs/lifecycle.md#settings constants
SIGNUP_KEY_LIFETIME = 31_536_000
EMAIL_TIMEOUT = 3.0
SUBJECT = "VoIPBin - Verify Your Email"
CONTENT = (
    "Welcome to VoIPBin!\n\nClick the link below to verify your email address (expires in 1"
    " hour):\n\n{link}\n\nIf you did not create this account, you can safely ignore this email."
)


def token_key(token: str) -> str:
    return f"email_verify:{token}"


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
    verify_token, created = secrets.token_hex(32), now()
    key, token = new_key(
        customer.id, "default", "Auto-provisioned API key", SIGNUP_KEY_LIFETIME, created
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


HANDLERS = handlers(signup)
