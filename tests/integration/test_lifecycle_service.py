"""The lifecycle routes over RabbitMQ (docs/lifecycle.md#routes,
docs/lifecycle.md#outgoing-requests) with fake email-manager,
agent-manager and webhook-manager peers: replies and error codes, MySQL rows, Redis keys and
TTLs, events and webhooks (never a secret or a token), and the requested emails, which go out
after the reply and are retried when the peer fails."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from customer_manager.config import Settings
from customer_manager.main import Daemon
from customer_manager.messages.queues import AGENT_QUEUE, EMAIL_QUEUE, WEBHOOK_QUEUE
from tests.integration.test_service import customer_body, mysql_row
from tests.support.amqp import Client, EventTap, Peer
from tests.support.profiles import Wire, both_profiles, reason_of
from tests.support.service import start_daemon

pytestmark = [pytest.mark.integration, both_profiles]
SENTINEL = "9999-01-01 00:00:00.000000"
SECRETS = ("webhook_secret", "terms_agreed_ip", "terms_agreed_version", "token", "raw_token")


def agent_manager(request: dict[str, Any]) -> dict[str, Any]:
    if request["uri"] == "/v1/password-forgot":
        return {"status_code": 200, "data_type": ""}
    return {"status_code": 200, "data_type": "application/json", "data": []}


def email_ok(_request: dict[str, Any]) -> dict[str, Any]:
    return {"status_code": 200, "data_type": "application/json", "data": {"id": "e"}}


def wait_for(predicate: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def mine(events: EventTap, ids: set[str], count: int) -> list[tuple[str, dict[str, Any]]]:
    """The events about ``ids``, once ``count`` of them came (and nothing more within 0.3 s)."""

    def about() -> list[tuple[str, dict[str, Any]]]:
        return [(e["type"], e["data"]) for e in events.events if e["data"].get("id") in ids]

    deadline = time.monotonic() + 10
    while len(about()) < count and time.monotonic() < deadline:
        events.pump(0.05)
    events.pump(0.3)
    return about()


def test_signup_and_email_verify(
    wire: Wire,
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    redis_db: redis.Redis,
    service_dsn: str,
    amqp_url: str,
) -> None:
    daemons.append(start_daemon(service_settings(email_verify_base_url="https://app.test")))
    email = f"su-{uuid.uuid4().hex[:8]}@test.com"
    body = {**customer_body(email), "client_ip": "203.0.113.7"}
    with (
        Peer(amqp_url, AGENT_QUEUE, agent_manager) as agents,
        Peer(amqp_url, EMAIL_QUEUE, email_ok) as mails,
        Peer(amqp_url, WEBHOOK_QUEUE, lambda r: None) as hooks,
    ):
        bad = client.call("POST", "/v1/customers/signup", {**body, "client_ip": "1.2.3"})
        assert (bad["status_code"], bad["data"]["reason"]) == (400, "INVALID_CLIENT_IP")
        done = client.call("POST", "/v1/customers/signup", body)
        assert done["status_code"] == 200, done
        cust, key = done["data"]["customer"], done["data"]["accesskey"]
        cid = cust["id"]
        assert (cust["status"], cust["email_verified"]) == ("initial", False)
        assert key[wire.token].startswith("vb_") and key["name"] == "default"
        row = mysql_row(service_dsn, "customer_customers", cid)
        assert (row["status"], row["email_verified"], row["terms_agreed_ip"]) == (
            "initial",
            0,
            "203.0.113.7",
        )
        assert mysql_row(service_dsn, "customer_accesskeys", key["id"])["customer_id"]
        assert json.loads(redis_db.get(f"customer:{cid}"))["status"] == "initial"
        tokens = [k.decode() for k in redis_db.keys("email_verify:*")]
        assert len(tokens) == 1 and redis_db.get(tokens[0]) == cid.encode()
        assert 3590 < redis_db.ttl(tokens[0]) <= 3600
        token = tokens[0].removeprefix("email_verify:")

        assert wait_for(lambda: mails.requests), "no verification email requested"
        (mail,) = mails.requests
        assert mail["uri"] == "/v1/emails" and mail["publisher"] == "customer-manager"
        assert mail["data"]["destinations"] == [{"type": "email", "target": email}]
        link = re.search(r"https://\S+", mail["data"]["content"])
        assert link and link.group(0) == f"https://app.test/auth/email-verify?token={token}"
        assert mails.props[
            0
        ].reply_to  # a call with a reply queue (docs/lifecycle.md#outgoing-requests)

        again = client.call("POST", "/v1/customers/signup", body)
        assert (again["status_code"], again["data"]["reason"]) == (409, "EMAIL_ALREADY_EXISTS")
        created = client.call("POST", "/v1/customers", customer_body(email.upper()))
        assert reason_of(created) == (409, "EMAIL_ALREADY_EXISTS")  # initial holds the email

        redis_db.set(f"verify_lock:{cid}", "someone", ex=30)
        busy = client.call("POST", "/v1/customers/email_verify", {"token": token})
        assert (busy["status_code"], busy["data"]["reason"]) == (409, "VERIFICATION_IN_PROGRESS")
        redis_db.delete(f"verify_lock:{cid}")
        verified = client.call("POST", "/v1/customers/email_verify", {"token": token})
        assert verified["status_code"] == 200, verified
        assert verified["data"]["customer"]["status"] == "active"
        row = mysql_row(service_dsn, "customer_customers", cid)
        assert (row["status"], row["email_verified"]) == ("active", 1)
        assert redis_db.get(f"email_verify:{token}") is None
        assert redis_db.get(f"verify_lock:{cid}") is None
        assert json.loads(redis_db.get(f"customer:{cid}"))["status"] == "active"
        forgot = wait_for(lambda: [r for r in agents.requests if "password" in r["uri"]])
        assert forgot and forgot[0]["data"] == {"username": email}
        replay = client.call("POST", "/v1/customers/email_verify", {"token": token})
        assert (replay["status_code"], replay["data"]["reason"]) == (400, "INVALID_TOKEN")
        bad_token = client.call("POST", "/v1/customers/email_verify", {"token": "nothex"})
        assert (bad_token["status_code"], bad_token["data"]["reason"]) == (400, "INVALID_TOKEN")

        seen = mine(events, {cid, key["id"]}, 3)
        assert [t for t, _ in seen] == ["accesskey_created", "customer_created", "customer_updated"]
        assert seen[1][1]["headless"] is True and not {"token", "raw_token"} & set(seen[0][1])
        assert wait_for(lambda: len(hooks.requests) >= 3)
        assert len(mails.requests) == 1  # one email: the repeats were refused
    for hook in hooks.requests:
        for secret in SECRETS:
            assert secret not in hook["data"]["data"]["data"]


def test_a_failing_or_silent_email_manager_never_delays_the_reply(
    client: Client,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    amqp_url: str,
    service_dsn: str,
) -> None:
    options = {"lease_seconds": 1.0, "deferred_backoff": 0.2}
    daemons.append(start_daemon(service_settings(), publisher_options=options))
    answers: list[dict[str, Any] | None] = [None, {"status_code": 500, "data_type": ""}]

    def flaky(_request: dict[str, Any]) -> dict[str, Any] | None:
        return answers.pop(0) if answers else email_ok(_request)

    with Peer(amqp_url, AGENT_QUEUE, agent_manager), Peer(amqp_url, EMAIL_QUEUE, flaky) as mails:
        started = time.monotonic()
        done = client.call(
            "POST", "/v1/customers/signup", customer_body(f"f-{uuid.uuid4().hex}@t.com")
        )
        assert done["status_code"] == 200 and time.monotonic() - started < 2.0
        # silent (a 3 s timeout), then 500, then 200: three requests, then no more
        assert wait_for(lambda: len(mails.requests) >= 3, 20)
        time.sleep(2.0)
        assert len(mails.requests) == 3
    first = mails.requests[0]["data"]
    assert all(r["data"] == first for r in mails.requests)  # the same link every time


def test_freeze_recover_delete_and_metadata(
    wire: Wire,
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    redis_db: redis.Redis,
    service_dsn: str,
    amqp_url: str,
) -> None:
    daemons.append(start_daemon(service_settings()))
    email = f"fz-{uuid.uuid4().hex[:8]}@test.com"
    with Peer(amqp_url, AGENT_QUEUE, agent_manager), Peer(amqp_url, WEBHOOK_QUEUE, lambda r: None):
        cid = client.call("POST", "/v1/customers", customer_body(email))["data"]["id"]
        kid = client.call("POST", "/v1/accesskeys", {"customer_id": cid, "name": "k"})["data"]["id"]
        frozen = client.call("POST", f"/v1/customers/{cid}/freeze")  # no data at all
        assert frozen["data"]["status"] == "frozen"
        assert mysql_row(service_dsn, "customer_customers", cid)["status"] == "frozen"
        assert json.loads(redis_db.get(f"customer:{cid}"))["status"] == "frozen"
        refused = client.call("POST", "/v1/accesskeys", {"customer_id": cid, "name": "k2"})
        assert (refused["status_code"], refused["data"]["reason"]) == (409, "CUSTOMER_FROZEN")
        assert client.call("POST", f"/v1/customers/{cid}/recover")["data"]["status"] == "active"
        uri = f"/v1/customers/{cid}/recover"
        not_frozen = client.call("POST", uri)
        assert reason_of(not_frozen) == wire.refusal(uri, 409, "CUSTOMER_NOT_FROZEN")
        meta = client.call(
            "PUT", f"/v1/customers/{cid}/metadata", {"metadata": {"rtp_debug": True}}
        )
        assert meta["data"]["metadata"] == {"rtp_debug": True}
        stored = mysql_row(service_dsn, "customer_customers", cid)["metadata"]
        assert json.loads(stored) == {"rtp_debug": True}
        bad = client.call("PUT", f"/v1/customers/{cid}/metadata", {"metadata": 1})
        assert (bad["status_code"], bad["data"]["reason"]) == (400, "INVALID_METADATA")
        gone = client.call("POST", f"/v1/customers/{cid}/freeze_and_delete")
        assert gone["data"]["email"] == f"deleted_{cid[:8]}@removed.voipbin.net"
        row = mysql_row(service_dsn, "customer_customers", cid)
        assert (row["status"], row["webhook_secret"], row["detail"]) == ("deleted", "", "")
        assert mysql_row(service_dsn, "customer_accesskeys", kid)["tm_delete"] is not None
        cached_key = json.loads(redis_db.get(f"customer_accesskey:{kid}"))
        assert cached_key["tm_delete"] not in (SENTINEL, None)
        guest = client.call("DELETE", "/v1/customers/a856c986-4b06-4496-9641-4d0ecbc67df5")
        assert (guest["status_code"], guest["data"]["reason"]) == (409, "CUSTOMER_PROTECTED")
        uri = f"/v1/customers/{uuid.uuid4()}/freeze"
        missing = client.call("POST", uri)
        assert reason_of(missing) == wire.refusal(uri, 404, "CUSTOMER_NOT_FOUND")
        seen = [t for t, _ in mine(events, {cid, kid}, 8)]
    assert seen == [
        "customer_created",
        "accesskey_created",
        "customer_frozen",
        "customer_recovered",
        "customer_updated",
        "customer_frozen",
        "accesskey_deleted",
        "customer_deleted",
    ]


def test_the_other_lifecycle_errors_over_the_broker(
    wire: Wire,
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    amqp_url: str,
) -> None:
    daemons.append(start_daemon(service_settings()))
    with Peer(amqp_url, AGENT_QUEUE, agent_manager), Peer(amqp_url, EMAIL_QUEUE, email_ok):
        email = f"err-{uuid.uuid4().hex[:8]}@test.com"
        initial = client.call("POST", "/v1/customers/signup", {"email": email})["data"]
        iid = initial["customer"]["id"]
        cid = client.call("POST", "/v1/customers", customer_body(f"x{email}"))["data"]["id"]
        assert client.call("DELETE", f"/v1/customers/{cid}")["data"]["status"] == "deleted"
        setup = mine(events, {iid, cid}, 3)
        assert [t for t, _ in setup] == ["customer_created", "customer_created", "customer_deleted"]
        cases = [
            ("POST", f"/v1/customers/{iid}/freeze", None, 409, "CUSTOMER_NOT_ACTIVE"),
            ("POST", f"/v1/customers/{iid}/freeze_and_delete", None, 409, "CUSTOMER_NOT_ACTIVE"),
            ("POST", f"/v1/customers/{cid}/freeze", None, 409, "CUSTOMER_DELETED"),
            ("POST", f"/v1/customers/{cid}/freeze_and_delete", None, 409, "CUSTOMER_DELETED"),
            ("POST", f"/v1/customers/{iid}/recover", None, 409, "CUSTOMER_NOT_FROZEN"),
            ("POST", "/v1/customers/signup", None, 400, "INVALID_BODY"),
            ("POST", "/v1/customers/signup", {"email": "nope"}, 400, "INVALID_EMAIL"),
            ("POST", "/v1/customers/email_verify", None, 400, "INVALID_BODY"),
            ("POST", "/v1/customers/email_verify", {"token": "f" * 64}, 400, "INVALID_TOKEN"),
            ("PUT", f"/v1/customers/{cid}/metadata", None, 400, "INVALID_BODY"),
            ("PUT", f"/v1/customers/{uuid.uuid4()}/metadata", {"metadata": {}}, 404, None),
        ]
        for method, uri, data, status, reason in cases:
            got = client.call(method, uri, data)
            expected = wire.refusal(uri, status, reason or "CUSTOMER_NOT_FOUND")
            assert reason_of(got) == expected, (uri, got)
        assert mine(events, {iid, cid}, 3) == setup  # the refusals published nothing
