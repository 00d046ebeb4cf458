"""The customer operations (docs/api.md#customer-list to docs/api.md#customer-balance-check).

Threading contract: a member handles one ``Op`` at a time in its own thread and returns
exactly one Response or a ``Flow`` of the steps that follow (deps.py); it never waits for
another actor. Every write stores its event/webhook in the outbox with the change, refreshes
the cache and then tells the publisher to relay (fire and forget).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

import msgspec

from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.service.deps import Deps, body, handlers
from customer_manager.actors.service.outbox import customer_outbox, key_outbox
from customer_manager.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)
from customer_manager.messages import gojson
from customer_manager.messages.bodies import (
    BillingAccountBody,
    CustomerFields,
    IsValidBalanceBody,
)
from customer_manager.messages.ops import Op
from customer_manager.messages.query import parse_list
from customer_manager.messages.queues import AGENT_QUEUE, BILLING_QUEUE
from customer_manager.messages.records import (
    NIL,
    PROTECTED_IDS,
    SENTINEL,
    Customer,
    Metadata,
    new_webhook_secret,
    now,
)
from customer_manager.messages.wire import JSON, PUBLISHER, Request, Response, ok
from customer_manager.storage.base import Storage

log = logging.getLogger(__name__)


# -- validation -----------------------------------------------------------------------------

_LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_EMAIL = re.compile(rf"[a-zA-Z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})*")
WEBHOOK_METHODS = frozenset({"", "POST", "GET", "PUT", "DELETE"})


def valid_email(email: str) -> bool:
    """The email rules of docs/api.md#customer-create (Go's, without its crashes on empty
    parts)."""
    if not email or ".." in email or email.endswith(".") or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    if not local or not domain or local.endswith(".") or domain.endswith("."):
        return False
    return _EMAIL.fullmatch(email) is not None


def check_webhook(fields: CustomerFields) -> None:
    """A known method, and an absolute http(s) URL when a uri is given
    (docs/api.md#customer-create)."""
    if fields.webhook_method not in WEBHOOK_METHODS:
        raise InvalidArgument(
            "webhook_method must be POST, GET, PUT or DELETE", "INVALID_WEBHOOK_METHOD"
        )
    if fields.webhook_uri:
        try:
            parts = urlsplit(fields.webhook_uri)
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument(
                "webhook_uri must be an absolute http(s) URL", "INVALID_WEBHOOK_URI"
            )


def agents_free(deps: Deps, email: str) -> Flow[None]:
    """An active agent with this username means the email is taken (409;
    docs/api.md#agent-manager-username-check); no check with ``agent_check=off``."""
    if deps.settings.agent_check == "off":
        return Flow.of(None)
    filters = gojson.encode_sorted({"deleted": False, "username": email})
    request = Request(
        uri="/v1/agents?page_token=&page_size=100",
        method="GET",
        publisher=PUBLISHER,
        data_type=JSON,
        data=msgspec.Raw(filters),
    )
    return deps.call(AGENT_QUEUE, request).then(_no_agents)


def _no_agents(reply: Response) -> None:
    if reply.status_code >= 300:
        raise Unavailable(f"agent-manager answered {reply.status_code}", "AGENT_CHECK_FAILED")
    try:
        agents = msgspec.json.decode(reply.data, type=list[Any]) if reply.data else []
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise Unavailable("agent-manager sent an unreadable reply", "AGENT_CHECK_FAILED") from None
    if agents:
        raise AlreadyExists("the email is already used by an agent", "EMAIL_ALREADY_EXISTS")


class _Account(msgspec.Struct, kw_only=True):
    customer_id: uuid.UUID = NIL
    tm_delete: str | None = None


def billing_account_of(deps: Deps, customer: Customer, account_id: uuid.UUID) -> Flow[None]:
    """The account must exist, be active and belong to this customer (400
    INVALID_BILLING_ACCOUNT, docs/api.md#billing-manager-account); no check unless
    ``billing_account_check`` is on."""
    if not deps.settings.billing_account_check:
        return Flow.of(None)
    request = Request(
        uri=f"/v1/accounts/{account_id}", method="GET", publisher=PUBLISHER, data_type=JSON
    )

    def owned(reply: Response) -> None:
        try:
            account = msgspec.json.decode(reply.data or b"null", type=_Account | None)
        except (msgspec.DecodeError, msgspec.ValidationError):
            account = None
        if (
            reply.status_code >= 300
            or account is None
            or account.tm_delete not in (None, "", SENTINEL)  # deleted
            or account.customer_id != customer.id
        ):
            raise InvalidArgument(
                f"billing account {account_id} is not an active account of customer {customer.id}",
                "INVALID_BILLING_ACCOUNT",
            )

    return deps.call(BILLING_QUEUE, request).then(owned)


# -- operations -----------------------------------------------------------------------------


def validate(fields: CustomerFields) -> None:
    """Create's checks of the body (docs/api.md#customer-create); signup runs them too
    (docs/lifecycle.md#signup)."""
    if not valid_email(fields.email):
        raise InvalidArgument(f"invalid email {fields.email[:100]!r}", "INVALID_EMAIL")
    check_webhook(fields)


def new_customer(fields: CustomerFields, **lifecycle: Any) -> Customer:
    """A customer to insert (docs/lifecycle.md#customer-record): active and verified unless
    ``lifecycle`` says else."""
    values: dict[str, Any] = {
        "email_verified": True,
        "status": "active",
        "identity_verification_status": "none",
        "metadata": Metadata(),
        **lifecycle,
    }
    return Customer(
        id=uuid.uuid4(),
        **msgspec.structs.asdict(fields),
        webhook_secret=new_webhook_secret(),
        billing_account_id=NIL,
        tm_deletion_scheduled=SENTINEL,
        tm_create=now(),
        tm_update=SENTINEL,
        tm_delete=SENTINEL,
        **values,
    )


def create(deps: Deps, op: Op) -> Flow[Response]:
    fields = body(op.request.data, CustomerFields)
    validate(fields)
    customer = new_customer(fields)
    outbox = customer_outbox("customer_created", headless=False)
    return (
        agents_free(deps, fields.email)
        .then(
            lambda _: deps.write(
                Storage.customer_insert, customer, outbox, request_key=op.request_key
            )
        )
        .then(deps.saved)
        .then(ok)
    )


def get(deps: Deps, op: Op) -> Flow[Response]:
    return deps.customer(op.id).then(ok)


def list_(deps: Deps, op: Op) -> Flow[Response]:
    query = parse_list("customer", op.request.uri, bytes(op.request.data), now())
    return deps.storage.run(Storage.customer_list, query).then(ok)


def update(deps: Deps, op: Op) -> Flow[Response]:
    fields = body(op.request.data, CustomerFields)

    def checked(current: Customer) -> Flow[Response]:
        if (fields.webhook_method, fields.webhook_uri) != (
            current.webhook_method,
            current.webhook_uri,
        ):
            check_webhook(fields)  # a Go-era value sent back unchanged is not rejected
        return update_customer(deps, op.id, msgspec.structs.asdict(fields), key=op.request_key)

    return deps.customer(op.id).then(checked)


def update_billing_account(deps: Deps, op: Op) -> Flow[Response]:
    account_id = body(op.request.data, BillingAccountBody).billing_account_id
    return (
        deps.customer(op.id)
        .then(lambda customer: billing_account_of(deps, customer, account_id))
        .then(
            lambda _: update_customer(
                deps, op.id, {"billing_account_id": account_id}, key=op.request_key
            )
        )
    )


def update_customer(
    deps: Deps,
    customer_id: uuid.UUID,
    changes: dict[str, Any],
    event: str = "customer_updated",
    *,
    key: str = "",
) -> Flow[Response]:
    """Apply ``changes``; ``key`` (the request's) makes a repeat of the request get the
    first run's reply (docs/api.md)."""
    outbox = customer_outbox(event)
    return (
        deps.write(Storage.customer_update, customer_id, changes, now(), outbox, request_key=key)
        .then(deps.saved)
        .then(ok)
    )


def refuse_protected(customer_id: uuid.UUID) -> None:
    """F2 (docs/lifecycle.md#protected-customers): the guest, basic-route and system customers are
    never deleted or frozen;
    checked before the lookup."""
    if customer_id in PROTECTED_IDS:
        raise FailedPrecondition(f"customer {customer_id} is protected", "CUSTOMER_PROTECTED")


def delete(deps: Deps, op: Op) -> Flow[Response]:
    """Soft-delete the customer and revoke its active keys (docs/storage.md#soft-delete);
    deleting a deleted customer again revokes any key still active (Go-era data, keys a Go
    replica created). Protected customers are refused first
    (docs/lifecycle.md#protected-customers)."""
    refuse_protected(op.id)

    def remove(customer: Customer) -> Flow[Response]:
        outboxes = customer_outbox("customer_deleted"), key_outbox("accesskey_deleted", customer)
        key = op.request_key
        removed = deps.write(Storage.customer_delete, op.id, now(), *outboxes, request_key=key)
        return removed.then(deps.deleted)

    return deps.customer(op.id).then(remove)


def is_valid_balance(deps: Deps, op: Op) -> Flow[Response]:
    """docs/api.md#customer-balance-check. No answer from billing-manager is 503; a failed
    answer is 400."""
    fields = body(op.request.data, IsValidBalanceBody)
    data = {
        "billing_type": fields.reference_type,
        "country": fields.country,
        "count": max(fields.count, 1),
    }

    def ask_billing(customer: Customer) -> Flow[Response]:
        request = Request(
            uri=f"/v1/accounts/{customer.billing_account_id}/is_valid_balance",
            method="POST",
            publisher=PUBLISHER,
            data_type=JSON,
            data=msgspec.Raw(gojson.encode(data)),
        )
        return deps.call(BILLING_QUEUE, request)

    return deps.customer(op.id).then(ask_billing).then(_balance_reply)


def _balance_reply(reply: Response) -> Response:
    try:
        valid = msgspec.json.decode(reply.data, type=_Valid).valid
    except (msgspec.DecodeError, msgspec.ValidationError):
        valid = None
    if reply.status_code >= 300 or valid is None:
        raise InvalidArgument(
            f"billing-manager answered {reply.status_code}", "BALANCE_CHECK_FAILED"
        )
    return ok({"valid": valid})


class _Valid(msgspec.Struct):
    valid: bool


HANDLERS = handlers(create, get, list_, update, delete, update_billing_account, is_valid_balance)
