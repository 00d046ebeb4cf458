"""Access-key usage, rotation and expiry over RabbitMQ on MySQL and Redis, two replicas
(docs/api.md#access-key-usage-and-rotation): a thousand authentications of one key within
the interval write its last use once; rotation's grace is enforced on the auth path without
a sweep; of simultaneous rotations one wins; the expiry notice sweep run twice, by two
replicas at once, publishes each key's notice once; the expiring list pages through ties."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import redis

from customer_manager.config import Settings, parse_dsn
from customer_manager.main import Daemon
from customer_manager.messages.codec import CODECS, Profile
from customer_manager.messages.records import SENTINEL, Accesskey, after
from customer_manager.storage import open_storage
from customer_manager.storage.mysql import MySQLStorage
from tests.support.amqp import Client, EventTap, envelope
from tests.support.metrics import count
from tests.support.profiles import Wire, both_profiles
from tests.support.servers import migrate
from tests.support.service import start_daemon
from tests.support.storage import accesskey as key_record
from tests.support.storage import customer as customer_record
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, both_profiles]
WRITES = "customer_manager_accesskey_last_used_write_total"


class CountingStorage(MySQLStorage):
    """MySQL that counts the last-use UPDATEs it runs (all instances together)."""

    touches = 0
    lock = threading.Lock()

    def accesskey_touch(self, key_id: uuid.UUID, moment: str) -> Accesskey | None:
        with CountingStorage.lock:
            CountingStorage.touches += 1
        return super().accesskey_touch(key_id, moment)


def _replicas(
    daemons: list[Daemon], settings: Settings, n: int = 2, **options: Any
) -> list[Daemon]:
    started = [start_daemon(settings, **options) for _ in range(n)]
    daemons.extend(started)
    return started


def _key(client: Client, wire: Wire, **fields: Any) -> dict[str, Any]:
    email = f"keys-{uuid.uuid4().hex[:8]}@example.com"
    customer = client.call("POST", "/v1/customers", {"email": email})["data"]
    body = {"customer_id": customer["id"], "name": "ci", **fields}
    created: dict[str, Any] = client.call("POST", "/v1/accesskeys", body)["data"]
    created["token"] = created.pop(wire.token)
    return created


def _record(wire: Wire, shown: dict[str, Any]) -> Accesskey:
    data = {k: v for k, v in shown.items() if k not in ("token", "raw_token")}
    decoded: Accesskey = CODECS[wire.profile].decode(msgspec.json.encode(data), Accesskey)
    return decoded


def _auth(client: Client, token: str) -> list[dict[str, Any]]:
    reply = client.call("GET", "/v1/accesskeys?page_size=1", {"token": token, "deleted": False})
    assert reply["status_code"] == 200, reply
    found: list[dict[str, Any]] = reply["data"]
    return found


def test_a_thousand_authentications_write_last_use_once(
    client: Client,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    redis_db: redis.Redis,
    wire: Wire,
) -> None:
    settings = service_settings(accesskey_last_used_interval=600, agent_check="off")
    dsn = parse_dsn(settings.database_dsn)
    factory = lambda: CountingStorage(dsn, profile=settings.wire_profile)  # noqa: E731
    _replicas(daemons, settings, storage_factory=factory)
    key = _key(client, wire)
    written, before = count(WRITES, result="written"), CountingStorage.touches
    request = envelope(
        "GET", "/v1/accesskeys?page_size=1", {"token": key["token"], "deleted": False}
    )
    for _ in range(10):  # 10 bursts of 100 in flight, over both replicas
        corrs = [client.send(request) for _ in range(100)]
        replies = client.wait(corrs, 30)
        assert len(replies) == 100
        assert all([k["id"] for k in r["data"]] == [key["id"]] for r in replies.values())
    wait_until(lambda: count(WRITES, result="written") > written, 10, "the last-use write")
    client.pump(0.5)  # any second write would have been started by now
    assert CountingStorage.touches - before == 1  # the UPDATEs run
    assert count(WRITES, result="written") - written == 1
    assert 0 < redis_db.ttl(f"customer_accesskey_used:{key['id']}") <= 600
    shown = client.call("GET", f"/v1/accesskeys/{key['id']}")["data"]
    assert SENTINEL > _record(wire, shown).tm_last_used > _record(wire, key).tm_create
    stale = client.call(
        "GET", "/v1/accesskeys?page_size=10", {"id": key["id"], "unused_since": after(-3600)}
    )
    assert stale["data"] == []


def test_rotation_grace_is_enforced_without_a_sweep(
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    wire: Wire,
) -> None:
    _replicas(daemons, service_settings(agent_check="off"))
    old = _key(client, wire)
    reply = client.call("POST", f"/v1/accesskeys/{old['id']}/rotate", {"grace": 2})
    assert reply["status_code"] == 200, reply
    new = reply["data"]["accesskey"]
    new["token"] = new.pop(wire.token)
    assert _record(wire, reply["data"]["previous"]).rotated_to == uuid.UUID(new["id"])
    for _ in range(2):  # both tokens work during the grace, on both replicas
        assert [k["id"] for k in _auth(client, old["token"])] == [old["id"]]
        assert [k["id"] for k in _auth(client, new["token"])] == [new["id"]]
    wait_until(lambda: _auth(client, old["token"]) == [], 10, "the old token refused", every=0.2)
    assert [k["id"] for k in _auth(client, new["token"])] == [new["id"]]
    gone = client.call("GET", f"/v1/accesskeys/{old['id']}")["data"]
    assert _record(wire, gone).deleted  # deleted on the spot, by the auth path
    assert client.call("POST", "/v1/accesskeys/cleanup_rotated", {})["data"] == {"deleted": 0}
    types = [(e["type"], e["data"]["id"]) for e in events.wait_for(5, 10)]
    assert ("accesskey_rotated", old["id"]) in types
    assert ("accesskey_created", new["id"]) in types
    assert types.count(("accesskey_deleted", old["id"])) == 1


def test_grace_zero_and_concurrent_rotations(
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    wire: Wire,
) -> None:
    _replicas(daemons, service_settings(agent_check="off"))
    old = _key(client, wire)
    reply = client.call("POST", f"/v1/accesskeys/{old['id']}/rotate", {"grace": 0})
    assert _record(wire, reply["data"]["previous"]).deleted
    assert _auth(client, old["token"]) == []
    key = _key(client, wire)
    corrs = [
        client.send(envelope("POST", f"/v1/accesskeys/{key['id']}/rotate", {})) for _ in range(10)
    ]
    replies = list(client.wait(corrs, 30).values())
    assert sorted(r["status_code"] for r in replies) == [200] + [409] * 9
    assert {r["data"]["reason"] for r in replies if r["status_code"] == 409} == {
        "ACCESSKEY_ALREADY_ROTATED"
    }
    # 2 customers and 2 keys created; 2 rotations (3 events with grace 0, 2 without)
    rotated = [e for e in events.wait_for(11, 10) if e["type"] == "accesskey_rotated"]
    assert sorted(e["data"]["id"] for e in rotated) == sorted([old["id"], key["id"]])


def test_expiry_notices_once_with_two_replicas_at_once(
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    fresh_mysql_dsn: str,
    wire_profile: Profile,
) -> None:
    settings = service_settings(database_dsn=migrate(fresh_mysql_dsn, wire_profile))
    _replicas(daemons, settings)
    storage = open_storage(settings)
    owner = storage.customer_insert(customer_record("exp@example.com"), lambda c: [])
    stamp = after(3600)  # ties: 30 keys share one tm_expire
    keys = [key_record(owner.id, tm_expire=stamp) for _ in range(30)]
    keys += [key_record(owner.id, tm_expire=after(7200)) for _ in range(10)]
    for n, key in enumerate(keys):
        storage.accesskey_insert(key, f"{n:064x}", lambda k: [])
    storage.accesskey_insert(key_record(owner.id), f"{99:064x}", lambda k: [])  # never expires
    storage.close()
    expected = [str(k.id) for k in sorted(keys, key=lambda k: (k.tm_expire, k.id.bytes))]
    seen, token = [], ""
    while True:  # pages of 7 through the ties
        rows = client.call("GET", f"/v1/accesskeys/expiring?page_size=7&page_token={token}")
        seen += [r["id"] for r in rows["data"]]
        if len(rows["data"]) < 7:
            break
        last = rows["data"][-1]
        token = f"{last['tm_expire']}|{last['id']}"
    assert seen == expected
    notified = []
    for _ in range(2):  # twice, each time both replicas at once
        corrs = [
            client.send(envelope("POST", "/v1/accesskeys/notify_expiring", {})) for _ in range(2)
        ]
        notified += [r["data"]["notified"] for r in client.wait(corrs, 30).values()]
    assert sum(notified) == 40 and notified[2:] == [0, 0]
    expiring = [e for e in events.wait_for(40, 15) if e["type"] == "accesskey_expiring"]
    events.pump(0.5)
    assert sorted(
        e["data"]["id"] for e in events.events if e["type"] == "accesskey_expiring"
    ) == sorted(expected)
    assert len(expiring) == 40
