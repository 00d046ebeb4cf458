"""The whole service through the broker: every route, MySQL rows, Redis keys, events,
webhooks, and the fake agent-manager / billing-manager / webhook-manager peers.

The daemon runs in-process (``main.Daemon``: bootstrap + AmqpPublisher + ConsumerActor).
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from customer_manager.config import Settings
from customer_manager.main import Daemon
from customer_manager.messages.queues import AGENT_QUEUE, BILLING_QUEUE, WEBHOOK_QUEUE
from tests.support.amqp import Client, EventTap, Peer, answering, envelope, peer_reply
from tests.support.metrics import count
from tests.support.servers import mysql_connect
from tests.support.service import start_daemon
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
SENTINEL = "9999-01-01 00:00:00.000000"


def mysql_row(dsn: str, table: str, row_id: str) -> dict[str, Any] | None:
    conn = mysql_connect(dsn)
    try:
        cur = conn.cursor(dictionary=True)
        cur.execute(f"SELECT * FROM {table} WHERE id = %s", (uuid.UUID(row_id).bytes,))
        row = cur.fetchone()
        return dict(row) if row else None
    finally:
        conn.close()


def customer_body(email: str, webhook_uri: str = "https://hooks.example.com/cm") -> dict[str, Any]:
    return {
        "name": "name test",
        "detail": "detail test",
        "email": email,
        "phone_number": "+821100000001",
        "address": "somewhere",
        "webhook_method": "POST",
        "webhook_uri": webhook_uri,
    }


def test_every_route_end_to_end(
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    redis_db: redis.Redis,
    migrated_dsn: str,
    amqp_url: str,
) -> None:
    daemons.append(start_daemon(service_settings()))
    email = f"e2e-{uuid.uuid4().hex[:8]}@test.com"
    with (
        Peer(amqp_url, AGENT_QUEUE, answering([])) as agent,
        Peer(amqp_url, BILLING_QUEUE, answering({"valid": True})) as bill,
        Peer(amqp_url, WEBHOOK_QUEUE, lambda r: None) as hooks,
    ):
        # the Go example create has webhook_uri "test.com": 400 here (docs/api.md#customer-create)
        literal = client.call("POST", "/v1/customers", customer_body(email, "test.com"))
        assert literal["status_code"] == 400
        created = client.call("POST", "/v1/customers", customer_body(email))
        assert created["status_code"] == 200, created
        cust = created["data"]
        cid = cust["id"]
        assert agent.requests[-1]["data"] == {"deleted": False, "username": email}
        assert cust["email"] == email and cust["tm_delete"] == SENTINEL
        assert mysql_row(migrated_dsn, "customer_customers", cid)["email"] == email
        assert json.loads(redis_db.get(f"customer:{cid}"))["email"] == email
        assert 0 < redis_db.ttl(f"customer:{cid}") <= 86400

        got = client.call("GET", f"/v1/customers/{cid}")
        assert got == created
        listed = client.call(
            "GET",
            "/v1/customers?page_token=9999-01-01+00%3A00%3A00.000000&page_size=10",
            {"deleted": False},
        )
        assert cid in [c["id"] for c in listed["data"]]

        upd = client.call("PUT", f"/v1/customers/{cid}", customer_body(email) | {"name": "n2"})
        assert upd["data"]["name"] == "n2"
        assert mysql_row(migrated_dsn, "customer_customers", cid)["name"] == "n2"
        account = str(uuid.uuid4())
        ba = client.call(
            "PUT", f"/v1/customers/{cid}/billing_account_id", {"billing_account_id": account}
        )
        assert ba["data"]["billing_account_id"] == account
        balance = client.call(
            "POST",
            f"/v1/customers/{cid}/is_valid_balance",
            {"reference_type": "call", "country": "us", "count": 3},
        )
        assert balance["status_code"] == 200
        assert balance["data"] == {"valid": True}
        assert bill.requests[-1]["uri"] == f"/v1/accounts/{account}/is_valid_balance"
        assert bill.requests[-1]["data"] == {"billing_type": "call", "country": "us", "count": 3}

        key = client.call(
            "POST", "/v1/accesskeys", {"customer_id": cid, "name": "k", "detail": "d", "expire": 0}
        )
        assert key["status_code"] == 200, key
        kid, token = key["data"]["id"], key["data"]["token"]
        assert token.startswith("vb_")
        row = mysql_row(migrated_dsn, "customer_accesskeys", kid)
        assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
        assert token not in redis_db.get(f"customer_accesskey:{kid}").decode()
        by_token = client.call("GET", "/v1/accesskeys?page_size=10", {"token": token})
        assert [k["id"] for k in by_token["data"]] == [kid]
        assert "token" not in by_token["data"][0]
        assert client.call("GET", f"/v1/accesskeys/{kid}")["data"]["id"] == kid
        assert client.call("PUT", f"/v1/accesskeys/{kid}", {"name": "k2"})["data"]["name"] == "k2"
        assert client.call("DELETE", f"/v1/accesskeys/{kid}")["data"]["tm_delete"] != SENTINEL

        deleted = client.call("DELETE", f"/v1/customers/{cid}")
        assert deleted["data"]["tm_delete"] != SENTINEL
        assert mysql_row(migrated_dsn, "customer_customers", cid)["tm_delete"] is not None

        missing = client.call("GET", "/v1/customers")  # no "?": no route (docs/api.md#routes)
        assert missing["status_code"] == 404
        assert missing["data"]["reason"] == "ROUTE_NOT_FOUND"

        expected = [
            "customer_created",
            "customer_updated",
            "customer_updated",
            "accesskey_created",
            "accesskey_updated",
            "accesskey_deleted",
            "customer_deleted",
        ]
        mine = [e for e in events.wait_for(len(expected), 15) if _about(e, cid, kid)]
        assert [e["type"] for e in mine] == expected
        assert all(e["publisher"] == "customer-manager" for e in mine)
        assert all("token" not in e["data"] for e in mine)
        wait_until(lambda: len(hooks.requests) >= len(expected), 10, "a webhook per event")
    assert sorted(h["data"]["data"]["type"] for h in hooks.requests) == sorted(expected)
    for hook in hooks.requests:
        assert hook["uri"] == "/v1/webhooks" and hook["method"] == "POST"
        assert hook["data"]["customer_id"] == cid
        assert hook["data"]["data_type"] == "application/json"


def _about(event: dict[str, Any], cid: str, kid: str) -> bool:
    return event["data"].get("id") in (cid, kid)


def test_agent_manager_conflict_and_silence(
    client: Client, daemons: list[Daemon], service_settings: Callable[..., Settings], amqp_url: str
) -> None:
    daemons.append(start_daemon(service_settings()))

    def agent_manager(request: dict[str, Any]) -> Any:
        if request["data"]["username"].startswith("silent"):
            return None
        return peer_reply([{"id": "a"}])

    with Peer(amqp_url, AGENT_QUEUE, agent_manager):
        taken = client.call("POST", "/v1/customers", customer_body(f"u{uuid.uuid4().hex}@x.com"))
        assert taken["status_code"] == 409
        assert taken["data"]["reason"] == "EMAIL_ALREADY_EXISTS"
        started = time.monotonic()
        silent = client.call("POST", "/v1/customers", customer_body("silent@x.com"), timeout=10)
        assert silent["status_code"] == 503
        assert 2.5 < time.monotonic() - started < 4.5


def test_readiness_endpoint(
    client: Client, daemons: list[Daemon], service_settings: Callable[..., Settings]
) -> None:
    daemon = start_daemon(service_settings())
    daemons.append(daemon)
    url = f"http://127.0.0.1:{daemon.health.port}"
    with urllib.request.urlopen(f"{url}/readyz", timeout=10) as resp:
        assert resp.status == 200
        assert json.loads(resp.read()) == {
            "storage": True,
            "cache": True,
            "publisher": True,
            "consumer": True,
        }
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        assert b"customer_manager_receive_request_process_time" in resp.read()


def test_two_daemons_share_the_queue(
    client: Client, daemons: list[Daemon], service_settings: Callable[..., Settings]
) -> None:
    for _ in range(2):
        daemons.append(start_daemon(service_settings(agent_check="off", prefetch=2)))
    corrs = [client.send(envelope("GET", f"/v1/customers/{uuid.uuid4()}")) for _ in range(60)]
    replies = client.wait(corrs, 20)
    assert len(replies) == 60
    assert {r["status_code"] for r in replies.values()} == {404}
    handled = [d.consumer.proxy().handled().get(timeout=5) for d in daemons]
    assert sum(handled) == 60 and min(handled) > 0, handled


def test_billing_account_check_through_billing_manager(
    client: Client, daemons: list[Daemon], service_settings: Callable[..., Settings], amqp_url: str
) -> None:
    """The billing account check on the real broker (docs/api.md#billing-manager-account):
    GET /v1/accounts/<id> on billing-manager's queue; only an active account of this customer
    is accepted (400 otherwise, 503 when it is silent)."""
    daemons.append(start_daemon(service_settings(agent_check="off", billing_account_check=True)))
    created = client.call("POST", "/v1/customers", customer_body(f"b{uuid.uuid4().hex}@x.com"))
    cid = created["data"]["id"]
    mine, foreign, closed, silent = (str(uuid.uuid4()) for _ in range(4))
    owners = {mine: cid, foreign: str(uuid.uuid4()), closed: cid}

    def billing_manager(request: dict[str, Any]) -> Any:
        account_id = request["uri"].rsplit("/", 1)[1]
        if account_id == silent:
            return None
        deleted = "2024-01-01 00:00:00.000000" if account_id == closed else SENTINEL
        account = {"id": account_id, "customer_id": owners[account_id], "tm_delete": deleted}
        return peer_reply(account)

    uri = f"/v1/customers/{cid}/billing_account_id"
    with Peer(amqp_url, BILLING_QUEUE, billing_manager) as peer:
        accepted = client.call("PUT", uri, {"billing_account_id": mine})
        assert accepted["status_code"] == 200
        assert accepted["data"]["billing_account_id"] == mine
        for refused in (foreign, closed):
            reply = client.call("PUT", uri, {"billing_account_id": refused})
            assert reply["status_code"] == 400
            assert reply["data"]["reason"] == "INVALID_BILLING_ACCOUNT"
        assert (
            client.call("PUT", uri, {"billing_account_id": silent}, timeout=10)["status_code"]
            == 503
        )
        asked = [r["uri"] for r in peer.requests]
        assert asked[:3] == [f"/v1/accounts/{a}" for a in (mine, foreign, closed)]
        assert {r["method"] for r in peer.requests} == {"GET"}
    stored = client.call("GET", f"/v1/customers/{cid}")
    assert stored["data"]["billing_account_id"] == mine  # refusals changed nothing


def test_creates_arriving_together_are_batched_and_each_answered_once(
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    service_dsn: str,
) -> None:
    """Many creates at once on one storage actor (docs/storage.md#batched-creates): they are
    committed in batches, a duplicate email among them is refused alone, and every stored
    create has its row and its event."""
    settings = service_settings(agent_check="off", prefetch=64, storage_workers=1)
    daemons.append(start_daemon(settings))
    run = uuid.uuid4().hex[:8]
    emails = [f"batch-{run}-{i}@example.com" for i in range(60)]
    emails[-1] = emails[0].upper()  # the same email, another case: one of the two is refused
    batches = count("customer_manager_storage_batch_size_count")
    corrs = [client.send(envelope("POST", "/v1/customers", customer_body(e))) for e in emails]
    replies = client.wait(corrs, 30)
    statuses = [replies[c]["status_code"] for c in corrs]
    assert statuses.count(409) == 1 and statuses.count(200) == 59, statuses
    assert statuses[0] == 409 or statuses[-1] == 409
    assert count("customer_manager_storage_batch_size_count") > batches
    created = {r["data"]["id"]: r["data"] for r in replies.values() if r["status_code"] == 200}
    assert len(created) == 59
    for customer_id, record in created.items():
        row = mysql_row(service_dsn, "customer_customers", customer_id)
        assert row is not None and row["email"] == record["email"]
    wait_until(
        lambda: len([e for e in events.wait_for(59, 1) if e["data"].get("id") in created]) >= 59,
        20,
        "an event for every stored create",
    )
    ids = [e["data"]["id"] for e in events.events if e["type"] == "customer_created"]
    assert sorted(i for i in ids if i in created) == sorted(created)  # each exactly once
