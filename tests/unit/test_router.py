"""Route matching and unmatched routes (docs/api.md#routes) and the request metric
(docs/configuration.md#metrics-and-health)."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from customer_manager import metrics
from customer_manager.messages.ops import request_key
from customer_manager.messages.routes import ROUTES, match, path_id
from customer_manager.messages.wire import Request, encode
from tests.support.harness import Harness

ID = "2cfbb148-7dc7-11ec-85df-47cf2c8492f0"


@pytest.mark.parametrize(
    ("method", "uri", "op"),
    [
        ("GET", "/v1/accesskeys?page_size=1", ("accesskey", "list")),
        ("POST", "/v1/accesskeys", ("accesskey", "create")),
        ("GET", f"/v1/accesskeys/{ID}", ("accesskey", "get")),
        ("PUT", f"/v1/accesskeys/{ID}", ("accesskey", "update")),
        ("DELETE", f"/v1/accesskeys/{ID}", ("accesskey", "delete")),
        ("GET", "/v1/customers?", ("customer", "list")),
        ("POST", "/v1/customers", ("customer", "create")),
        ("GET", f"/v1/customers/{ID}", ("customer", "get")),
        ("PUT", f"/v1/customers/{ID}", ("customer", "update")),
        ("DELETE", f"/v1/customers/{ID}", ("customer", "delete")),
        ("PUT", f"/v1/customers/{ID}/billing_account_id", ("customer", "update_billing_account")),
        ("POST", f"/v1/customers/{ID}/is_valid_balance", ("customer", "is_valid_balance")),
        ("GET", f"junk/v1/customers/{ID}", ("customer", "get")),  # unanchored search
        # docs/lifecycle.md#routes rules 13-20
        ("POST", "/v1/customers/signup", ("customer", "signup")),
        ("POST", "/v1/customers/email_verify", ("customer", "email_verify")),
        ("POST", "/v1/customers/cleanup_unverified", ("customer", "cleanup_unverified")),
        ("POST", "/v1/customers/cleanup_frozen_expired", ("customer", "cleanup_frozen_expired")),
        ("POST", f"/v1/customers/{ID}/freeze", ("customer", "freeze")),
        ("POST", f"/v1/customers/{ID}/recover", ("customer", "recover")),
        ("POST", f"/v1/customers/{ID}/freeze_and_delete", ("customer", "freeze_and_delete")),
        ("PUT", f"/v1/customers/{ID}/metadata", ("customer", "metadata")),
        # docs/api.md#access-key-usage-and-rotation
        ("GET", "/v1/accesskeys/expiring?within=60", ("accesskey", "expiring")),
        ("POST", "/v1/accesskeys/cleanup_rotated", ("accesskey", "cleanup_rotated")),
        ("POST", "/v1/accesskeys/notify_expiring", ("accesskey", "notify_expiring")),
        ("POST", f"/v1/accesskeys/{ID}/used", ("accesskey", "used")),
        ("POST", f"/v1/accesskeys/{ID}/rotate", ("accesskey", "rotate")),
    ],
)
def test_routes(method: str, uri: str, op: tuple[str, str]) -> None:
    route = match(Request(method=method, uri=uri))
    assert route is not None and (route.pool, route.op) == op
    assert len(ROUTES) == 25


@pytest.mark.parametrize(
    ("method", "uri"),
    [
        ("GET", "/v1/customers"),
        ("GET", "/v1/accesskeys"),
        ("get", f"/v1/customers/{ID}"),
        ("GET", f"/v1/customers/{ID.upper()}"),
        ("GET", f"/v1/customers/{ID}?x=1"),
        ("PATCH", f"/v1/customers/{ID}"),
        ("POST", "/v1/customers/"),
        ("GET", "/v2/customers?"),
    ],
)
def test_unmatched(h: Harness, method: str, uri: str) -> None:
    assert match(Request(method=method, uri=uri)) is None
    response = h.send(method, uri)
    assert encode(response).startswith(
        b'{"status_code":404,"data_type":"voipbin_error","data":{"status":"NOT_FOUND",'
        b'"reason":"ROUTE_NOT_FOUND","domain":"customer-manager","message":'
    )


def test_path_id_is_the_fourth_segment() -> None:
    assert path_id(f"/v1/customers/{ID}") == uuid.UUID(ID)
    assert path_id(f"/x/v1/customers/{ID}") == uuid.UUID(int=0)


def test_junk_prefix_yields_not_found(h: Harness) -> None:
    assert h.send("GET", f"/x/v1/customers/{ID}").status_code == 404


def test_request_metric_labels(h: Harness) -> None:
    def count(label: str, method: str) -> float:
        metrics.settle()  # the router defers its metrics until after the reply
        hist = metrics.receive_request_process_time.labels(label, method)
        return sum(b.get() for b in hist._buckets)  # type: ignore[attr-defined]

    before = count("/v1/customers/<customer_id>/is_valid_balance", "POST"), count("notfound", "GET")
    h.send("POST", f"/v1/customers/{ID}/is_valid_balance", {})
    h.send("GET", "/nothing")
    after = count("/v1/customers/<customer_id>/is_valid_balance", "POST"), count("notfound", "GET")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


def test_request_key_identifies_a_write_by_correlation_id_and_content() -> None:
    create = Request(uri="/v1/customers", method="POST", data=msgspec.Raw(b'{"email":"a@b.c"}'))
    key = request_key("corr-1", create)
    assert len(key) == 64 and key == request_key("corr-1", create)
    assert request_key("corr-2", create) != key
    other = Request(uri="/v1/customers", method="POST", data=msgspec.Raw(b'{"email":"x@b.c"}'))
    assert request_key("corr-1", other) != key
    assert request_key("", create) == ""
    assert request_key("corr-1", Request(uri="/v1/customers/x", method="GET")) == ""
