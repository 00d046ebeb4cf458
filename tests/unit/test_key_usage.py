"""Access-key last use, rotation and expiry through the real actors on the embedded-style
fakes (MemoryStorage, LocalCache: the throttle is per process)
(docs/api.md#access-key-usage-and-rotation)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import msgspec

from customer_manager.messages.records import NIL, SENTINEL, Accesskey, after, now
from tests.support.harness import Build, Harness
from tests.support.metrics import count
from tests.support.profiles import Wire, both_profiles
from tests.support.waiting import wait_until

pytestmark = both_profiles

WRITES = "customer_manager_accesskey_last_used_write_total"


def plain(h: Harness, key: dict[str, Any]) -> dict[str, Any]:
    """A key as a reply shows it, with its plain token under ``token`` in both profiles."""
    token = key.pop(Wire(h.profile).token, "")
    return {**key, "token": token} if token else key


def record(h: Harness, key: dict[str, Any]) -> Accesskey:
    """The internal record of a key a reply showed (either profile's JSON)."""
    shown = {k: v for k, v in key.items() if k != "token"}
    decoded: Accesskey = Wire(h.profile).decode(msgspec.json.encode(shown), Accesskey)
    return decoded


def _key(h: Harness, customer: dict[str, Any], **fields: Any) -> dict[str, Any]:
    key: dict[str, Any] = h.json(
        "POST", "/v1/accesskeys", {"customer_id": customer["id"], "name": "ci", **fields}
    )
    h.published()
    return plain(h, key)


def auth(h: Harness, token: str) -> list[dict[str, Any]]:
    """api-manager's authentication: a list by token of live keys."""
    found: list[dict[str, Any]] = h.json(
        "GET", "/v1/accesskeys?page_size=1", {"token": token, "deleted": False}
    )
    return found


def reason(h: Harness, method: str, uri: str, data: Any = ...) -> tuple[int, str]:
    response = h.send(method, uri, data)
    return response.status_code, msgspec.json.decode(response.data).get("reason", "")


USAGE = ["tm_last_used", "rotated_from", "rotated_to", "tm_grace_end"]


def test_where_the_usage_keys_are(h: Harness) -> None:
    """seed: after ``tm_expire``, always; current: after ``tm_delete``, only when set (a
    plain key is the newest Go's record byte for byte)."""
    key = _key(h, h.customer())
    names = [name for name in key if name != "token"]
    if h.profile == "seed":
        assert names[names.index("tm_expire") + 1 : names.index("tm_create")] == USAGE
        assert key["tm_last_used"] == key["tm_grace_end"] == SENTINEL
        assert key["rotated_from"] == key["rotated_to"] == str(NIL)
    else:
        assert not set(USAGE) & set(names) and names[-1] == "tm_delete"
    previous = h.json("POST", f"/v1/accesskeys/{key['id']}/rotate", {})["previous"]
    names = list(previous)
    if h.profile == "current":
        assert names[names.index("tm_delete") + 1 :] == ["rotated_to", "tm_grace_end"]
    assert record(h, previous).rotated_to != NIL


def test_authentications_within_the_interval_write_last_use_once(h: Harness) -> None:
    key = _key(h, h.customer())
    before = {r: count(WRITES, result=r) for r in ("written", "throttled", "error")}
    for _ in range(50):
        assert [k["id"] for k in auth(h, key["token"])] == [key["id"]]
    wait_until(lambda: count(WRITES, result="written") > before["written"], 5, "the write")
    stored = h.memory.accesskey_get(uuid.UUID(key["id"]))
    assert SENTINEL > stored.tm_last_used > record(h, key).tm_create
    assert stored.tm_update == SENTINEL  # a use is no update
    assert count(WRITES, result="written") - before["written"] == 1
    assert count(WRITES, result="throttled") - before["throttled"] == 49
    assert h.published() == []  # no event for a use
    wait_until(
        lambda: record(h, h.json("GET", f"/v1/accesskeys/{key['id']}")).tm_last_used != SENTINEL,
        5,
        "the cache entry refreshed",
    )


def test_interval_zero_tracks_nothing(build: Build) -> None:
    h = build(accesskey_last_used_interval=0)
    key = _key(h, h.customer())
    written = count(WRITES, result="written")
    assert auth(h, key["token"])
    assert h.json("POST", f"/v1/accesskeys/{key['id']}/used")["id"] == key["id"]
    assert count(WRITES, result="written") == written
    assert h.memory.accesskey_get(uuid.UUID(key["id"])).tm_last_used == SENTINEL


def test_used_route(h: Harness) -> None:
    key = _key(h, h.customer())
    assert h.json("POST", f"/v1/accesskeys/{key['id']}/used")["id"] == key["id"]
    wait_until(
        lambda: h.memory.accesskey_get(uuid.UUID(key["id"])).tm_last_used != SENTINEL,
        5,
        "the write",
    )
    assert reason(h, "POST", f"/v1/accesskeys/{uuid.uuid4()}/used") == (
        404,
        "ACCESSKEY_NOT_FOUND",
    )
    h.json("DELETE", f"/v1/accesskeys/{key['id']}")
    assert reason(h, "POST", f"/v1/accesskeys/{key['id']}/used") == (409, "ACCESSKEY_DELETED")


def test_a_failing_throttle_never_fails_authentication(h: Harness) -> None:
    key = _key(h, h.customer())

    def broken(*_args: Any, **_kwargs: Any) -> bool:
        raise ConnectionError("redis is down")

    h.cache.claim = broken  # type: ignore[method-assign]
    errors = count(WRITES, result="error")
    assert [k["id"] for k in auth(h, key["token"])] == [key["id"]]
    wait_until(lambda: count(WRITES, result="error") > errors, 5, "the skipped write")
    assert h.memory.accesskey_get(uuid.UUID(key["id"])).tm_last_used == SENTINEL


def test_unused_since_filter(h: Harness) -> None:
    customer = h.customer()
    key = _key(h, customer)
    since = after(1)
    data = {"customer_id": customer["id"], "unused_since": since}
    assert [k["id"] for k in h.json("GET", "/v1/accesskeys?page_size=10", data)] == [key["id"]]
    h.memory.accesskey_touch(uuid.UUID(key["id"]), after(2))
    assert h.json("GET", "/v1/accesskeys?page_size=10", data) == []
    bad = {"unused_since": "yesterday"}
    assert reason(h, "GET", "/v1/accesskeys?page_size=10", bad) == (400, "INVALID_FILTER")


# -- rotation -----------------------------------------------------------------------------


def rotate(h: Harness, key_id: str, **body: Any) -> dict[str, Any]:
    reply: dict[str, Any] = h.json("POST", f"/v1/accesskeys/{key_id}/rotate", body)
    return reply


def test_rotate_reply_events_and_both_tokens_during_the_grace(h: Harness) -> None:
    customer = h.customer(webhook_uri="https://hook.example/x")
    old = _key(h, customer, detail="d", expire=3600)
    reply = rotate(h, old["id"], grace=3600, expire=60)
    new, previous = plain(h, reply["accesskey"]), reply["previous"]
    assert new["token"].startswith("vb_") and new["token"] != old["token"]
    assert (new["name"], new["detail"], new["customer_id"]) == ("ci", "d", customer["id"])
    fresh, gone = record(h, new), record(h, previous)
    assert str(fresh.rotated_from) == old["id"] and fresh.rotated_to == NIL
    assert str(gone.rotated_to) == new["id"] and gone.tm_delete == SENTINEL
    assert gone.tm_grace_end > fresh.tm_create and Wire(h.profile).token not in previous
    assert fresh.tm_expire < after(61)
    events = [(m[2]["type"], m[2]["data"]["id"]) for m in h.published() if m[0]]
    assert events == [("accesskey_created", new["id"]), ("accesskey_rotated", old["id"])]
    assert [k["id"] for k in auth(h, old["token"])] == [old["id"]]
    assert [k["id"] for k in auth(h, new["token"])] == [new["id"]]
    assert reason(h, "POST", f"/v1/accesskeys/{old['id']}/rotate", {}) == (
        409,
        "ACCESSKEY_ALREADY_ROTATED",
    )


def test_the_old_token_is_refused_after_the_grace_without_a_sweep(h: Harness) -> None:
    customer = h.customer(webhook_uri="https://hook.example/x")
    old = _key(h, customer)
    new = plain(h, rotate(h, old["id"], grace=1)["accesskey"])
    h.published()
    wait_until(lambda: auth(h, old["token"]) == [], 5, "the old token refused")
    assert h.memory.accesskey_get(uuid.UUID(old["id"])).deleted  # deleted on the spot
    events = [m[2]["type"] for m in h.published() if m[0]]
    assert events == ["accesskey_deleted"]
    assert [k["id"] for k in auth(h, new["token"])] == [new["id"]]
    assert h.json("POST", "/v1/accesskeys/cleanup_rotated", {}) == {"deleted": 0}


def test_grace_zero_revokes_at_once(h: Harness) -> None:
    old = _key(h, h.customer())
    reply = rotate(h, old["id"], grace=0)
    assert record(h, reply["previous"]).deleted
    types = [m[2]["type"] for m in h.published() if m[0]]
    assert types == ["accesskey_created", "accesskey_rotated", "accesskey_deleted"]
    assert auth(h, old["token"]) == []
    new = plain(h, reply["accesskey"])
    assert [k["id"] for k in auth(h, new["token"])] == [new["id"]]


def test_rotate_refusals(h: Harness) -> None:
    customer = h.customer()
    key = _key(h, customer)
    for grace in (-1, 2_592_001, "1"):
        assert reason(h, "POST", f"/v1/accesskeys/{key['id']}/rotate", {"grace": grace})[0] == 400
    assert reason(h, "POST", f"/v1/accesskeys/{key['id']}/rotate", {"grace": -1}) == (
        400,
        "INVALID_GRACE",
    )
    assert reason(h, "POST", f"/v1/accesskeys/{uuid.uuid4()}/rotate", {})[0] == 404
    h.json("POST", f"/v1/customers/{customer['id']}/freeze")
    assert reason(h, "POST", f"/v1/accesskeys/{key['id']}/rotate", {}) == (409, "CUSTOMER_FROZEN")
    other = _key(h, h.customer("b@example.com"))
    h.json("DELETE", f"/v1/accesskeys/{other['id']}")
    assert reason(h, "POST", f"/v1/accesskeys/{other['id']}/rotate") == (409, "ACCESSKEY_DELETED")


def test_concurrent_rotations_one_wins(h: Harness) -> None:
    key = _key(h, h.customer())
    barrier, results = threading.Barrier(8), []

    def go() -> None:
        barrier.wait()
        results.append(h.send("POST", f"/v1/accesskeys/{key['id']}/rotate", {}))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [409] * 7
    live = h.json("GET", "/v1/accesskeys?page_size=10", {"deleted": False})
    assert len(live) == 2


def test_cleanup_rotated_sweep(h: Harness) -> None:
    customer = h.customer()
    keys = [_key(h, customer) for _ in range(3)]
    for key in keys[:2]:
        rotate(h, key["id"], grace=1)
    rotate(h, keys[2]["id"], grace=3600)
    h.published()
    wait_until(
        lambda: now() > after(1, h.memory.accesskey_get(uuid.UUID(keys[1]["id"])).tm_grace_end), 5
    )
    assert h.json("POST", "/v1/accesskeys/cleanup_rotated", {}) == {"deleted": 2}
    assert h.json("POST", "/v1/accesskeys/cleanup_rotated") == {"deleted": 0}
    assert [m[2]["type"] for m in h.published() if m[0]] == ["accesskey_deleted"] * 2
    assert not h.memory.accesskey_get(uuid.UUID(keys[2]["id"])).deleted


# -- expiring keys ------------------------------------------------------------------------


def test_expiring_list_orders_and_pages_through_ties(h: Harness) -> None:
    customer = h.customer()
    keys = [_key(h, customer, expire=3600) for _ in range(3)]
    stamp = after(3600)
    for key in keys:  # the same tm_expire for all three: ties
        stored = h.memory.accesskey_get(uuid.UUID(key["id"]))
        h.memory._keys[stored.id] = msgspec.structs.replace(stored, tm_expire=stamp)
    later = _key(h, customer, expire=7200)
    _key(h, customer, expire=30 * 86400)  # outside the default week
    _key(h, customer)  # never expires
    expected = [*sorted((k["id"] for k in keys), key=lambda i: uuid.UUID(i).bytes), later["id"]]
    seen, token = [], ""
    while True:
        uri = f"/v1/accesskeys/expiring?page_size=2&page_token={token}"
        rows = h.json("GET", uri)
        seen += [r["id"] for r in rows]
        if len(rows) < 2:
            break
        token = f"{rows[-1]['tm_expire']}|{rows[-1]['id']}"
    assert seen == expected
    assert h.json("GET", "/v1/accesskeys/expiring?within=60") == []
    other = {"customer_id": str(uuid.uuid4())}
    assert h.json("GET", "/v1/accesskeys/expiring?within=604800", other) == []
    for within in ("0", "31536001", "x"):
        status = reason(h, "GET", f"/v1/accesskeys/expiring?within={within}")
        assert status == (400, "INVALID_WITHIN")


def test_notify_expiring_emits_once(h: Harness) -> None:
    customer = h.customer(webhook_uri="https://hook.example/x")
    soon = [_key(h, customer, expire=600) for _ in range(3)]
    _key(h, customer, expire=30 * 86400)
    assert h.json("POST", "/v1/accesskeys/notify_expiring", {}) == {"notified": 3}
    messages = h.published()
    events = sorted(m[2]["data"]["id"] for m in messages if m[0])
    assert events == sorted(k["id"] for k in soon)
    assert {m[2]["type"] for m in messages if m[0]} == {"accesskey_expiring"}
    assert len([m for m in messages if not m[0]]) == 3  # the webhooks
    assert h.json("POST", "/v1/accesskeys/notify_expiring", {}) == {"notified": 0}
    assert h.published() == []
    assert h.json("POST", "/v1/accesskeys/notify_expiring", {"within": 31536000}) == {"notified": 1}
    bad = reason(h, "POST", "/v1/accesskeys/notify_expiring", {"within": 0})
    assert bad == (400, "INVALID_WITHIN")


def test_notify_expiring_by_two_replicas_at_once(build: Build) -> None:
    first = build()
    second = build(storage_factory=lambda: first.memory)
    customer = first.customer()
    keys = [_key(first, customer, expire=600) for _ in range(20)]
    barrier, replies = threading.Barrier(2), []

    def sweep(h: Harness) -> None:
        barrier.wait()
        replies.append(h.json("POST", "/v1/accesskeys/notify_expiring", {}))

    threads = [threading.Thread(target=sweep, args=(h,)) for h in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["notified"] for r in replies) == len(keys)
    published = [m for h in (first, second) for m in h.published() if m[0]]
    assert sorted(m[2]["data"]["id"] for m in published) == sorted(k["id"] for k in keys)


def test_an_old_key_past_its_grace_is_no_use(h: Harness) -> None:
    old = _key(h, h.customer())
    rotate(h, old["id"], grace=1)
    end = h.memory.accesskey_get(uuid.UUID(old["id"])).tm_grace_end
    wait_until(lambda: now() > end, 5, "the grace to end")
    assert reason(h, "POST", f"/v1/accesskeys/{old['id']}/used") == (409, "ACCESSKEY_DELETED")
    written = count(WRITES, result="written")
    paged = h.json(
        "GET", f"/v1/accesskeys?page_size=1&page_token={after(60)}", {"token": old["token"]}
    )
    assert [k["id"] for k in paged] == [old["id"]]  # a plain list shows it until the sweep
    h.json("POST", "/v1/accesskeys/cleanup_rotated", {})
    assert count(WRITES, result="written") == written
    assert h.memory.accesskey_get(uuid.UUID(old["id"])).tm_last_used == SENTINEL
