"""Plugin: the shared servers (MySQL, Redis, RabbitMQ on 127.0.0.1) and outside commands
as fixtures.

Without a server (or a command) a test skips with the reason; with ``CI=true`` it fails
instead, because CI must run every test (``.ci/run`` starts the servers and installs the
commands).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
from collections.abc import Iterator
from typing import Any, Literal

import pytest
import redis

from tests.support import IN_CI

MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
AMQP_HOST, AMQP_PORT = "127.0.0.1", 5672
REDIS_DB = 15
"""The Redis database of the full-service tests (flushed before each)."""


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


def mysql_connect(dsn: str) -> Any:
    """A mysql-connector connection to the database of a go-sql-driver ``dsn``."""
    import mysql.connector

    from customer_manager.config import parse_dsn

    p = parse_dsn(dsn)
    return mysql.connector.connect(
        host=p.host, port=p.port, user=p.user, password=p.password, database=p.database
    )


@contextlib.contextmanager
def database(name: str) -> Iterator[str]:
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


def migrate(dsn: str, profile: Literal["seed", "current"] = "seed") -> str:
    """Create the service's tables (for the wire ``profile``) in the database of ``dsn``;
    return ``dsn``."""
    from customer_manager.config import Settings
    from customer_manager.storage import open_storage

    storage = open_storage(Settings(database_dsn=dsn, wire_profile=profile))
    storage.migrate()
    storage.close()
    return dsn


@pytest.fixture(scope="session")
def mysql_dsn() -> Iterator[str]:
    """A go-sql-driver DSN for a fresh, uniquely named MySQL database, dropped afterwards."""
    need_server("MySQL", MYSQL_HOST, MYSQL_PORT)
    with database(f"cm_test_{secrets.token_hex(4)}") as dsn:
        yield dsn


@pytest.fixture
def fresh_mysql_dsn(mysql_dsn: str) -> Iterator[str]:
    """Like ``mysql_dsn`` but a new, empty database for this one test."""
    with database(f"{mysql_dsn.rsplit('/', 1)[1]}_{secrets.token_hex(3)}") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def migrated_dsn(mysql_dsn: str) -> str:
    """The session database with the service's tables (shared by the tests that use it)."""
    return migrate(mysql_dsn)


@pytest.fixture(scope="session")
def migrated_current_dsn() -> Iterator[str]:
    """A database with the tables of the ``current`` wire profile (docs/profiles.md)."""
    need_server("MySQL", MYSQL_HOST, MYSQL_PORT)
    with database(f"cm_test_svc_cur_{secrets.token_hex(4)}") as dsn:
        yield migrate(dsn, "current")


@pytest.fixture
def service_dsn(wire_profile: str, request: pytest.FixtureRequest) -> str:
    """The migrated session database of the test's wire profile."""
    name = "migrated_current_dsn" if wire_profile == "current" else "migrated_dsn"
    dsn: str = request.getfixturevalue(name)
    return dsn


@pytest.fixture
def fresh_migrated_dsn(fresh_mysql_dsn: str) -> str:
    """A new, empty, migrated MySQL database for this test only (its own outbox)."""
    return migrate(fresh_mysql_dsn)


@pytest.fixture(scope="session")
def redis_address() -> str:
    """``host:port`` of the local Redis (tests use their own key prefixes or DB index 15)."""
    need_server("Redis", REDIS_HOST, REDIS_PORT)
    return f"{REDIS_HOST}:{REDIS_PORT}"


@pytest.fixture
def redis_db(redis_address: str) -> Iterator[redis.Redis]:
    """A client of Redis database ``REDIS_DB``, flushed before the test."""
    host, port = redis_address.split(":")
    client = redis.Redis(host=host, port=int(port), db=REDIS_DB)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """AMQP URL of the local RabbitMQ."""
    need_server("RabbitMQ", AMQP_HOST, AMQP_PORT)
    return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/%2F"
