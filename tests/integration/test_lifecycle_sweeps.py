"""The sweeps and signup's atomicity over RabbitMQ on MySQL (docs/lifecycle.md#signup,
docs/lifecycle.md#unverified-sweep, docs/lifecycle.md#frozen-sweep):
two replicas running the same sweep at once process each customer once; the sweeps are
bounded per run; a failure between signup's two inserts leaves no row, event or email."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import mysql.connector
import pytest

from customer_manager.config import Settings, parse_dsn
from customer_manager.main import Daemon
from customer_manager.messages.codec import Profile
from customer_manager.messages.queues import AGENT_QUEUE, EMAIL_QUEUE
from customer_manager.storage import open_storage
from customer_manager.storage.mysql import MySQLStorage
from customer_manager.storage.sql import Tx
from tests.integration.test_lifecycle_service import agent_manager, email_ok
from tests.support.amqp import Client, EventTap, Peer, envelope
from tests.support.profiles import both_profiles
from tests.support.servers import migrate
from tests.support.service import start_daemon
from tests.support.storage import customer as customer_record

pytestmark = [pytest.mark.integration, both_profiles]
OLD = "2020-01-01 00:00:00.000000"


def _seed(dsn: str, profile: Profile, count: int, **fields: Any) -> set[str]:
    """``count`` customers inserted straight into MySQL, with no outbox rows."""
    storage = open_storage(Settings(database_dsn=dsn, wire_profile=profile))
    ids = set()
    for n in range(count):
        row = customer_record(f"sweep{n}-{uuid.uuid4().hex[:6]}@example.com", **fields)
        storage.customer_insert(row, lambda c: [])
        ids.add(str(row.id))
    storage.close()
    return ids


def test_two_replicas_run_one_sweep_at_once(
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    fresh_mysql_dsn: str,
    wire_profile: Profile,
) -> None:
    settings = service_settings(database_dsn=migrate(fresh_mysql_dsn, wire_profile))
    daemons.extend(start_daemon(settings) for _ in range(2))
    due = _seed(fresh_mysql_dsn, wire_profile, 500, status="frozen", tm_deletion_scheduled=OLD)
    processed, rounds = [], 0
    while rounds < 3:  # each replica gets one of two simultaneous requests
        rounds += 1
        corrs = [
            client.send(envelope("POST", "/v1/customers/cleanup_frozen_expired", {}))
            for _ in range(2)
        ]
        replies = client.wait(corrs, 60)
        assert len(replies) == 2 and all(r["status_code"] == 200 for r in replies.values())
        processed.append(sorted(r["data"]["processed"] for r in replies.values()))
    assert sum(sum(p) for p in processed) == 500  # each customer once
    assert processed[-1] == [0, 0]
    deleted = [e["data"]["id"] for e in events.wait_for(500, 30) if e["type"] == "customer_deleted"]
    assert sorted(deleted) == sorted(due)  # one event per customer, no duplicates


def test_unverified_sweep_is_bounded_per_run(
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    fresh_mysql_dsn: str,
    wire_profile: Profile,
) -> None:
    settings = service_settings(database_dsn=migrate(fresh_mysql_dsn, wire_profile))
    daemons.append(start_daemon(settings))
    due = _seed(
        fresh_mysql_dsn, wire_profile, 250, status="initial", email_verified=False, tm_create=OLD
    )
    runs = [
        client.call("POST", "/v1/customers/cleanup_unverified", {}, timeout=60)["data"]["expired"]
        for _ in range(4)
    ]
    assert runs == [100, 100, 50, 0]
    expired = {e["data"]["id"] for e in events.wait_for(250, 20) if e["type"] == "customer_deleted"}
    assert expired == due
    assert {e["data"]["status"] for e in events.events} == {"expired"}


class KeyInsertFails(MySQLStorage):
    """MySQL whose signup fails after the customer insert, before the key insert."""

    def _insert_signup_key(self, tx: Tx, key: Any, token_hash: str) -> None:
        raise RuntimeError("injected failure")


def test_signup_failure_between_the_inserts_leaves_nothing(
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    service_dsn: str,
    amqp_url: str,
) -> None:
    settings = service_settings()
    factory = lambda: KeyInsertFails(parse_dsn(service_dsn), profile=settings.wire_profile)  # noqa: E731
    daemons.append(start_daemon(settings, storage_factory=factory))
    email = f"atomic-{uuid.uuid4().hex[:8]}@test.com"
    with Peer(amqp_url, AGENT_QUEUE, agent_manager), Peer(amqp_url, EMAIL_QUEUE, email_ok) as mails:
        reply = client.call("POST", "/v1/customers/signup", {"email": email})
        assert reply["status_code"] == 500
        events.wait_for(1, 2)
        assert mails.requests == []
    assert events.events == []
    p = parse_dsn(service_dsn)
    conn = mysql.connector.connect(host=p.host, port=p.port, user=p.user, database=p.database)
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT COUNT(*) FROM customer_customers WHERE email = %s", (email,))
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT COUNT(*) FROM customer_outbox WHERE body LIKE %s", (f"%{email}%",))
        assert cursor.fetchone() == (0,)  # no event, webhook or email request waits
    finally:
        conn.close()
