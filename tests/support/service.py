"""Plugin: the daemon in-process on the real servers; ``service_settings`` and ``daemons``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from customer_manager.config import Settings
from customer_manager.main import Daemon
from tests.support.servers import REDIS_DB
from tests.support.waiting import wait_until


def start_daemon(settings: Settings, **options: Any) -> Daemon:
    """A daemon with its health server up, once its consumer is connected; ``options`` go to
    ``Daemon`` (a storage factory, publisher options)."""
    daemon = Daemon(settings, **options)
    daemon.health.start()
    consumer = daemon.consumer.proxy()
    wait_until(lambda: consumer.ready().get(timeout=5), 15, "the daemon to connect")
    return daemon


@pytest.fixture
def service_settings(
    amqp_url: str, service_dsn: str, redis_db: redis.Redis, redis_address: str, wire_profile: str
) -> Callable[..., Settings]:
    """Settings for a daemon on the real servers; keyword arguments override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "rabbitmq_address": amqp_url,
            "database_dsn": service_dsn,
            "wire_profile": wire_profile,
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
