"""Issue 15, "Must show" item 2: on a database built from the newest upstream schema
(docs/profiles.md#mysql) with rows written as the newest Go writes them, our daemon in
``WIRE_PROFILE=current`` reads, authenticates, updates and deletes them; every reply, event and
cache entry it produces parses with a reader that decodes as the newest Go does
(tests/support/go_current.py), and what it writes reads back through Go's SQL; a customer we
create survives Go's ``cleanup_unverified``; startup on that database issues no UPDATE and no
ALTER but the additive objects (docs/profiles.md#schema), observed in MariaDB's general log.

Written from the contract and the stand-in alone, against the planned interface
(``Settings``'s ``wire_profile``, CLI ``--wire_profile``), not against the implementation.
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
import redis
from click.testing import CliRunner, Result

from customer_manager.actors.service.router import call
from customer_manager.cli import main as control
from customer_manager.config import Settings
from customer_manager.main import Daemon
from customer_manager.messages.queues import AGENT_QUEUE, EMAIL_QUEUE, EVENT_EXCHANGE, WEBHOOK_QUEUE
from customer_manager.oneshot import make_request
from tests.support.amqp import Peer, reset_request_queue
from tests.support.go_current import (
    UPSTREAM_ACCESSKEY_COLUMNS,
    UPSTREAM_CUSTOMER_COLUMNS,
    UPSTREAM_INDEXES,
    UPSTREAM_TABLES,
    GoAccesskey,
    GoCurrent,
    GoCurrentReplica,
    GoCustomer,
    GoEvent,
    GoReply,
    RawClient,
    RawEventTap,
    accesskey_json,
    customer_json,
    decode_accesskey,
    decode_accesskey_list,
    decode_cache_accesskey,
    decode_cache_customer,
    decode_customer,
    decode_customer_list,
    decode_email_verify,
    decode_event,
    decode_reply,
    decode_signup,
    decode_webhook_accesskey,
    decode_webhook_customer,
    go_cache_read,
    go_dumps,
    go_now,
    sha256_hex,
)
from tests.support.servers import MYSQL_HOST, MYSQL_PORT
from tests.support.service import start_daemon
from tests.support.waiting import until, wait_until

pytestmark = pytest.mark.integration
# api-manager's auth lookup (docs/profiles.md#requests)
LOOKUP_URI = "/v1/accesskeys?page_token=&page_size=10"


# -- the Go world and our daemon -------------------------------------------------------------


@dataclasses.dataclass
class World:
    """What the newest Go left in the database before we start."""

    alice: uuid.UUID
    alice_key: tuple[uuid.UUID, str]
    forever_key: tuple[uuid.UUID, str]  # tm_expire NULL (Go reads it as null)
    dead_key: tuple[uuid.UUID, str]  # deleted by Go
    gone: uuid.UUID  # soft-deleted by Go
    gone_key: tuple[uuid.UUID, str]  # Go deletes a customer without touching its keys
    signup: uuid.UUID  # a sign-up, unverified, 2 h old


def build_world(go: GoCurrent, *, gone_deleted: bool = True) -> World:
    """The Go world; with ``gone_deleted=False`` the customer ``gone`` is still live (Go
    deletes it later with ``delete_gone``, as a Go replica still running during the switch-over
    would)."""
    two_hours_ago = go_now() - timedelta(hours=2)
    alice = go.insert_customer("alice@example.com", name="Alice")
    gone = go.insert_customer("gone@example.com")
    signup = go.insert_customer("new@example.com", signup=True, created=two_hours_ago)
    go.insert_accesskey(signup, name="default", created=two_hours_ago)  # signup's own key
    world = World(
        alice=alice,
        alice_key=go.insert_accesskey(alice, name="live"),
        forever_key=go.insert_accesskey(alice, name="forever", expire=None),
        dead_key=go.insert_accesskey(alice, name="dead"),
        gone=gone,
        gone_key=go.insert_accesskey(gone, name="left behind"),
        signup=signup,
    )
    go.delete_accesskey(world.dead_key[0])
    if gone_deleted:
        delete_gone(go, world)
    return world


def delete_gone(go: GoCurrent, world: World) -> None:
    go.delete_customer(world.gone)  # the newest Go leaves the customer's keys as they are


@pytest.fixture
def world(go_current: GoCurrent) -> World:
    """The Go world before our start, ``gone`` still live (see ``ours``)."""
    return build_world(go_current, gone_deleted=False)


def ctl(go: GoCurrent, *args: str) -> Result:
    """customer-control in profile ``current`` on the stand-in's database and Redis DB."""
    where = ["--database_dsn", go.dsn, "--redis_address", go.redis_address]
    where += ["--redis_database", str(go.redis_db), "--wire_profile", "current"]
    return CliRunner().invoke(control, [*where, *args])


@pytest.fixture
def raw_client(amqp_url: str) -> Iterator[RawClient]:
    reset_request_queue(amqp_url)
    client = RawClient(amqp_url)
    yield client
    client.close()


@pytest.fixture
def raw_events(amqp_url: str) -> Iterator[RawEventTap]:
    tap = RawEventTap(amqp_url, EVENT_EXCHANGE)
    yield tap
    tap.close()


def start_current(
    go: GoCurrent,
    service_settings: Callable[..., Settings],
    daemons: list[Daemon],
    report: list[str] | None = None,
    dsn_params: str = "",
) -> Daemon:
    """Our daemon in profile ``current`` on the stand-in's database, after ``db migrate``
    (whose output is appended to ``report``)."""
    migrated = ctl(go, "db", "migrate")
    assert migrated.exit_code == 0, migrated.output
    if report is not None:
        report.append(migrated.output)
    dsn = f"{go.dsn}?{dsn_params}" if dsn_params else go.dsn
    settings = service_settings(database_dsn=dsn, wire_profile="current", agent_check="off")
    daemon = start_daemon(settings)
    daemons.append(daemon)
    return daemon


@pytest.fixture
def ours(
    go_current: GoCurrent,
    world: World,
    raw_client: RawClient,  # first: it waits for the request queue to have no consumer
    raw_events: RawEventTap,
    service_settings: Callable[..., Settings],
    daemons: list[Daemon],
) -> Daemon:
    """Our daemon in ``current`` on the Go world; then a Go replica, still running, deletes
    ``gone`` (a Go-era database with keys of a deleted customer at our start is
    ``test_startup_...[orphan key]``)."""
    daemon = start_current(go_current, service_settings, daemons)
    delete_gone(go_current, world)
    return daemon


def rpc(client: RawClient, method: str, uri: str, data: Any = None, **extra: str) -> GoReply:
    """A request as a newest Go caller sends it (compact Go JSON, ``data`` omitted when
    None), its reply read by ``parseResponse``'s rules."""
    body: dict[str, Any] = {"uri": uri, "method": method, "publisher": "api-manager"}
    body["data_type"] = "application/json"
    if data is not None:
        body["data"] = data
    body.update(extra)
    return decode_reply(client.send_raw(go_dumps(body)))


def our_router(daemon: Daemon, method: str, uri: str, data: Any = None) -> bytes:
    """A request answered by our daemon's own router (not via the shared queue): the data."""
    response = call(daemon.system.router, make_request(method, uri, data), 10)
    assert response.status_code == 200, bytes(response.data)
    return bytes(response.data)


def ok(reply: GoReply) -> bytes:
    assert reply.status_code == 200, (reply.status_code, reply.data)
    assert reply.data_type == "application/json" and reply.data is not None
    return reply.data


def events(tap: RawEventTap, count: int, timeout: float = 10) -> list[GoEvent]:
    """The first ``count`` events since the tap opened, each read by the Go reader."""
    until(lambda: len(tap.bodies) >= count, timeout, idle=tap.pump)
    tap.pump(0.3)  # and any extra ones
    assert all(p.content_type == "text/plain" for p in tap.props)  # docs/profiles.md#json
    return [decode_event(body) for body in tap.bodies]


def event_data(tap: RawEventTap, kind: str) -> list[bytes]:
    """The raw ``data`` of each event of type ``kind`` seen so far (json.RawMessage)."""

    class Envelope(msgspec.Struct):
        type: str
        data: msgspec.Raw

    found = [msgspec.json.decode(body, type=Envelope) for body in tap.bodies]
    return [bytes(e.data) for e in found if e.type == kind]


def check_cache(go: GoCurrent, *expect: str) -> int:
    """Every record entry in Redis is Go's JSON (docs/profiles.md#redis): it passes the strict
    reader, its TTL is at most a day, and Go's cache read of it equals Go's SQL read of the row (no
    stale entry after the writes settle); the keys in ``expect`` are among them. Returns the number
    of entries checked."""

    def entries() -> list[tuple[str, bytes]]:
        found = []
        for pattern in ("customer:*", "customer_accesskey:*"):
            for key in go.redis.scan_iter(match=pattern):
                value = go.redis.get(key)
                if value is not None:
                    found.append((key.decode(), value))
        return found

    def consistent() -> bool:
        for key, value in entries():
            kind, _, ident = key.partition(":")
            row: GoCustomer | GoAccesskey | None
            if kind == "customer":
                row = go.customer(uuid.UUID(ident))
                cached = go_cache_read(value, "customer")
            else:
                row = go.accesskey(uuid.UUID(ident))
                cached = go_cache_read(value, "accesskey")
                if isinstance(row, GoAccesskey):
                    row = dataclasses.replace(row, token_hash="")  # never in the cache
            if cached != row:
                return False
        return True

    wait_until(consistent, 10, "every cache entry to match Go's read of its row")
    checked = entries()
    assert set(expect) <= {key for key, _ in checked}, (expect, [key for key, _ in checked])
    for key, value in checked:
        if key.startswith("customer:"):
            decode_cache_customer(value)
        else:
            decode_cache_accesskey(value)
        assert 0 < int(go.redis.ttl(key)) <= 86400, key
    return len(checked)


def lookup(client: RawClient, token: str) -> list[GoAccesskey]:
    """The auth lookup's keys, each read by the Go reader."""
    return decode_accesskey_list(ok(decode_reply(lookup_raw(client, token))))


def lookup_raw(client: RawClient, token: str) -> bytes:
    """The auth lookup byte for byte as api-manager sends it (docs/profiles.md#requests: sorted
    map keys); the raw reply."""
    body = (
        b'{"uri":"' + LOOKUP_URI.encode() + b'","method":"GET","publisher":"api-manager",'
        b'"data_type":"application/json","data":{"deleted":false,"token_hash":"'
        + sha256_hex(token).encode()
        + b'"}}'
    )
    return client.send_raw(body)


def usable(key: GoAccesskey) -> bool:
    """api-manager's checks on the one row (docs/profiles.md#requests)."""
    return key.tm_delete is None and (key.tm_expire is None or key.tm_expire > datetime.now(UTC))


# -- reads ------------------------------------------------------------------------------------


def test_reads_go_written_rows_as_go_would_print_them(
    go_current: GoCurrent, world: World, ours: Daemon, raw_client: RawClient
) -> None:
    """GET of every Go-written row answers the bytes the newest Go would (its JSON of its
    DB re-read), deleted and unverified rows included; lists filter on ``tm_delete IS NULL``."""
    for customer_id in (world.alice, world.gone, world.signup):
        data = ok(rpc(raw_client, "GET", f"/v1/customers/{customer_id}"))
        expected = go_current.customer(customer_id)
        assert expected is not None
        assert decode_customer(data) == expected
        assert data == customer_json(expected)
    assert decode_customer(ok(rpc(raw_client, "GET", f"/v1/customers/{world.gone}"))).deleted
    signup = decode_customer(ok(rpc(raw_client, "GET", f"/v1/customers/{world.signup}")))
    assert (signup.status, signup.email_verified) == ("initial", False)

    for key_id, _ in (world.alice_key, world.forever_key, world.dead_key, world.gone_key):
        data = ok(rpc(raw_client, "GET", f"/v1/accesskeys/{key_id}"))
        expected_key = go_current.accesskey(key_id)
        assert expected_key is not None
        assert data == accesskey_json(dataclasses.replace(expected_key, token_hash=""))
    forever = ok(rpc(raw_client, "GET", f"/v1/accesskeys/{world.forever_key[0]}"))
    assert b'"tm_expire":null' in forever  # a NULL tm_expire

    live = ok(rpc(raw_client, "GET", "/v1/customers?page_size=100", {"deleted": False}))
    assert {c.id for c in decode_customer_list(live)} == {world.alice, world.signup}
    gone = ok(rpc(raw_client, "GET", "/v1/customers?page_size=100", {"deleted": True}))
    assert [c.id for c in decode_customer_list(gone)] == [world.gone]
    keys = ok(
        rpc(
            raw_client,
            "GET",
            "/v1/accesskeys?page_token=&page_size=100",
            {"customer_id": str(world.alice), "deleted": False},
        )
    )
    listed = decode_accesskey_list(keys)
    assert {k.id for k in listed} == {world.alice_key[0], world.forever_key[0]}
    missing = rpc(raw_client, "GET", f"/v1/customers/{uuid.uuid4()}")  # typed data must decode
    assert missing.status_code in (400, 404)
    assert check_cache(go_current, f"customer:{world.alice}") >= 1


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is Asia/Seoul (UTC+9) during the test."""
    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    "params",
    ["parseTime=true&loc=Local", "parseTime=false&loc=UTC&tls=false&charset=utf8mb4"],
)
def test_dsn_parameters_do_not_change_the_output(
    params: str,
    go_current: GoCurrent,
    world: World,
    raw_client: RawClient,
    service_settings: Callable[..., Settings],
    daemons: list[Daemon],
    local_zone: None,
) -> None:
    """The production DSN's parameters are unknown (docs/profiles.md#times): ``parseTime``,
    ``loc`` and ``tls`` change no byte of what we answer or write, even with the process in a
    zone 9 hours from UTC."""
    start_current(go_current, service_settings, daemons, dsn_params=params)
    expected = go_current.customer(world.alice)
    assert expected is not None
    assert ok(rpc(raw_client, "GET", f"/v1/customers/{world.alice}")) == customer_json(expected)
    [found] = lookup(raw_client, world.alice_key[1])
    assert found.tm_expire is not None and found.tm_expire > datetime.now(UTC)
    change = {"name": "renamed", "email": "alice@example.com", "webhook_method": "POST"}
    data = ok(rpc(raw_client, "PUT", f"/v1/customers/{world.alice}", change))
    after = go_current.customer(world.alice)
    assert after is not None and data == customer_json(after)
    assert after.tm_update is not None
    assert abs(after.tm_update - datetime.now(UTC)) < timedelta(minutes=1)  # written in UTC


def test_auth_lookup_exactly_as_api_manager_sends_it(
    go_current: GoCurrent, world: World, ours: Daemon, raw_client: RawClient
) -> None:
    """The ``token_hash`` lookup finds exactly the live key, a NULL
    ``tm_expire`` is ``null`` and usable, deleted keys are absent; ``token`` still works;
    both page-token forms and ``request_id`` are accepted, garbage is a 400."""
    [found] = lookup(raw_client, world.alice_key[1])
    assert found.id == world.alice_key[0] and usable(found)
    assert found.token_prefix == world.alice_key[1][:11]
    [forever] = lookup(raw_client, world.forever_key[1])
    assert forever.tm_expire is None and usable(forever)
    assert lookup(raw_client, world.dead_key[1]) == []

    by_token = rpc(raw_client, "GET", LOOKUP_URI, {"deleted": False, "token": world.alice_key[1]})
    assert [k.id for k in decode_accesskey_list(ok(by_token))] == [world.alice_key[0]]

    soon = datetime.now(UTC) + timedelta(seconds=5)
    filters = {"deleted": False, "token_hash": sha256_hex(world.alice_key[1])}
    for token in (
        soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),  # api-manager's next_page_token formula
        soon.strftime("%Y-%m-%d %H:%M:%S.%f"),  # the legacy form
    ):
        uri = f"/v1/accesskeys?page_token={quote(token, safe='')}&page_size=10"
        assert [k.id for k in decode_accesskey_list(ok(rpc(raw_client, "GET", uri, filters)))] == [
            world.alice_key[0]
        ]
    past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    uri = f"/v1/accesskeys?page_token={quote(past, safe='')}&page_size=10"
    assert decode_accesskey_list(ok(rpc(raw_client, "GET", uri, filters))) == []
    bad = rpc(raw_client, "GET", "/v1/accesskeys?page_token=yesterday&page_size=10", filters)
    assert bad.status_code == 400

    traced = rpc(raw_client, "GET", f"/v1/customers/{world.alice}", request_id="req-1")
    assert decode_customer(ok(traced)).id == world.alice  # request_id accepted and ignored


# -- writes ---------------------------------------------------------------------------------


def test_updates_go_written_rows(
    go_current: GoCurrent,
    world: World,
    ours: Daemon,
    raw_client: RawClient,
    raw_events: RawEventTap,
) -> None:
    """R9, metadata and R4 on Go's rows: each reply is Go's JSON of the re-read row, the row
    keeps what the update does not name, the events and cache entries read as Go's."""
    before = go_current.customer(world.alice)
    assert before is not None
    change = {
        "name": "Alice B",
        "detail": "updated by python",
        "email": "alice@example.com",
        "phone_number": "+821100000002",
        "address": "elsewhere",
        "webhook_method": "PUT",
        "webhook_uri": "https://example.com/new",
    }
    data = ok(rpc(raw_client, "PUT", f"/v1/customers/{world.alice}", change))
    after = go_current.customer(world.alice)
    assert after is not None and data == customer_json(after)
    assert (after.name, after.address, after.webhook_method) == ("Alice B", "elsewhere", "PUT")
    assert after.tm_update is not None and after.tm_delete is None
    same = ("status", "email_verified", "webhook_secret", "metadata", "tm_create")
    same += ("identity_verification_status", "billing_account_id", "tm_deletion_scheduled")
    assert {f: getattr(after, f) for f in same} == {f: getattr(before, f) for f in same}

    meta = rpc(
        raw_client,
        "PUT",
        f"/v1/customers/{world.alice}/metadata",
        {"metadata": {"rtp_debug": True}},
    )
    assert decode_customer(ok(meta)).metadata == {"rtp_debug": True}
    [(stored,)] = go_current.sql(
        "SELECT JSON_EXTRACT(metadata, '$.rtp_debug') FROM customer_customers WHERE id = %s",
        (world.alice.bytes,),
    )
    assert str(stored) == "true"  # JSON in the column, read back by Go's rules
    reread = go_current.customer(world.alice)
    assert reread is not None and reread.metadata == {"rtp_debug": True}

    key_id = world.alice_key[0]
    renamed = ok(
        rpc(raw_client, "PUT", f"/v1/accesskeys/{key_id}", {"name": "renamed", "detail": "d"})
    )
    key_after = go_current.accesskey(key_id)
    assert key_after is not None and key_after.name == "renamed"
    assert renamed == accesskey_json(dataclasses.replace(key_after, token_hash=""))
    assert key_after.token_hash == sha256_hex(world.alice_key[1])  # untouched
    [still] = lookup(raw_client, world.alice_key[1])
    assert still.name == "renamed"

    seen = events(raw_events, 3)
    assert [e.type for e in seen] == ["customer_updated", "customer_updated", "accesskey_updated"]
    assert [e.record.id for e in seen] == [world.alice, world.alice, key_id]
    check_cache(go_current, f"customer:{world.alice}", f"customer_accesskey:{key_id}")


def test_deletes_go_written_rows(
    go_current: GoCurrent,
    world: World,
    ours: Daemon,
    raw_client: RawClient,
    raw_events: RawEventTap,
) -> None:
    """R5 and R10 on Go's rows: soft deletes as Go's (status with tm_delete), after which
    both our lookup and a newest Go replica's SQL lookup reject the key."""
    key_id, token = world.forever_key
    deleted_key = decode_accesskey(ok(rpc(raw_client, "DELETE", f"/v1/accesskeys/{key_id}")))
    assert deleted_key.tm_delete is not None
    row = go_current.accesskey(key_id)
    assert row is not None and row.tm_delete is not None and row.tm_update is not None
    assert lookup(raw_client, token) == []
    assert go_current.accesskeys_by_token_hash(sha256_hex(token)) == []

    gone = decode_customer(ok(rpc(raw_client, "DELETE", f"/v1/customers/{world.alice}")))
    assert gone.deleted and gone.status == "deleted"
    go_view = go_current.customer(world.alice)  # Go's CustomerGet of our delete
    assert go_view is not None and go_view.tm_delete is not None and go_view.status == "deleted"
    assert go_view.tm_update is not None

    seen = events(raw_events, 2)
    assert seen[0].type == "accesskey_deleted" and seen[0].record.id == key_id
    assert "customer_deleted" in [e.type for e in seen]
    for event in seen:
        if event.type == "accesskey_deleted":
            assert isinstance(event.record, GoAccesskey) and event.record.tm_delete is not None
    check_cache(go_current, f"customer:{world.alice}", f"customer_accesskey:{key_id}")


def test_created_by_us_is_read_by_go_and_survives_its_cleanup(
    go_current: GoCurrent,
    world: World,
    ours: Daemon,
    raw_client: RawClient,
    raw_events: RawEventTap,
) -> None:
    """R7 and R2 in ``current``: replies are Go's JSON of Go's read of
    the row; all columns written explicitly; Go's ``cleanup_unverified`` passes our customer
    by and expires Go's stale sign-up; a newest Go replica authenticates our key."""
    body = {
        "name": "Carol",
        "detail": "made by python",
        "email": "carol@example.com",
        "phone_number": "+821100000003",
        "address": "here",
        "webhook_method": "POST",
        "webhook_uri": "https://example.com/carol",
    }
    data = ok(rpc(raw_client, "POST", "/v1/customers", body))
    carol = decode_customer(data)
    assert (carol.email_verified, carol.status, carol.identity_verification_status) == (
        True,
        "active",
        "none",
    )
    assert carol.metadata == {"rtp_debug": False} and carol.webhook_secret
    assert (carol.tm_update, carol.tm_delete, carol.tm_deletion_scheduled) == (None, None, None)
    go_view = go_current.customer(carol.id)
    assert go_view == carol and data == customer_json(go_view)
    [raw] = go_current.sql(
        "SELECT email_verified, JSON_VALID(metadata), tm_update IS NULL, tm_delete IS NULL,"
        " tm_deletion_scheduled IS NULL FROM customer_customers WHERE id = %s",
        (carol.id.bytes,),
    )
    assert tuple(int(v) for v in raw) == (1, 1, 1, 1, 1)

    # Go's cleanup_unverified, run two hours from now: ours stays, Go's stale sign-up goes
    assert carol.id not in [
        c.id for c in go_current.unverified_to_expire(go_now() + timedelta(hours=2))
    ]
    assert go_current.cleanup_unverified(go_now()) == [world.signup]
    kept = go_current.customer(carol.id)
    assert kept is not None and not kept.deleted and kept.status == "active"

    made = ok(
        rpc(
            raw_client,
            "POST",
            "/v1/accesskeys",
            {"customer_id": str(carol.id), "name": "ci", "expire": 86400},
        )
    )
    key = decode_accesskey(made, raw_token="required")
    stored = go_current.accesskey(key.id)
    assert stored is not None and stored.token_hash == sha256_hex(key.raw_token)
    assert stored.token_prefix == key.raw_token[:11] and stored.tm_update is None
    assert made == accesskey_json(
        dataclasses.replace(stored, token_hash="", raw_token=key.raw_token)
    )
    assert [k.id for k in go_current.accesskeys_by_token_hash(sha256_hex(key.raw_token))] == [
        key.id
    ]
    [found] = lookup(raw_client, key.raw_token)
    assert found.id == key.id and usable(found)
    assert key.tm_expire is not None and key.tm_create is not None
    assert timedelta(seconds=86399) < key.tm_expire - key.tm_create <= timedelta(seconds=86400)

    seen = events(raw_events, 2)
    created = [e for e in seen if e.type == "customer_created"]
    assert len(created) == 1 and created[0].headless is False and created[0].record == carol
    [key_event] = [e for e in seen if e.type == "accesskey_created"]
    assert key_event.record.id == key.id  # decode_event already refused a raw_token
    # docs/profiles.md#json: the same bytes as the reply (customer_created + headless; no raw_token)
    assert event_data(raw_events, "customer_created") == [data[:-1] + b',"headless":false}']
    assert event_data(raw_events, "accesskey_created") == [
        accesskey_json(dataclasses.replace(stored, token_hash=""))
    ]
    check_cache(go_current, f"customer:{carol.id}", f"customer_accesskey:{key.id}")


# -- the lifecycle routes on Go's rows -----------------------------------------------------------


def agent_manager(request: dict[str, Any]) -> dict[str, Any]:
    if request["uri"] == "/v1/password-forgot":
        return {"status_code": 200, "data_type": ""}
    return {"status_code": 200, "data_type": "application/json", "data": []}


def email_ok(_request: dict[str, Any]) -> dict[str, Any]:
    return {"status_code": 200, "data_type": "application/json", "data": {"id": "e"}}


def same_as_go(go: GoCustomer | None, ours: GoCustomer) -> None:
    """Our record is Go's read of the row (times included)."""
    assert go is not None and go == ours


def test_lifecycle_routes_on_go_rows_read_as_go(
    go_current: GoCurrent,
    world: World,
    ours: Daemon,
    raw_client: RawClient,
    raw_events: RawEventTap,
    amqp_url: str,
) -> None:
    """signup, email_verify, billing account, freeze, recover, freeze_and_delete, the two
    cleanups and the identity verification, on rows the newest Go wrote: every reply and event
    reads as Go reads it and matches Go's SQL read of the row; freeze, recover and
    freeze_and_delete refuse with bare codes (docs/profiles.md#errors); unset times are NULL."""
    with (
        Peer(amqp_url, AGENT_QUEUE, agent_manager),
        Peer(amqp_url, EMAIL_QUEUE, email_ok),
        Peer(amqp_url, WEBHOOK_QUEUE, lambda r: None) as hooks,
    ):
        body = {"email": "dana@example.com", "name": "Dana", "client_ip": "203.0.113.7"}
        signed_up, key = decode_signup(ok(rpc(raw_client, "POST", "/v1/customers/signup", body)))
        assert (signed_up.status, signed_up.email_verified) == ("initial", False)
        same_as_go(go_current.customer(signed_up.id), signed_up)
        stored_key = go_current.accesskey(key.id)
        assert stored_key is not None and stored_key.token_hash == sha256_hex(key.raw_token)
        [token_key] = [k.decode() for k in go_current.redis.keys("email_verify:*")]
        token = token_key.removeprefix("email_verify:")
        verify = ok(rpc(raw_client, "POST", "/v1/customers/email_verify", {"token": token}))
        verified = decode_email_verify(verify)
        assert (verified.status, verified.email_verified) == ("active", True)
        same_as_go(go_current.customer(signed_up.id), verified)

        billing = uuid.uuid4()
        uri = f"/v1/customers/{world.alice}/billing_account_id"
        with_billing = decode_customer(
            ok(rpc(raw_client, "PUT", uri, {"billing_account_id": str(billing)}))
        )
        assert with_billing.billing_account_id == billing
        same_as_go(go_current.customer(world.alice), with_billing)

        frozen = decode_customer(ok(rpc(raw_client, "POST", f"/v1/customers/{world.alice}/freeze")))
        assert frozen.status == "frozen" and frozen.tm_deletion_scheduled is not None
        same_as_go(go_current.customer(world.alice), frozen)
        back = decode_customer(ok(rpc(raw_client, "POST", f"/v1/customers/{world.alice}/recover")))
        assert back.status == "active" and back.tm_deletion_scheduled is None
        [(scheduled_null,)] = go_current.sql(
            "SELECT tm_deletion_scheduled IS NULL FROM customer_customers WHERE id = %s",
            (world.alice.bytes,),
        )
        assert scheduled_null == 1  # recover writes NULL, never the sentinel
        same_as_go(go_current.customer(world.alice), back)

        for uri, status in (
            (f"/v1/customers/{uuid.uuid4()}/freeze", 404),
            (f"/v1/customers/{world.gone}/freeze", 400),
            (f"/v1/customers/{world.alice}/recover", 400),
            (f"/v1/customers/{world.gone}/freeze_and_delete", 400),
        ):
            refused = rpc(raw_client, "POST", uri)
            assert (refused.status_code, refused.data_type, refused.data) == (status, "", None)

        uri = f"/v1/customers/{signed_up.id}/freeze_and_delete"
        erased = decode_customer(ok(rpc(raw_client, "POST", uri)))
        assert erased.status == "deleted" and erased.deleted
        same_as_go(go_current.customer(signed_up.id), erased)
        dropped = go_current.accesskey(key.id)
        assert dropped is not None and dropped.tm_delete is not None

        expired = ok(rpc(raw_client, "POST", "/v1/customers/cleanup_unverified"))
        assert expired == b'{"expired":1}'  # Go's stale sign-up, by our sweep
        swept = go_current.customer(world.signup)
        assert swept is not None and (swept.status, swept.deleted) == ("expired", True)
        processed = ok(rpc(raw_client, "POST", "/v1/customers/cleanup_frozen_expired"))
        assert processed == b'{"processed":0}'

    marked = ctl(
        go_current,
        "customer",
        "set-identity-verification",
        "--id",
        str(world.alice),
        "--status",
        "verified",
    )
    assert marked.exit_code == 0, marked.output
    identity = go_current.customer(world.alice)
    assert identity is not None and identity.identity_verification_status == "verified"

    until(
        lambda: any(b"customer_identity_verification_updated" in b for b in raw_events.bodies),
        10,
        idle=raw_events.pump,
    )
    seen = events(raw_events, 1)
    kinds = {e.type for e in seen}
    expected = {"customer_created", "accesskey_created", "customer_updated", "customer_frozen"}
    expected |= {"customer_recovered", "customer_deleted", "accesskey_deleted"}
    expected.add("customer_identity_verification_updated")
    assert expected <= kinds, kinds
    assert [e.headless for e in seen if e.type == "customer_created"] == [True]  # signup
    assert hooks.requests, "no webhook for alice (she has a webhook_uri)"
    for hook in hooks.requests:  # the public records (docs/profiles.md#webhooks)
        message = hook["data"]["data"]
        if message["type"].startswith("accesskey_"):
            decode_webhook_accesskey(message["data"])
        else:
            decode_webhook_customer(message["data"])
    check_cache(go_current, f"customer:{world.alice}", f"customer:{signed_up.id}")


# -- a newest Go replica on the same queue and database ---------------------------------------


def test_a_newest_go_replica_and_ours_answer_logins_alike(
    go_current: GoCurrent,
    world: World,
    ours: Daemon,
    raw_client: RawClient,
    amqp_url: str,
) -> None:
    """During a rolling switch-over a newest Go replica and ours consume the same request
    queue: a key made by either side logs in whichever replica answers, and both answer the
    auth lookup with the same bytes (docs/profiles.md#switching-from-todays-go-service)."""
    made = our_router(ours, "POST", "/v1/accesskeys", {"customer_id": str(world.alice)})
    ours_key = decode_accesskey(made, raw_token="required")
    replica = GoCurrentReplica(amqp_url, go_current)
    replica.start()
    try:
        assert replica.ready.wait(10)
        go_key = go_current.insert_accesskey(world.alice, name="made by go during the switch")
        for key_id, token in (world.alice_key, go_key, (ours_key.id, ours_key.raw_token)):
            replies = {bytes(ok(decode_reply(lookup_raw(raw_client, token)))) for _ in range(6)}
            assert len(replies) == 1, replies  # Go's answer and ours, byte for byte
            [found] = decode_accesskey_list(replies.pop())
            assert found.id == key_id and usable(found)
        assert lookup(raw_client, world.dead_key[1]) == []
    finally:
        replica.stop()
    assert replica.answered >= 3  # Go answered some; ours the rest (prefetch 1 vs 32)
    assert replica.answered < 19


def test_a_key_go_deletes_during_the_switch_stops_logging_in_with_us(
    go_current: GoCurrent, world: World, ours: Daemon, raw_client: RawClient
) -> None:
    """Our lookup warms whatever cache it keeps for a token; a newest Go replica then deletes
    the key its way (the row, then its ``customer_accesskey:<id>`` entry): our next lookup
    must not find it (Go never touches any other cache key)."""
    key_id, token = world.alice_key
    for _ in range(3):
        assert [k.id for k in lookup(raw_client, token)] == [key_id]
    go_current.delete_accesskey(key_id)
    assert lookup(raw_client, token) == []


# -- the cache shared with Go (docs/profiles.md#redis) ---------------------------------------------


def test_go_cache_entries_are_hits_and_seed_entries_misses(
    go_current: GoCurrent, world: World, ours: Daemon, raw_client: RawClient
) -> None:
    """An entry the newest Go wrote is served; a seed-format one is a miss."""
    go_current.cache_customer(world.alice)  # Go's write path, after our start flushed Redis
    go_current.sql(
        "UPDATE customer_customers SET name = 'changed behind the cache' WHERE id = %s",
        (world.alice.bytes,),
    )
    hit = decode_customer(ok(rpc(raw_client, "GET", f"/v1/customers/{world.alice}")))
    assert hit.name == "Alice"  # from Go's entry

    seedish = customer_json(dataclasses.replace(hit, name="stale seed entry"))
    seedish = seedish.replace(b'"tm_update":null', b'"tm_update":"9999-01-01 00:00:00.000000"')
    go_current.redis.set(f"customer:{world.alice}", seedish, ex=86400)
    assert go_cache_read(seedish, "customer") is None  # Go would miss too
    missed = decode_customer(ok(rpc(raw_client, "GET", f"/v1/customers/{world.alice}")))
    assert missed.name == "changed behind the cache"  # read from the database
    wait_until(
        lambda: (
            go_cache_read(go_current.redis.get(f"customer:{world.alice}"), "customer") is not None
        ),
        10,
        "the seed-format entry to be replaced by one Go can read",
    )

    go_current.cache_accesskey(world.alice_key[0])
    go_current.sql(
        "UPDATE customer_accesskeys SET name = 'changed' WHERE id = %s", (world.alice_key[0].bytes,)
    )
    key = decode_accesskey(ok(rpc(raw_client, "GET", f"/v1/accesskeys/{world.alice_key[0]}")))
    assert key.name == "live"  # Go's entry (which has no token_hash) served


# -- startup on a current database (docs/profiles.md#schema) ---------------------------------------

_WRITE = re.compile(
    r"^\s*(?P<verb>UPDATE|INSERT(?:\s+IGNORE)?\s+INTO|REPLACE\s+INTO|DELETE\s+FROM|"
    r"ALTER\s+TABLE|DROP\s+(?:TABLE|INDEX\s+\S+\s+ON)|TRUNCATE(?:\s+TABLE)?|RENAME\s+TABLE|"
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+\S+\s+ON|CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?)"
    r"\s+`?(?P<table>\w+)`?",
    re.IGNORECASE,
)


class StatementLog:
    """MariaDB's general log (to its table) while the block runs: every statement any
    connection to ``database`` sent, minus the connections named in ``skip``."""

    def __init__(self, database: str, skip: set[int]) -> None:
        import mysql.connector

        self.database, self.skip = database, skip
        self.conn = mysql.connector.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root")
        self.conn.autocommit = True
        self.saved: tuple[Any, ...] = ()
        self.statements: list[str] = []

    def _run(self, sql: str) -> list[tuple[Any, ...]]:
        cursor = self.conn.cursor()
        cursor.execute(sql)
        rows = list(cursor.fetchall()) if cursor.description else []
        cursor.close()
        return rows

    def __enter__(self) -> StatementLog:
        [self.saved] = self._run("SELECT @@global.general_log, @@global.log_output")
        self._run("SET GLOBAL general_log = 0")
        self._run("SET GLOBAL log_output = 'TABLE'")
        self._run("TRUNCATE TABLE mysql.general_log")
        self._run("SET GLOBAL general_log = 1")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._run("SET GLOBAL general_log = 0")
            rows = self._run(
                "SELECT thread_id, command_type, argument FROM mysql.general_log"
                " ORDER BY event_time"
            )
            self.statements = self._ours(rows)
        finally:
            self._run(f"SET GLOBAL log_output = '{self.saved[1]}'")
            self._run(f"SET GLOBAL general_log = {int(self.saved[0])}")
            self.conn.close()

    def _ours(self, rows: list[tuple[Any, ...]]) -> list[str]:
        threads: set[int] = set()
        out = []
        for thread, command, argument in rows:
            text = (
                argument
                if isinstance(argument, str)
                else bytes(argument).decode("utf-8", "replace")
            )
            if (command == "Connect" and f" on {self.database} " in f"{text} ") or (
                command == "Init DB" and text.strip() == self.database
            ):
                threads.add(int(thread))
            elif int(thread) in threads - self.skip and command in ("Query", "Execute"):
                out.append(text)
        return out


def upstream_state(go: GoCurrent) -> dict[str, Any]:
    """The upstream tables as Go sees them: column definitions, indexes and every row."""
    state: dict[str, Any] = {}
    for table, names in (
        ("customer_customers", UPSTREAM_CUSTOMER_COLUMNS),
        ("customer_accesskeys", UPSTREAM_ACCESSKEY_COLUMNS),
    ):
        state[f"{table}.columns"] = go.sql(
            "SELECT column_name, ordinal_position, column_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = DATABASE()"
            " AND table_name = %s AND column_name IN (" + ", ".join(["%s"] * len(names)) + ")"
            " ORDER BY ordinal_position",
            (table, *names),
        )
        state[f"{table}.rows"] = go.sql(f"SELECT {', '.join(names)} FROM {table} ORDER BY id")
        state[f"{table}.indexes"] = go.sql(
            "SELECT index_name, column_name, non_unique FROM information_schema.statistics"
            " WHERE table_schema = DATABASE() AND table_name = %s AND index_name IN ("
            + ", ".join(["%s"] * len(UPSTREAM_INDEXES[table]))
            + ") ORDER BY index_name, seq_in_index",
            (table, *sorted(UPSTREAM_INDEXES[table])),
        )
    return state


def additive(statement: str) -> bool:
    """The additive objects (docs/profiles.md#schema) on an upstream table: the ``email_active``
    column with ``tm_delete IS NULL`` semantics, its UNIQUE index, a UNIQUE ``token_hash`` index."""
    flat = " ".join(statement.split()).lower()
    if flat.startswith("create table if not exists"):
        return True  # a no-op on an existing table (checked by the state comparison)
    adds_column = "add column" in flat or re.search(r"\badd\s+`?email_active", flat)
    if "email_active" in flat and adds_column:
        return "tm_delete is null" in flat and "drop" not in flat and "modify" not in flat
    if "unique" in flat and ("email_active" in flat or "token_hash" in flat):
        return not any(w in flat for w in ("drop", "modify", "change column", "rename"))
    return False


@pytest.mark.parametrize("orphan", [False, True], ids=["", "orphan key"])
def test_startup_on_a_current_database_changes_nothing_go_reads(
    orphan: bool,
    go_current: GoCurrent,
    world: World,
    service_settings: Callable[..., Settings],
    daemons: list[Daemon],
    raw_client: RawClient,
) -> None:
    """docs/profiles.md#schema: ``db migrate`` and daemon start in ``current`` send no UPDATE,
    DELETE, INSERT or destructive DDL to the upstream tables, only the additive objects; afterwards
    every upstream column, index and row is exactly as Go left it, and the active-email index has
    ``tm_delete IS NULL`` semantics. ``orphan``: as the newest Go leaves it, a deleted customer
    still has a live key at our start (Go's delete never touches keys)."""
    if orphan:
        delete_gone(go_current, world)
    before = upstream_state(go_current)
    [(stand_in,)] = go_current.sql("SELECT CONNECTION_ID()")
    database = go_current.dsn.rsplit("/", 1)[1]
    report: list[str] = []
    with StatementLog(database, skip={int(stand_in)}) as log:
        start_current(go_current, service_settings, daemons, report)
        ok(rpc(raw_client, "GET", f"/v1/customers/{world.alice}"))  # serving
        raw_client.pump(1.0)  # the relay's first rounds
    assert log.statements, "the general log saw nothing: the observation is broken"
    touching = []
    for statement in log.statements:
        match = _WRITE.match(statement)
        if match and match["table"].lower() in UPSTREAM_TABLES and not additive(statement):
            touching.append(statement)
    assert touching == [], "statements changing what Go reads:\n" + "\n".join(touching)
    assert upstream_state(go_current) == before
    if orphan:  # left as Go left them, and said so (an operator's `customer delete` revokes)
        assert str(world.gone) in report[0]
        assert [k.id for k in go_current.accesskeys_by_token_hash(sha256_hex(world.gone_key[1]))]
    else:
        delete_gone(go_current, world)

    # email_active: NULL-is-active semantics (docs/profiles.md#schema): a second live alice
    # is refused, a reused address of a deleted customer is not
    import mysql.connector

    with pytest.raises(mysql.connector.IntegrityError):
        go_current.insert_customer("ALICE@example.com")
    go_current.insert_customer("gone@example.com")


def test_preflight_refuses_duplicate_active_emails_and_changes_nothing(
    go_current: GoCurrent,
) -> None:
    """docs/profiles.md#schema: two live customers with one email (Go's racy INSERT allows it) block
    the migration; it names them and changes nothing."""
    first = go_current.insert_customer("dup@example.com")
    second = go_current.insert_customer("DUP@example.com")
    go_current.insert_customer("dup@example.com", status="deleted", tm_delete=go_now())
    before = upstream_state(go_current)
    tables_before = go_current.sql("SHOW TABLES")
    result = ctl(go_current, "db", "migrate")
    assert result.exit_code != 0
    assert str(first) in result.output and str(second) in result.output
    assert upstream_state(go_current) == before
    assert go_current.sql("SHOW TABLES") == tables_before


@pytest.fixture(autouse=True)
def _redis_flushed(redis_db: redis.Redis) -> None:
    """Every test here starts on an empty Redis DB 15 (``redis_db`` flushes it)."""
