"""Fault-test fixtures: the integration kit (amqp_kit and the integration fixtures) reused,
plus ``report`` (figures printed to the terminal even without ``-s``, and recorded as
properties in the JUnit report) and a freshly migrated MySQL database per test."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

INTEGRATION = Path(__file__).resolve().parent.parent / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))  # amqp_kit


def _load(name: str, path: Path) -> Any:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# The integration fixtures, under a unique module name (two files are called conftest.py).
_integration = _load("integration_fixtures", INTEGRATION / "conftest.py")
migrated_dsn = _integration.migrated_dsn
redis_db = _integration.redis_db
service_settings = _integration.service_settings
daemons = _integration.daemons
client = _integration.client
events = _integration.events


@pytest.fixture
def report(
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., None]:
    """``report(key=value, ...)``: one line of figures on the terminal and in the JUnit XML."""

    def emit(**figures: object) -> None:
        for key, value in figures.items():
            record_property(key, value)
        text = " ".join(f"{k}={v}" for k, v in figures.items())
        with capsys.disabled():
            sys.stdout.write(f"\n[figures] {request.node.name}: {text}\n")
            sys.stdout.flush()

    return emit


@pytest.fixture
def fresh_migrated_dsn(fresh_mysql_dsn: str) -> Iterator[str]:
    """A new, empty, migrated MySQL database for this test only (its own outbox)."""
    from customer_manager.config import Settings
    from customer_manager.storage import open_storage

    storage = open_storage(Settings(database_dsn=fresh_mysql_dsn))
    storage.migrate()
    storage.close()
    yield fresh_mysql_dsn
