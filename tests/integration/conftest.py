"""Fixtures for full-service tests: a migrated MySQL, Redis DB 15, the daemon in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from amqp_kit import Client, EventTap, reset_request_queue
from service_kit import REDIS_DB

from customer_manager.config import Settings
from customer_manager.main import Daemon
from customer_manager.messages.queues import EVENT_EXCHANGE
from customer_manager.storage import open_storage


@pytest.fixture(scope="session")
def migrated_dsn(mysql_dsn: str) -> str:
    storage = open_storage(Settings(database_dsn=mysql_dsn))
    storage.migrate()
    storage.close()
    return mysql_dsn


@pytest.fixture
def redis_db(redis_address: str) -> Iterator[redis.Redis]:
    host, port = redis_address.split(":")
    client = redis.Redis(host=host, port=int(port), db=REDIS_DB)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def service_settings(
    amqp_url: str, migrated_dsn: str, redis_db: redis.Redis, redis_address: str
) -> Callable[..., Settings]:
    """Settings for a daemon on the real servers; keyword arguments override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "rabbitmq_address": amqp_url,
            "database_dsn": migrated_dsn,
            "redis_address": redis_address,
            "redis_database": REDIS_DB,
            "prometheus_listen_address": "127.0.0.1:0",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons started by a test; all drained and stopped at the end."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.drain_and_stop(10)


@pytest.fixture
def client(amqp_url: str) -> Iterator[Client]:
    reset_request_queue(amqp_url)
    c = Client(amqp_url)
    yield c
    c.close()


@pytest.fixture
def events(amqp_url: str) -> Iterator[EventTap]:
    tap = EventTap(amqp_url, EVENT_EXCHANGE)
    yield tap
    tap.close()
