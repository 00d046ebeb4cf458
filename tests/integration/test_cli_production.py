"""customer-control with the production settings: MySQL, Redis and RabbitMQ (issue 5).

It uses the same router, pools and outbox as the daemon, so it publishes the same events.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import redis
from click.testing import CliRunner

from customer_manager.cli import main
from customer_manager.config import Settings
from tests.support.amqp import EventTap


def test_cli_publishes_events_and_fills_redis(
    service_settings: Callable[..., Settings], events: EventTap, redis_db: redis.Redis
) -> None:
    settings = service_settings()
    args = [
        "--database_dsn", settings.database_dsn,
        "--redis_address", settings.redis_address,
        "--redis_database", str(settings.redis_database),
        "--rabbitmq_address", settings.rabbitmq_address,
        "--agent_check", "off",
    ]  # fmt: skip
    made = CliRunner().invoke(main, [*args, "customer", "create", "--email", "cli@example.com"])
    assert made.exit_code == 0, made.output
    customer = json.loads(made.stdout)
    key = CliRunner().invoke(
        main, [*args, "accesskey", "create", "--customer-id", customer["id"], "--name", "k"]
    )
    assert key.exit_code == 0, key.output
    token = json.loads(key.stdout)["token"]
    got = events.wait_for(2)
    assert [e["type"] for e in got] == ["customer_created", "accesskey_created"]
    assert got[0]["data"] == customer and token not in json.dumps(got)
    cached = redis_db.get(f"customer:{customer['id']}")
    assert cached is not None and json.loads(cached) == customer
