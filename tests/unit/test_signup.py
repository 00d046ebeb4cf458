"""Signup and email verification through the router (docs/lifecycle.md#redis-keys,
docs/lifecycle.md#signup, docs/lifecycle.md#email-verification,
docs/lifecycle.md#outgoing-requests): replies,
errors, stored rows, cache keys, events, the deferred email and password-reset requests, and
signup's single transaction (F7)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest

from customer_manager.errors import Unavailable
from customer_manager.messages.queues import (
    AGENT_QUEUE,
    DEFERRED_CALL,
    EMAIL_QUEUE,
    EVENT_EXCHANGE,
    WEBHOOK_QUEUE,
)
from customer_manager.messages.records import SENTINEL, TS_FORMAT, Accesskey
from customer_manager.storage.memory import MemoryStorage
from tests.support.fakes import reply
from tests.support.harness import Build, Harness
from tests.support.profiles import Wire, both_profiles

pytestmark = both_profiles

HOOK = "https://hooks.example.com/cm"
SIGNUP = {"email": "new@example.com", "webhook_method": "POST", "webhook_uri": HOOK}


def signup(h: Harness, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = h.json("POST", "/v1/customers/signup", {**SIGNUP, **fields})
    return result


def token_of(h: Harness, customer_id: str) -> str:
    """The verification token the signup stored (the email carries it)."""
    for key in list(h.cache._data):
        if key.startswith("email_verify:") and h.cache.get(key) == customer_id.encode():
            return key.removeprefix("email_verify:")
    raise AssertionError("no token")


def error(h: Harness, uri: str, data: Any, status: int, reason: str) -> None:
    response = h.send("POST", uri, data)
    assert response.status_code == status, bytes(response.data)
    assert msgspec.json.decode(response.data)["reason"] == reason


def test_signup_stores_publishes_and_requests_the_email(h: Harness, wire: Wire) -> None:
    result = signup(h, client_ip="203.0.113.7")
    assert list(result) == ["customer", "accesskey"]
    customer, key = result["customer"], result["accesskey"]
    assert customer["status"] == "initial" and customer["email_verified"] is False
    assert customer["terms_agreed_ip"] == "203.0.113.7"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", customer["terms_agreed_version"])
    assert len(customer["webhook_secret"]) == 32
    assert (key["name"], key["detail"]) == ("default", "Auto-provisioned API key")
    token = key[wire.token]
    assert token.startswith("vb_") and key["token_prefix"] == token[:11]
    stored = wire.decode(msgspec.json.encode(key), Accesskey)
    lifetime = datetime.strptime(stored.tm_expire, TS_FORMAT) - datetime.strptime(
        stored.tm_create, TS_FORMAT
    )
    assert lifetime == timedelta(days=365)
    cid = uuid.UUID(customer["id"])
    assert h.memory.customer_get(cid).email_verified is False
    token = token_of(h, customer["id"])
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    published = h.published()
    events = [(b["type"], b["data"]) for e, _, b in published if e == EVENT_EXCHANGE]
    assert [t for t, _ in events] == ["accesskey_created", "customer_created"]
    assert events[1][1] == {**customer, "headless": True}
    assert not {"token", "raw_token"} & set(events[0][1])
    hooks = [b["data"]["data"] for e, q, b in published if q == WEBHOOK_QUEUE]
    assert [hk["type"] for hk in hooks] == ["accesskey_created", "customer_created"]
    for hook in hooks:
        for secret in ("webhook_secret", "terms_agreed_ip", "terms_agreed_version", "token"):
            assert secret not in hook["data"]
    ((_, queue, call),) = [p for p in published if p[0] == DEFERRED_CALL]
    assert queue == EMAIL_QUEUE and call["timeout"] == 3.0 and call["method"] == "email_send"
    request = call["request"]
    assert (request["uri"], request["method"], request["publisher"]) == (
        "/v1/emails",
        "POST",
        "customer-manager",
    )
    email = request["data"]
    assert list(email) == [
        "customer_id",
        "activeflow_id",
        "destinations",
        "subject",
        "content",
        "attachments",
    ]
    assert email["customer_id"] == "00000000-0000-0000-0000-000000000002"
    assert email["destinations"] == [{"type": "email", "target": "new@example.com"}]
    assert email["subject"] == "VoIPBin - Verify Your Email" and email["attachments"] is None
    link = f"https://api.voipbin.net/auth/email-verify?token={token}"
    assert f"\n\n{link}\n\n" in email["content"]
    assert published[-1][0] == DEFERRED_CALL  # after the events and webhooks


def test_signup_errors(h: Harness) -> None:
    uri = "/v1/customers/signup"
    error(h, uri, ..., 400, "INVALID_BODY")
    error(h, uri, {**SIGNUP, "client_ip": "300.1.1.1"}, 400, "INVALID_CLIENT_IP")
    error(h, uri, {**SIGNUP, "email": "nope"}, 400, "INVALID_EMAIL")
    error(h, uri, {**SIGNUP, "webhook_uri": "test.com"}, 400, "INVALID_WEBHOOK_URI")
    assert h.published() == []
    signup(h, client_ip="2001:db8::1")
    h.published()
    error(h, uri, SIGNUP, 409, "EMAIL_ALREADY_EXISTS")  # the initial customer holds it
    error(h, "/v1/customers", SIGNUP, 409, "EMAIL_ALREADY_EXISTS")
    assert h.published() == []


def test_signup_with_a_taken_agent_email(build: Build) -> None:
    agents = {AGENT_QUEUE: lambda request: reply(200, [{"id": "x"}])}
    h = build(scripts=agents, agent_check="required")
    error(h, "/v1/customers/signup", SIGNUP, 409, "EMAIL_ALREADY_EXISTS")
    assert h.published() == [] and h.memory._customers == {}


class KeyInsertFails(MemoryStorage):
    """Fails the signup between the customer and the key insert."""

    def _check_new_key(self, key: Accesskey, token_hash: str) -> None:
        raise RuntimeError("injected failure")


def test_signup_failure_between_the_inserts_leaves_nothing(build: Build) -> None:
    broken = KeyInsertFails()
    h = build(storage_factory=lambda: broken)
    response = h.send("POST", "/v1/customers/signup", SIGNUP)
    assert response.status_code == 500
    assert broken._customers == {} and broken._keys == {}
    assert broken.outbox_size() == 0 and h.published() == []  # no event, no email request


def test_email_verify_activates_once(h: Harness) -> None:
    customer = signup(h)["customer"]
    h.published()
    token = token_of(h, customer["id"])
    verified = h.json("POST", "/v1/customers/email_verify", {"token": token})
    assert list(verified) == ["customer"]
    assert verified["customer"]["status"] == "active"
    assert verified["customer"]["email_verified"] is True
    published = h.published()
    assert [(b["type"]) for e, _, b in published if e == EVENT_EXCHANGE] == ["customer_updated"]
    ((_, queue, call),) = [p for p in published if p[0] == DEFERRED_CALL]
    assert queue == AGENT_QUEUE and call["timeout"] == 30.0
    assert call["request"]["uri"] == "/v1/password-forgot"
    assert call["request"]["data"] == {"username": "new@example.com"}
    assert h.cache.get(f"email_verify:{token}") is None  # single use
    assert h.cache.get(f"verify_lock:{customer['id']}") is None  # released
    error(h, "/v1/customers/email_verify", {"token": token}, 400, "INVALID_TOKEN")
    assert h.json("GET", f"/v1/customers/{customer['id']}")["status"] == "active"


def test_email_verify_errors(h: Harness) -> None:
    uri = "/v1/customers/email_verify"
    error(h, uri, ..., 400, "INVALID_BODY")
    error(h, uri, {"token": "x" * 64}, 400, "INVALID_TOKEN")
    error(h, uri, {"token": "a" * 64}, 400, "INVALID_TOKEN")  # unknown
    customer = signup(h)["customer"]
    token = token_of(h, customer["id"])
    h.cache.set(f"verify_lock:{customer['id']}", b"other", 30)
    error(h, uri, {"token": token}, 409, "VERIFICATION_IN_PROGRESS")
    assert h.cache.get(f"verify_lock:{customer['id']}") == b"other"  # not ours to release
    h.cache.delete(f"verify_lock:{customer['id']}")
    h.published()
    # already verified (a second token for the same customer): 200, no event, token dropped
    h.json("POST", uri, {"token": token})
    h.published()
    h.cache.set("email_verify:" + "b" * 64, customer["id"].encode(), 3600)
    again = h.json("POST", uri, {"token": "b" * 64})
    assert again["customer"]["status"] == "active" and h.published() == []
    assert h.cache.get("email_verify:" + "b" * 64) is None


def test_email_verify_never_revives_an_expired_customer(h: Harness) -> None:
    customer = signup(h)["customer"]
    token = token_of(h, customer["id"])
    cid = uuid.UUID(customer["id"])
    old = msgspec.structs.replace(
        h.memory.customer_get(cid), tm_create="2020-01-01 00:00:00.000000"
    )
    h.memory._customers[cid] = old
    assert h.json("POST", "/v1/customers/cleanup_unverified", {}) == {"expired": 1}
    assert (
        h.json("GET", "/v1/accesskeys?page_size=10", {"customer_id": customer["id"]})[0][
            "tm_delete"
        ]
        != SENTINEL
    )  # F5: the keys go with it
    h.published()
    error(h, "/v1/customers/email_verify", {"token": token}, 400, "INVALID_TOKEN")  # F9
    assert h.memory.customer_get(cid).status == "expired" and h.published() == []
    assert h.cache.get(f"email_verify:{token}") is None


@pytest.mark.parametrize("base", ["http://localhost:8080", "https://x.test/"])
def test_the_link_uses_the_base_url_verbatim(build: Build, base: str) -> None:
    h = build(email_verify_base_url=base)
    cid = signup(h)["customer"]["id"]
    calls = [c for e, _, c in h.published() if e == DEFERRED_CALL]
    link = f"{base}/auth/email-verify?token={token_of(h, cid)}"
    assert link in calls[0]["request"]["data"]["content"]


def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_without_redis_signup_skips_the_email_and_verify_is_503(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_args: Any, **_kwargs: Any) -> Any:
        raise Unavailable("redis at x is unavailable")

    monkeypatch.setattr(h.cache, "claim", down)
    monkeypatch.setattr(h.cache, "read", down)
    errors = _sample("customer_manager_email_verification_total", status="error")
    result = signup(h)
    published = h.published()
    assert [e for e, _, _ in published if e == DEFERRED_CALL] == []  # no email
    assert len([e for e, _, _ in published if e == EVENT_EXCHANGE]) == 2
    assert h.memory.customer_get(uuid.UUID(result["customer"]["id"])).status == "initial"
    error(h, "/v1/customers/email_verify", {"token": "c" * 64}, 503, "UNAVAILABLE")
    assert _sample("customer_manager_email_verification_total", status="error") == errors + 1


def test_signup_and_verify_metrics(h: Harness) -> None:
    before = {
        s: _sample("customer_manager_signup_total", status=s)
        for s in ("success", "validation_failed")
    }
    verified = _sample("customer_manager_email_verification_total", status="success")
    invalid = _sample("customer_manager_email_verification_total", status="invalid_token")
    creates = _sample(
        "customer_manager_db_operation_total",
        operation="create",
        entity="customer",
        status="success",
    )
    customer = signup(h)["customer"]
    error(h, "/v1/customers/signup", {**SIGNUP, "email": "bad"}, 400, "INVALID_EMAIL")
    h.json("POST", "/v1/customers/email_verify", {"token": token_of(h, customer["id"])})
    error(h, "/v1/customers/email_verify", {"token": "d" * 64}, 400, "INVALID_TOKEN")
    assert _sample("customer_manager_signup_total", status="success") == before["success"] + 1
    failed = _sample("customer_manager_signup_total", status="validation_failed")
    assert failed == before["validation_failed"] + 1
    assert _sample("customer_manager_email_verification_total", status="success") == verified + 1
    after = _sample("customer_manager_email_verification_total", status="invalid_token")
    assert after == invalid + 1
    labels = {"operation": "create", "entity": "customer", "status": "success"}
    assert _sample("customer_manager_db_operation_total", **labels) == creates + 1
