"""Scenario 1: a 5 s broker outage under steady load (docs/api.md#queues-and-delivery,
docs/events.md#outbox-relay).

The daemon's two connections (consumer, publisher) go through a TcpProxy that drops them
and refuses new ones for 5 s while a client sends creates at a steady rate directly to the
broker. Nothing is re-sent by the client: every request is still answered, every customer
written exists once, and every event written to the outbox reaches the fanout exchange.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from customer_manager.config import Settings
from customer_manager.main import Daemon
from tests.support.amqp import Client, EventTap
from tests.support.faults import create_body, steady_load
from tests.support.proxy import broker_proxy
from tests.support.servers import mysql_connect
from tests.support.service import start_daemon
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

RATE, DURATION, CUT_AT, OUTAGE = 40.0, 11.0, 2.0, 5.0


def query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    conn = mysql_connect(dsn)
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        conn.close()


def test_broker_outage_5s_under_load_loses_nothing(
    client: Client,
    events: EventTap,
    daemons: list[Daemon],
    service_settings: Callable[..., Settings],
    fresh_migrated_dsn: str,
    amqp_url: str,
    report: Callable[..., None],
) -> None:
    proxy, url = broker_proxy(amqp_url)
    settings = service_settings(
        rabbitmq_address=url, database_dsn=fresh_migrated_dsn, agent_check="off"
    )
    daemon = start_daemon(settings)
    daemons.append(daemon)
    marks: dict[str, float] = {}

    def outage(elapsed: float) -> None:
        now = time.monotonic()
        if elapsed >= CUT_AT and "cut" not in marks:
            proxy.pause()
            marks["cut"] = now
        if elapsed >= CUT_AT + OUTAGE and "resume" not in marks:
            proxy.resume()
            marks["resume"] = marks["polled"] = now
        if "resume" in marks and "ready" not in marks and now - marks["polled"] > 0.05:
            marks["polled"] = now
            if daemon.consumer.proxy().ready().get(timeout=5):
                marks["ready"] = now

    try:
        corrs = steady_load(client, create_body("outage"), RATE, DURATION, outage)
        replies = client.wait(corrs, 40)
        statuses = [r["status_code"] for r in replies.values()]
        customers = query(fresh_migrated_dsn, "SELECT COUNT(*) FROM customer_customers")[0][0]
        wait_until(
            lambda: query(fresh_migrated_dsn, "SELECT COUNT(*) FROM customer_outbox")[0][0] == 0,
            30,
            "the outbox was not drained after the outage",
        )
        received = events.wait_for(customers, 20)
        created_ids = {e["data"]["id"] for e in received if e["type"] == "customer_created"}
        report(
            sent=len(corrs),
            answered=len(replies),
            ok_200=statuses.count(200),
            redelivered_409=statuses.count(409),
            outage_s=round(marks["resume"] - marks["cut"], 1),
            consumer_back_s_after_restore=round(marks.get("ready", 99) - marks["resume"], 2),
            events_written=customers,
            events_received=len(created_ids),
            event_duplicates=len(received) - len(created_ids),
            outbox_left=0,
        )
        assert daemon.consumer.proxy().ready().get(timeout=5)
        assert daemon.system.publisher.proxy().ready().get(timeout=5)
        assert proxy.cuts == 1
    finally:
        proxy.close()
    assert len(replies) == len(corrs), f"{len(corrs) - len(replies)} requests unanswered"
    # A create interrupted after its commit is redelivered and then finds its own email:
    # 409 for the retry, but the customer exists exactly once.
    assert set(statuses) <= {200, 409}, statuses
    assert customers == len(corrs)
    assert len(created_ids) == customers, "events lost"
    assert "ready" in marks, "the consumer did not reconnect before the load ended"
