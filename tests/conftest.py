"""Shared fixtures: real servers for contract and integration tests, and outside commands.

Without a server (or a command) a test skips with the reason; with ``CI=true`` it fails
instead, because CI must run every test (``.ci/run`` starts the servers and installs the
commands).

The library tricks are installed at start, as the daemon's main does (``tricks.install()``).
The MySQL driver's C extension is loaded only when pytest runs through ``make test``
(``python -m customer_manager.launch pytest``): pytest imports hashlib before any conftest. The
header names the driver; under ``CI=true`` the pure-Python driver is an error.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
from collections.abc import Iterator

import pykka
import pytest

from customer_manager import tricks
from customer_manager.tricks import mysql_cext

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
AMQP_HOST, AMQP_PORT = "127.0.0.1", 5672


def pytest_configure(config: pytest.Config) -> None:
    tricks.install()


def pytest_report_header(config: pytest.Config) -> str:
    return f"customer-manager: MySQL driver {mysql_cext.driver()}"


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and not mysql_cext.loaded():
        got = mysql_cext.driver()
        raise pytest.UsageError(f"CI runs MySQL on the C extension (make test), got {got}")


@pytest.fixture
def tricks_off() -> Iterator[None]:
    """The library tricks turned off for one test (the public-API paths), on again after."""
    for trick in tricks.TRICKS:
        tricks.switches(trick)[1]()
    yield
    tricks.install()


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_server(name: str, host: str, port: int) -> None:
    """Skip (or, in CI, fail) unless ``host:port`` accepts connections."""
    if _reachable(host, port):
        return
    reason = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{reason}, and CI=true forbids skipping integration tests")
    pytest.skip(reason)


def need_command(name: str, where: str) -> str:
    """The path of command ``name``; skip (or, in CI, fail) without it. ``where``: how to get it."""
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} is not installed ({where})"
    if IN_CI:
        pytest.fail(f"{reason}, and CI=true forbids skipping")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus's rule checker (Debian: ``apt-get install prometheus``)."""
    return need_command("promtool", "Debian's prometheus package ships it; .ci/run installs it")


@contextlib.contextmanager
def _database(name: str) -> Iterator[str]:
    """Create database ``name``, yield its go-sql-driver DSN, drop it afterwards."""
    import mysql.connector

    conn = mysql.connector.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="")
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    try:
        yield f"root:@tcp({MYSQL_HOST}:{MYSQL_PORT})/{name}"
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.close()


@pytest.fixture(scope="session")
def mysql_dsn() -> Iterator[str]:
    """A go-sql-driver DSN for a fresh, uniquely named MySQL database, dropped afterwards."""
    need_server("MySQL", MYSQL_HOST, MYSQL_PORT)
    with _database(f"cm_test_{secrets.token_hex(4)}") as dsn:
        yield dsn


@pytest.fixture
def fresh_mysql_dsn(mysql_dsn: str) -> Iterator[str]:
    """Like ``mysql_dsn`` but a new, empty database for this one test."""
    with _database(f"{mysql_dsn.rsplit('/', 1)[1]}_{secrets.token_hex(3)}") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def redis_address() -> str:
    """``host:port`` of the local Redis (tests use their own key prefixes or DB index 15)."""
    need_server("Redis", REDIS_HOST, REDIS_PORT)
    return f"{REDIS_HOST}:{REDIS_PORT}"


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """AMQP URL of the local RabbitMQ."""
    need_server("RabbitMQ", AMQP_HOST, AMQP_PORT)
    return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/%2F"


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    """Every test ends with no actor left running."""
    yield
    pykka.ActorRegistry.stop_all(timeout=10)
