"""Running the daemon in-process for full-service tests."""

from __future__ import annotations

import time
from typing import Any

from customer_manager.config import Settings
from customer_manager.main import Daemon

REDIS_DB = 15


def start_daemon(settings: Settings, **options: Any) -> Daemon:
    daemon = Daemon(settings, **options)
    daemon.health.start()
    deadline = time.monotonic() + 15
    while not daemon.consumer.proxy().ready().get(timeout=5):
        assert time.monotonic() < deadline, "the daemon did not connect"
        time.sleep(0.05)
    return daemon
