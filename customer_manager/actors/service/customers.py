"""CustomerActor pool: the customer operations (SPEC A §5.1–5.9 as changed by B.3).

Threading contract: a member handles one ``Op`` at a time in its own thread and returns
exactly one Response or a ``Forward`` (worker.py; errors become error replies, a member never
dies of a request). It blocks only on asks with timeouts: storage, cache, and outgoing calls
via the publisher. Every write stores its event/webhook in the outbox with the change,
refreshes the cache and then tells the publisher to relay (fire and forget).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

import msgspec

from customer_manager.actors.kit.flow import Forward
from customer_manager.actors.service.deps import (
    Deps,
    Handler,
    Worker,
    body,
    customer_not_found,
    write_then_reply,
    written,
)
from customer_manager.actors.service.outbox import customer_outbox, key_outbox
from customer_manager.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
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
from customer_manager.messages.records import NIL, SENTINEL, Customer, now
from customer_manager.messages.wire import JSON, PUBLISHER, Request, Response, ok
from customer_manager.storage.base import Deleted

log = logging.getLogger(__name__)


# -- validation -----------------------------------------------------------------------------

_LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_EMAIL = re.compile(rf"[a-zA-Z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})*")
WEBHOOK_METHODS = frozenset({"", "POST", "GET", "PUT", "DELETE"})


def valid_email(email: str) -> bool:
    """Part A §5.9, without its crashes on empty parts."""
    if not email or ".." in email or email.endswith(".") or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    if not local or not domain or local.endswith(".") or domain.endswith("."):
        return False
    return _EMAIL.fullmatch(email) is not None


def check_webhook(fields: CustomerFields) -> None:
    """B.3 #5: a known method, and an absolute http(s) URL when a uri is given."""
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


def check_agents(deps: Deps, email: str) -> None:
    """Part A §5.8.1: an active agent with this username means the email is taken."""
    filters = gojson.encode_sorted({"deleted": False, "username": email})
    request = Request(
        uri="/v1/agents?page_token=&page_size=100",
        method="GET",
        publisher=PUBLISHER,
        data_type=JSON,
        data=msgspec.Raw(filters),
    )
    reply = deps.call(AGENT_QUEUE, request)
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


def check_billing_account(deps: Deps, customer: Customer, account_id: uuid.UUID) -> None:
    """B.3 #21: the account must exist, be active and belong to this customer."""
    request = Request(
        uri=f"/v1/accounts/{account_id}", method="GET", publisher=PUBLISHER, data_type=JSON
    )
    reply = deps.call(BILLING_QUEUE, request)
    try:
        account = msgspec.json.decode(reply.data or b"null", type=_Account | None)
    except (msgspec.DecodeError, msgspec.ValidationError):
        account = None
    active = account is not None and account.tm_delete in (None, "", SENTINEL)
    if (
        reply.status_code >= 300
        or not active
        or account is None
        or (account.customer_id != customer.id)
    ):
        raise InvalidArgument(
            f"billing account {account_id} is not an active account of customer {customer.id}",
            "INVALID_BILLING_ACCOUNT",
        )


# -- operations -----------------------------------------------------------------------------


def create(deps: Deps, op: Op) -> Forward:
    fields = body(op.request.data, CustomerFields)
    if not valid_email(fields.email):
        raise InvalidArgument(f"invalid email {fields.email[:100]!r}", "INVALID_EMAIL")
    check_webhook(fields)
    if deps.settings.agent_check != "off":
        check_agents(deps, fields.email)
    customer = Customer(
        id=uuid.uuid4(),
        **msgspec.structs.asdict(fields),
        billing_account_id=NIL,
        tm_create=now(),
        tm_update=SENTINEL,
        tm_delete=SENTINEL,
    )
    return write_then_reply(
        deps,
        "customer_insert",
        customer,
        customer_outbox("customer_created"),
        request_key=op.request_key,
    )


def get(deps: Deps, op: Op) -> Forward:
    return deps.with_customer(op.id, ok)


def list_(deps: Deps, op: Op) -> Response:
    query = parse_list("customer", op.request.uri, bytes(op.request.data), now())
    rows: list[Customer] = deps.store.call("customer_list", query)
    return ok(rows)


def update(deps: Deps, op: Op) -> Forward:
    fields = body(op.request.data, CustomerFields)
    check_webhook(fields)
    return _update(deps, op, msgspec.structs.asdict(fields))


def update_billing_account(deps: Deps, op: Op) -> Forward:
    account_id = body(op.request.data, BillingAccountBody).billing_account_id
    if deps.settings.billing_account_check:
        check_billing_account(deps, deps.customer(op.id), account_id)
    return _update(deps, op, {"billing_account_id": account_id})


def _update(deps: Deps, op: Op, changes: dict[str, Any]) -> Forward:
    return write_then_reply(
        deps,
        "customer_update",
        op.id,
        changes,
        now(),
        customer_outbox("customer_updated"),
        not_found=lambda: customer_not_found(op.id),
        request_key=op.request_key,
    )


def delete(deps: Deps, op: Op) -> Response:
    customer = deps.customer(op.id)
    if customer.deleted:
        return ok(customer)
    try:
        result: Deleted = deps.store.call(
            "customer_delete",
            op.id,
            now(),
            customer_outbox("customer_deleted"),
            key_outbox("accesskey_deleted", customer),
            request_key=op.request_key,
        )
    except NotFound:
        raise customer_not_found(op.id) from None
    for key in result.keys:
        deps.cache.put(key)
    # also when it was deleted already (a retry after an unknown outcome): the cache said not
    return written(deps, result.record)


def is_valid_balance(deps: Deps, op: Op) -> Response:
    """Part A §5.7. No answer from billing-manager is 503; a failed answer is 400."""
    fields = body(op.request.data, IsValidBalanceBody)
    customer = deps.customer(op.id)
    data = {
        "billing_type": fields.reference_type,
        "country": fields.country,
        "count": max(fields.count, 1),
    }
    request = Request(
        uri=f"/v1/accounts/{customer.billing_account_id}/is_valid_balance",
        method="POST",
        publisher=PUBLISHER,
        data_type=JSON,
        data=msgspec.Raw(gojson.encode(data)),
    )
    reply = deps.call(BILLING_QUEUE, request)
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


HANDLERS: dict[str, Handler] = {
    "create": create,
    "get": get,
    "list": list_,
    "update": update,
    "delete": delete,
    "update_billing_account": update_billing_account,
    "is_valid_balance": is_valid_balance,
}


class CustomerActor(Worker):
    """A pool member serving customer ``Op``s (see module doc)."""

    handlers = HANDLERS
