"""The status lifecycle through the router (docs/lifecycle.md#statuses-and-transitions): every
transition, every
refused one with its error, the events and webhooks, and the sweeps' per-run bounds."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest

from customer_manager.messages.queues import EVENT_EXCHANGE, WEBHOOK_QUEUE
from customer_manager.messages.records import (
    BASIC_ROUTE_ID,
    GUEST_ID,
    SENTINEL,
    SYSTEM_ID,
    Customer,
    Metadata,
    now,
)
from customer_manager.storage.base import Storage
from tests.support.harness import Harness
from tests.support.profiles import Wire, both_profiles
from tests.support.storage import customer as customer_record

pytestmark = both_profiles

HOOK = "https://hooks.example.com/cm"
OLD = "2020-01-01 00:00:00.000000"


def kinds(h: Harness) -> list[tuple[str, str]]:
    """The relayed messages as (event type or "webhook:<type>", customer or key id)."""
    out = []
    for exchange, queue, body in h.published():
        if exchange == EVENT_EXCHANGE:
            out.append((body["type"], body["data"]["id"]))
        elif queue == WEBHOOK_QUEUE:
            inner = body["data"]["data"]
            assert "webhook_secret" not in inner["data"] and "token" not in inner["data"]
            out.append((f"webhook:{inner['type']}", inner["data"]["id"]))
    return out


def error(h: Harness, method: str, uri: str, status: int, reason: str, data: Any = ...) -> None:
    """The refusal as the profile answers it (bare codes on three routes in ``current``)."""
    response = h.send(method, uri, data)
    status_wanted, reason_wanted = Wire(h.profile).refusal(uri, status, reason)
    assert response.status_code == status_wanted, bytes(response.data)
    if reason_wanted is None:
        assert (response.data_type, bytes(response.data)) == ("", b"")
    else:
        assert msgspec.json.decode(response.data)["reason"] == reason_wanted


def seeded(h: Harness, **fields: Any) -> Customer:
    """A customer put straight into storage (any state, any age)."""
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    return h.memory.customer_insert(customer_record(email, **fields), lambda c: [])


def test_freeze_recover_and_their_refusals(h: Harness, wire: Wire) -> None:
    cid = h.customer("f@example.com", webhook_uri=HOOK)["id"]
    frozen = h.json("POST", f"/v1/customers/{cid}/freeze")  # no body (docs/lifecycle.md#routes)
    assert frozen["status"] == "frozen" and frozen["tm_deletion_scheduled"] == frozen["tm_update"]
    assert kinds(h) == [("customer_frozen", cid), ("webhook:customer_frozen", cid)]
    assert h.json("POST", f"/v1/customers/{cid}/freeze") == frozen  # idempotent
    assert kinds(h) == []
    key = h.send("POST", "/v1/accesskeys", {"customer_id": cid, "name": "k"})
    assert key.status_code == 409
    assert (
        msgspec.json.decode(key.data)["reason"] == "CUSTOMER_FROZEN"
    )  # docs/lifecycle.md#statuses-and-transitions
    recovered = h.json("POST", f"/v1/customers/{cid}/recover")
    assert recovered["status"] == "active" and recovered["tm_deletion_scheduled"] == wire.unset
    assert kinds(h) == [("customer_recovered", cid), ("webhook:customer_recovered", cid)]
    error(h, "POST", f"/v1/customers/{cid}/recover", 409, "CUSTOMER_NOT_FROZEN")
    assert kinds(h) == []


def test_initial_deleted_missing_and_protected_are_refused(h: Harness) -> None:
    initial = seeded(h, status="initial", email_verified=False)
    for action in ("freeze", "freeze_and_delete"):
        error(h, "POST", f"/v1/customers/{initial.id}/{action}", 409, "CUSTOMER_NOT_ACTIVE")
    error(h, "POST", f"/v1/customers/{initial.id}/recover", 409, "CUSTOMER_NOT_FROZEN")
    gone = seeded(h, status="deleted", tm_delete=OLD)
    for action in ("freeze", "freeze_and_delete"):
        error(h, "POST", f"/v1/customers/{gone.id}/{action}", 409, "CUSTOMER_DELETED")
    error(h, "POST", f"/v1/customers/{gone.id}/recover", 409, "CUSTOMER_NOT_FROZEN")
    missing = uuid.uuid4()
    for action in ("freeze", "recover", "freeze_and_delete"):
        error(h, "POST", f"/v1/customers/{missing}/{action}", 404, "CUSTOMER_NOT_FOUND")
    for protected in (GUEST_ID, BASIC_ROUTE_ID, SYSTEM_ID):  # F2, before the lookup
        for action in ("freeze", "freeze_and_delete"):
            error(h, "POST", f"/v1/customers/{protected}/{action}", 409, "CUSTOMER_PROTECTED")
        error(h, "DELETE", f"/v1/customers/{protected}", 409, "CUSTOMER_PROTECTED")
    assert kinds(h) == []


@pytest.mark.parametrize("start", ["active", "frozen"])
def test_freeze_and_delete_anonymizes_and_revokes(h: Harness, start: str) -> None:
    created = h.customer(
        "pii@example.com", webhook_uri=HOOK, webhook_method="POST", detail="secret notes"
    )
    cid = created["id"]
    key = h.json("POST", "/v1/accesskeys", {"customer_id": cid, "name": "k"})
    h.published()
    if start == "frozen":
        h.json("POST", f"/v1/customers/{cid}/freeze")
        h.published()
    gone = h.json("POST", f"/v1/customers/{cid}/freeze_and_delete")
    short = cid[:8]
    assert gone["name"] == f"deleted_user_{short}"
    assert gone["email"] == f"deleted_{short}@removed.voipbin.net"
    assert gone["status"] == "deleted" and gone["tm_delete"] == gone["tm_update"]
    assert gone["tm_delete"] not in (SENTINEL, None)
    for dropped in ("phone_number", "address", "webhook_uri", "detail", "webhook_secret"):
        assert dropped not in gone  # emptied, so omitted (F10)
    assert gone["webhook_method"] == created["webhook_method"]
    frozen = [("customer_frozen", cid), ("webhook:customer_frozen", cid)]
    assert kinds(h) == [
        *(frozen if start == "active" else []),
        ("accesskey_deleted", key["id"]),  # no webhook: the uri is gone
        ("customer_deleted", cid),
    ]
    assert h.json("GET", f"/v1/accesskeys/{key['id']}")["tm_delete"] == gone["tm_delete"]
    assert h.json("POST", f"/v1/customers/{cid}/freeze_and_delete") == gone  # F11
    assert kinds(h) == []
    assert h.customer("pii@example.com")["email"] == "pii@example.com"  # the email is free


def test_metadata_is_a_full_replace(h: Harness, wire: Wire) -> None:
    cid = h.customer("m@example.com")["id"]
    on = h.json("PUT", f"/v1/customers/{cid}/metadata", {"metadata": {"rtp_debug": True, "x": 1}})
    assert on["metadata"] == {"rtp_debug": True}
    assert kinds(h) == [("customer_updated", cid)]
    off = h.json("PUT", f"/v1/customers/{cid}/metadata", {"metadata": {}})
    assert off["metadata"] == {"rtp_debug": False}
    assert h.json("PUT", f"/v1/customers/{cid}/metadata", {"metadata": {}}) == {
        **off,
        "tm_update": wire.time(h.memory.customer_get(uuid.UUID(cid)).tm_update),
    }
    assert len(kinds(h)) == 2  # published even when nothing changed
    for bad in ({}, {"metadata": None}, {"metadata": []}, {"metadata": {"rtp_debug": "yes"}}):
        error(h, "PUT", f"/v1/customers/{cid}/metadata", 400, "INVALID_METADATA", bad)
    error(h, "PUT", f"/v1/customers/{cid}/metadata", 400, "INVALID_BODY")
    error(h, "PUT", f"/v1/customers/{cid}/metadata", 400, "INVALID_BODY", [1])
    missing = uuid.uuid4()
    error(
        h, "PUT", f"/v1/customers/{missing}/metadata", 404, "CUSTOMER_NOT_FOUND", {"metadata": {}}
    )
    assert kinds(h) == []


def test_delete_sets_status_deleted(h: Harness) -> None:
    cid = h.customer("d@example.com")["id"]
    assert h.json("DELETE", f"/v1/customers/{cid}")["status"] == "deleted"


def test_cleanup_unverified_is_bounded_and_finishes_over_runs(h: Harness) -> None:
    aged = {
        seeded(h, status="initial", email_verified=False, tm_create=OLD).id for _ in range(1000)
    }
    young = seeded(h, status="initial", email_verified=False)
    verified = seeded(h, tm_create=OLD)
    guest = seeded(h, id=GUEST_ID, status="initial", email_verified=False, tm_create=OLD)
    runs = [h.json("POST", "/v1/customers/cleanup_unverified", {})["expired"] for _ in range(11)]
    assert runs == [100] * 10 + [0]
    events = kinds(h)
    assert sorted(i for t, i in events if t == "customer_deleted") == sorted(str(i) for i in aged)
    assert len(events) == 1000
    for row_id in aged:
        row = h.memory.customer_get(row_id)
        assert row.status == "expired" and row.tm_delete != SENTINEL
    for untouched in (young, verified, guest):
        assert h.memory.customer_get(untouched.id) == untouched


def test_cleanup_frozen_expired_is_bounded_and_anonymizes(h: Harness) -> None:
    due = [seeded(h, status="frozen", tm_deletion_scheduled=OLD).id for _ in range(1100)]
    recent = seeded(h, status="frozen", tm_deletion_scheduled=now())
    runs = [
        h.json("POST", "/v1/customers/cleanup_frozen_expired", None)["processed"] for _ in range(3)
    ]
    assert runs == [1000, 100, 0]
    for row_id in due[:5]:
        row = h.memory.customer_get(row_id)
        assert row.status == "deleted" and row.email.endswith("@removed.voipbin.net")
    assert h.memory.customer_get(recent.id) == recent
    assert sum(1 for t, _ in kinds(h) if t == "customer_deleted") == 1100


def test_create_reports_the_new_fields_and_storage_agrees(h: Harness) -> None:
    created = h.customer("n@example.com")
    stored = h.memory.customer_get(uuid.UUID(created["id"]))
    assert stored.identity_verification_status == "none" and stored.metadata == Metadata()
    assert h.system.storage.call(Storage.customer_get, stored.id) == stored


def test_a_seed_cache_entry_is_replaced_by_the_full_record(h: Harness) -> None:
    row = seeded(h)
    seed_json = (
        f'{{"id":"{row.id}","email":"{row.email}",'
        '"billing_account_id":"00000000-0000-0000-0000-000000000000",'
        f'"tm_create":"{row.tm_create}","tm_update":"{SENTINEL}","tm_delete":"{SENTINEL}"}}'
    )
    h.cache.set(f"customer:{row.id}", seed_json.encode(), 86400)
    got = h.json("GET", f"/v1/customers/{row.id}")
    assert got["status"] == "active" and got["webhook_secret"] == row.webhook_secret
    cached = msgspec.json.decode(h.cache.get(f"customer:{row.id}") or b"{}")  # replaced
    assert cached["status"] == "active" and cached["metadata"] == {"rtp_debug": False}
