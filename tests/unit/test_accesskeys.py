"""Access-key routes through the real actors (docs/api.md#access-key-list to
docs/api.md#access-key-delete)."""

from __future__ import annotations

import hashlib
import re
import uuid

import msgspec

from customer_manager.messages.query import Filters, ListQuery
from customer_manager.messages.queues import EVENT_EXCHANGE, WEBHOOK_QUEUE
from customer_manager.messages.records import SENTINEL, now
from tests.support.harness import Harness


def test_create_returns_the_token_once_and_stores_only_its_hash(h: Harness) -> None:
    customer = h.customer(webhook_uri="https://hook.example/x")
    created = h.json(
        "POST",
        "/v1/accesskeys",
        {"customer_id": customer["id"], "name": "n", "detail": "d", "expire": 60},
    )
    token = created["token"]
    assert re.fullmatch(r"vb_[A-Za-z0-9_-]{32}", token)
    assert created["token_prefix"] == token[:11]
    assert created["tm_expire"] > created["tm_create"] and created["tm_delete"] == SENTINEL
    key_id = uuid.UUID(created["id"])
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert h.memory._hashes[key_id] == digest  # only the hash is stored
    assert h.memory.accesskey_get(key_id).token == ""
    messages = h.published()
    assert [(m[0], m[1]) for m in messages] == [(EVENT_EXCHANGE, ""), ("", WEBHOOK_QUEUE)]
    public = {k: v for k, v in created.items() if k != "token"}
    assert messages[0][2]["data"] == public
    assert messages[1][2]["data"]["data"] == {"type": "accesskey_created", "data": public}
    assert token not in repr(messages)
    assert h.json("GET", f"/v1/accesskeys/{key_id}") == public
    assert all(token.encode() not in value for _, value, _ in h.cache._data.values())


def test_customer_must_exist_and_be_active(h: Harness) -> None:
    for customer_id in (str(uuid.uuid4()), "00000000-0000-0000-0000-000000000000"):
        response = h.send("POST", "/v1/accesskeys", {"customer_id": customer_id})
        assert response.status_code == 404
        assert msgspec.json.decode(response.data)["reason"] == "CUSTOMER_NOT_FOUND"
    customer = h.customer()
    h.json("DELETE", f"/v1/customers/{customer['id']}")
    assert h.send("POST", "/v1/accesskeys", {"customer_id": customer["id"]}).status_code == 404
    for bad in ({"customer_id": ""}, {"expire": 2**31}, {"expire": "1"}):
        assert h.send("POST", "/v1/accesskeys", bad).status_code == 400


def test_expire_zero_or_negative_never_expires(h: Harness) -> None:
    customer = h.customer()
    for expire in (0, -5):
        key = h.json("POST", "/v1/accesskeys", {"customer_id": customer["id"], "expire": expire})
        assert key["tm_expire"] == SENTINEL


def test_token_filter_auth_path_uses_cache_and_follows_changes(h: Harness) -> None:
    customer = h.customer()
    key = h.json("POST", "/v1/accesskeys", {"customer_id": customer["id"]})
    token, public = key.pop("token"), key
    auth = {"token": token, "deleted": False}
    assert h.json("GET", "/v1/accesskeys?", auth) == [public]
    assert h.json("GET", "/v1/accesskeys?", {"token": "vb_unknown", "deleted": False}) == []
    assert h.json("GET", "/v1/accesskeys?", {**auth, "customer_id": str(uuid.uuid4())}) == []
    assert h.json("GET", "/v1/accesskeys?", {**auth, "expired": True}) == []
    updated = h.json("PUT", f"/v1/accesskeys/{public['id']}", {"name": "renamed"})
    assert h.json("GET", "/v1/accesskeys?", auth) == [updated]
    h.json("DELETE", f"/v1/accesskeys/{public['id']}")
    assert h.json("GET", "/v1/accesskeys?", auth) == []
    assert h.json("GET", "/v1/accesskeys?", {"token": token})[0]["id"] == public["id"]


def test_token_filter_on_a_cold_cache_reads_storage(h: Harness) -> None:
    customer = h.customer()
    key = h.json("POST", "/v1/accesskeys", {"customer_id": customer["id"]})
    h.cache._data.clear()
    got = h.json("GET", "/v1/accesskeys?page_size=10", {"token": key["token"], "deleted": False})
    assert [k["id"] for k in got] == [key["id"]]
    assert any(k.startswith("customer_accesskey_token:") for k in h.cache._data)


def test_list_get_update_delete(h: Harness) -> None:
    customer = h.customer()
    ids = [
        h.json("POST", "/v1/accesskeys", {"customer_id": customer["id"]})["id"] for _ in range(3)
    ]
    h.published()
    listed = h.json("GET", "/v1/accesskeys?page_size=2", {"customer_id": customer["id"]})
    assert [k["id"] for k in listed] == ids[::-1][:2]
    assert all("token" not in k for k in listed)
    assert h.json("GET", "/v1/accesskeys?", {"expired": False}) != []
    updated = h.json("PUT", f"/v1/accesskeys/{ids[0]}", {"name": "n2"})
    assert updated["name"] == "n2" and updated["tm_update"] != SENTINEL
    ((_, _, event),) = h.published()
    assert event["type"] == "accesskey_updated" and event["data"] == updated
    deleted = h.json("DELETE", f"/v1/accesskeys/{ids[0]}")
    assert deleted["tm_delete"] != SENTINEL
    assert [m[2]["type"] for m in h.published()] == ["accesskey_deleted"]
    assert h.json("DELETE", f"/v1/accesskeys/{ids[0]}") == deleted
    assert h.published() == []
    stored = h.memory.accesskey_list(ListQuery(before=now(), filters=Filters(deleted=True)))
    assert [k.id for k in stored] == [uuid.UUID(ids[0])]
    for method in ("GET", "PUT", "DELETE"):
        response = h.send(method, f"/v1/accesskeys/{uuid.uuid4()}", {"name": "x"})
        assert response.status_code == 404
        assert msgspec.json.decode(response.data)["reason"] == "ACCESSKEY_NOT_FOUND"
    assert h.send("PUT", f"/v1/accesskeys/{ids[1]}").status_code == 400
