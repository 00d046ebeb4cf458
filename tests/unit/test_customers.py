"""Customer routes through the real actors (docs/api.md#customer-list to
docs/api.md#customer-balance-check)."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from customer_manager.messages.queues import (
    AGENT_QUEUE,
    BILLING_QUEUE,
    EVENT_EXCHANGE,
    WEBHOOK_QUEUE,
)
from customer_manager.messages.records import SENTINEL, Customer
from customer_manager.messages.wire import encode
from tests.support.fakes import reply
from tests.support.harness import Build, Harness

NIL = "00000000-0000-0000-0000-000000000000"
BODY = {
    "name": "test1",
    "detail": "detail1",
    "email": "test@voipbin.net",
    "phone_number": "+821100000001",
    "address": "somewhere",
    "webhook_method": "POST",
    "webhook_uri": "https://example.com/hook",
    "billing_account_id": str(uuid.uuid4()),
    "username": "ignored",
    "password": "ignored",
}


def error(h: Harness, method: str, uri: str, data: object = ..., *, status: int) -> dict:
    response = h.send(method, uri, data)
    assert (response.status_code, response.data_type) == (status, "voipbin_error")
    body: dict = msgspec.json.decode(response.data)
    assert body["domain"] == "customer-manager"
    return body


def test_create_stores_publishes_and_checks_agents(h: Harness) -> None:
    created = h.json("POST", "/v1/customers", BODY)
    assert list(created) == [
        "id",
        "name",
        "detail",
        "email",
        "phone_number",
        "address",
        "webhook_method",
        "webhook_uri",
        "billing_account_id",
        "tm_create",
        "tm_update",
        "tm_delete",
    ]
    assert created["billing_account_id"] == NIL  # the body's value is ignored, as in Go
    assert created["tm_update"] == created["tm_delete"] == SENTINEL
    assert uuid.UUID(created["id"]).version == 4
    stored = h.memory.customer_get(uuid.UUID(created["id"]))
    assert msgspec.json.decode(msgspec.json.encode(stored)) == created
    event, hook = h.published()
    assert event == (
        EVENT_EXCHANGE,
        "",
        {
            "type": "customer_created",
            "publisher": "customer-manager",
            "data_type": "application/json",
            "data": created,
        },
    )
    assert hook == (
        "",
        WEBHOOK_QUEUE,
        {
            "uri": "/v1/webhooks",
            "method": "POST",
            "publisher": "customer-manager",
            "data_type": "application/json",
            "data": {
                "customer_id": created["id"],
                "data_type": "application/json",
                "data": {"type": "customer_created", "data": created},
            },
        },
    )
    ((queue, request),) = h.calls()
    assert queue == AGENT_QUEUE
    assert encode(request) == (
        b'{"uri":"/v1/agents?page_token=\\u0026page_size=100","method":"GET",'
        b'"publisher":"customer-manager","data_type":"application/json",'
        b'"data":{"deleted":false,"username":"test@voipbin.net"}}'
    )
    assert h.json("GET", f"/v1/customers/{created['id']}") == created


def test_create_without_webhook_publishes_only_the_event(h: Harness) -> None:
    h.json("POST", "/v1/customers", {"email": "x@y.z"})
    assert [m[0] for m in h.published()] == [EVENT_EXCHANGE]


@pytest.mark.parametrize(
    "email",
    ["", "@x", "x@", "a..b@x.com", "a@b.", "a.@b.com", "a@@b", "no-at", "a b@c.d", "a@-b.com"],
)
def test_invalid_email_is_400(h: Harness, email: str) -> None:
    assert (
        error(h, "POST", "/v1/customers", {"email": email}, status=400)["reason"] == "INVALID_EMAIL"
    )
    assert h.calls() == [] and h.published() == []


def test_null_data_is_invalid_email_and_missing_data_is_invalid_body(h: Harness) -> None:
    assert error(h, "POST", "/v1/customers", None, status=400)["reason"] == "INVALID_EMAIL"
    assert error(h, "POST", "/v1/customers", status=400)["reason"] == "INVALID_BODY"
    assert error(h, "POST", "/v1/customers", {"email": 5}, status=400)["reason"] == "INVALID_BODY"


def test_email_accepted_forms(h: Harness) -> None:
    for email in ["a@b", "A.B+c@x-y.example.org", "Mixed@Case.COM"]:
        h.json("POST", "/v1/customers", {"email": email})


@pytest.mark.parametrize(
    "fields",
    [
        {"webhook_method": "PATCH"},
        {"webhook_method": "post"},
        {"webhook_uri": "test.com"},
        {"webhook_uri": "ftp://x.y"},
        {"webhook_uri": "http://"},
    ],
)
def test_webhook_validation_on_create_and_update(h: Harness, fields: dict) -> None:
    assert error(h, "POST", "/v1/customers", {"email": "a@b.c", **fields}, status=400)
    created = h.customer()
    error(h, "PUT", f"/v1/customers/{created['id']}", {"email": "a@b.c", **fields}, status=400)
    assert h.published() == []


def test_duplicate_active_email_is_409_and_free_after_delete(h: Harness) -> None:
    first = h.customer("dup@x.com")
    body = error(h, "POST", "/v1/customers", {"email": "DUP@x.com"}, status=409)
    assert (body["status"], body["reason"]) == ("ALREADY_EXISTS", "EMAIL_ALREADY_EXISTS")
    h.json("DELETE", f"/v1/customers/{first['id']}")
    h.json("POST", "/v1/customers", {"email": "dup@x.com"})


def test_agent_with_that_username_is_409(build: Build) -> None:
    h = build(scripts={AGENT_QUEUE: lambda r: reply(200, [{"id": "x"}])}, agent_check="required")
    assert (
        error(h, "POST", "/v1/customers", {"email": "a@b.c"}, status=409)["reason"]
        == "EMAIL_ALREADY_EXISTS"
    )
    assert h.published() == []


def test_agent_manager_silent_is_503_and_check_off_skips(build: Build) -> None:
    h = build(agent_check="required")
    assert (
        error(h, "POST", "/v1/customers", {"email": "a@b.c"}, status=503)["status"] == "UNAVAILABLE"
    )
    h2 = build(agent_check="off")
    h2.json("POST", "/v1/customers", {"email": "a@b.c"})
    assert h2.calls() == []


def test_get_missing_is_404(h: Harness) -> None:
    body = error(h, "GET", f"/v1/customers/{uuid.uuid4()}", status=404)
    assert (body["status"], body["reason"]) == ("NOT_FOUND", "CUSTOMER_NOT_FOUND")


def test_list_paging_and_filters(h: Harness) -> None:
    ids = [h.customer(f"u{i}@x.com")["id"] for i in range(5)]
    assert h.json("GET", "/v1/customers?page_token=&page_size=0") != []  # 0 → 100
    page = h.json("GET", "/v1/customers?page_size=2")
    assert [c["id"] for c in page] == ids[::-1][:2]
    token = page[-1]["tm_create"]
    rest = h.json("GET", f"/v1/customers?page_size=10&page_token={token}")
    assert [c["id"] for c in rest] == ids[::-1][2:]
    assert h.json("GET", "/v1/customers?page_size=10", {"email": "u3@x.com"})[0]["id"] == ids[3]
    h.json("DELETE", f"/v1/customers/{ids[0]}")
    assert [c["id"] for c in h.json("GET", "/v1/customers?", {"deleted": True})] == [ids[0]]
    assert len(h.json("GET", "/v1/customers?", {"deleted": False})) == 4
    for bad in ({"deleted": None}, {"deleted": "false"}, {"id": ""}, [1]):
        error(h, "GET", "/v1/customers?page_size=10", bad, status=400)
    error(h, "GET", "/v1/customers?page_size=-1", status=400)
    error(h, "GET", "/v1/customers?page_size=abc", status=400)
    assert h.json("GET", "/v1/customers?page_size=10", {"customer_id": NIL, "x": 1}) != []


def test_update_is_full_replace_with_event(h: Harness) -> None:
    created = h.customer(**{k: BODY[k] for k in ("name", "webhook_uri")})
    updated = h.json("PUT", f"/v1/customers/{created['id']}", {"email": "new@x.com"})
    assert updated["email"] == "new@x.com" and "name" not in updated
    assert updated["tm_update"] != SENTINEL
    ((_, _, event),) = h.published()  # no webhook: the new record has no webhook_uri
    assert event["type"] == "customer_updated" and event["data"] == updated
    assert h.json("GET", f"/v1/customers/{created['id']}") == updated  # cache refreshed
    error(h, "PUT", f"/v1/customers/{uuid.uuid4()}", {"email": "a@b.c"}, status=404)
    error(h, "PUT", f"/v1/customers/{created['id']}", status=400)
    assert h.published() == []


def test_go_era_webhook_sent_back_unchanged_does_not_block_an_update(h: Harness) -> None:
    """Go never validated webhooks: a stored ``test.com`` stays updatable when unchanged."""
    go_era = Customer(
        id=uuid.uuid4(),
        email="go@example.com",
        webhook_method="post",
        webhook_uri="test.com",
        billing_account_id=uuid.UUID(NIL),
        tm_create="2021-01-01 00:00:00.000000",
        tm_update=SENTINEL,
        tm_delete=SENTINEL,
    )
    h.memory.customer_insert(go_era, lambda _c: [])
    same = {"email": "go@example.com", "webhook_method": "post", "webhook_uri": "test.com"}
    uri = f"/v1/customers/{go_era.id}"
    assert h.json("PUT", uri, {**same, "name": "Renamed"})["name"] == "Renamed"
    error(h, "PUT", uri, {**same, "webhook_uri": "still-bad.com"}, status=400)
    error(h, "PUT", uri, {**same, "webhook_method": "PATCH"}, status=400)


def test_update_billing_account(h: Harness) -> None:
    created = h.customer()
    account = str(uuid.uuid4())
    uri = f"/v1/customers/{created['id']}/billing_account_id"
    assert h.json("PUT", uri, {"billing_account_id": account})["billing_account_id"] == account
    assert h.published()[0][2]["type"] == "customer_updated"
    assert h.json("PUT", uri, None)["billing_account_id"] == NIL
    error(h, "PUT", uri, {"billing_account_id": ""}, status=400)
    error(
        h,
        "PUT",
        f"/v1/customers/{uuid.uuid4()}/billing_account_id",
        {"billing_account_id": account},
        status=404,
    )


def test_billing_account_check(build: Build) -> None:
    accounts: dict[str, dict] = {}

    def billing(request: object) -> object:
        account_id = request.uri.rsplit("/", 1)[1]  # type: ignore[attr-defined]
        found = accounts.get(account_id)
        return reply(200, found) if found else reply(404)

    h = build(scripts={BILLING_QUEUE: billing}, billing_account_check=True)
    created = h.customer()
    uri = f"/v1/customers/{created['id']}/billing_account_id"
    good, other, gone = (str(uuid.uuid4()) for _ in range(3))
    accounts[good] = {"id": good, "customer_id": created["id"], "tm_delete": SENTINEL}
    accounts[other] = {"id": other, "customer_id": str(uuid.uuid4()), "tm_delete": SENTINEL}
    accounts[gone] = {
        "id": gone,
        "customer_id": created["id"],
        "tm_delete": "2024-01-01 00:00:00.000000",
    }
    assert h.json("PUT", uri, {"billing_account_id": good})["billing_account_id"] == good
    for bad in (other, gone, str(uuid.uuid4())):
        assert (
            error(h, "PUT", uri, {"billing_account_id": bad}, status=400)["reason"]
            == "INVALID_BILLING_ACCOUNT"
        )
    silent = build(billing_account_check=True)
    c2 = silent.customer()
    error(
        silent,
        "PUT",
        f"/v1/customers/{c2['id']}/billing_account_id",
        {"billing_account_id": good},
        status=503,
    )


def test_delete_cascades_to_keys_and_twice_is_quiet(h: Harness) -> None:
    created = h.customer(webhook_uri="https://hook.example/x")
    keys = [h.json("POST", "/v1/accesskeys", {"customer_id": created["id"]}) for _ in range(2)]
    h.published()
    deleted = h.json("DELETE", f"/v1/customers/{created['id']}")
    assert deleted["tm_delete"] != SENTINEL
    messages = h.published()
    events = [body["type"] for exchange, _, body in messages if exchange == EVENT_EXCHANGE]
    hooks = [body["data"]["data"]["type"] for exchange, _, body in messages if exchange == ""]
    assert events == hooks == ["customer_deleted", "accesskey_deleted", "accesskey_deleted"]
    for key in keys:
        got = h.json("GET", f"/v1/accesskeys/{key['id']}")
        assert got["tm_delete"] == deleted["tm_delete"] and "token" not in got
    assert h.json("DELETE", f"/v1/customers/{created['id']}") == deleted
    assert h.published() == []
    error(h, "DELETE", f"/v1/customers/{uuid.uuid4()}", status=404)


def test_is_valid_balance(build: Build) -> None:
    h = build(scripts={BILLING_QUEUE: lambda r: reply(200, {"valid": True})})
    created = h.customer()
    uri = f"/v1/customers/{created['id']}/is_valid_balance"
    response = h.send("POST", uri, {"reference_type": "call", "country": "kr", "count": 0})
    assert (
        encode(response)
        == b'{"status_code":200,"data_type":"application/json","data":{"valid":true}}'
    )
    ((queue, request),) = h.calls()
    assert queue == BILLING_QUEUE
    assert encode(request) == (
        b'{"uri":"/v1/accounts/' + NIL.encode() + b'/is_valid_balance","method":"POST",'
        b'"publisher":"customer-manager","data_type":"application/json",'
        b'"data":{"billing_type":"call","country":"kr","count":1}}'
    )
    error(h, "POST", uri, {"count": 1.5}, status=400)
    error(h, "POST", f"/v1/customers/{uuid.uuid4()}/is_valid_balance", {}, status=404)
    failing = build(scripts={BILLING_QUEUE: lambda r: reply(500)})
    c2 = failing.customer()
    error(failing, "POST", f"/v1/customers/{c2['id']}/is_valid_balance", {}, status=400)
    silent = build()
    c3 = silent.customer()
    error(silent, "POST", f"/v1/customers/{c3['id']}/is_valid_balance", {}, status=503)
