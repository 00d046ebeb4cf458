"""Plugin: record builders for the storage contract tests, and the ``backend`` and
``storage`` fixtures: every contract test runs on memory, SQLite (a temp file) and MySQL (the
session database from ``mysql_dsn``, emptied before each test) on both protocols of the
driver: its C extension (only where it is loaded, i.e. under ``make test``) and pure Python."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import pytest

from customer_manager.config import parse_dsn
from customer_manager.messages.codec import Profile
from customer_manager.messages.query import Filters, ListQuery
from customer_manager.messages.records import (
    NIL,
    SENTINEL,
    Accesskey,
    Customer,
    Metadata,
    after,
    new_webhook_secret,
    now,
)
from customer_manager.storage.base import OutboxMessage, Storage
from customer_manager.storage.memory import MemoryStorage
from customer_manager.storage.mysql import MySQLStorage
from customer_manager.storage.sqlite import SQLiteStorage
from customer_manager.tricks import mysql_cext
from tests.support.servers import MYSQL_HOST, MYSQL_PORT, database, mysql_connect, need_server

Factory = Callable[[], Storage]
TABLES = ("customer_customers", "customer_accesskeys", "customer_outbox")


def customer(email: str = "alice@example.com", **fields: Any) -> Customer:
    """An active, verified customer created now; ``fields`` override."""
    base: dict[str, Any] = {
        "id": uuid.uuid4(),
        "email": email,
        "webhook_secret": new_webhook_secret(),
        "billing_account_id": NIL,
        "email_verified": True,
        "status": "active",
        "identity_verification_status": "none",
        "metadata": Metadata(),
        "tm_deletion_scheduled": SENTINEL,
        "tm_create": now(),
        "tm_update": SENTINEL,
        "tm_delete": SENTINEL,
    }
    return Customer(**{**base, **fields})


def accesskey(customer_id: uuid.UUID, **fields: Any) -> Accesskey:
    base: dict[str, Any] = {
        "id": uuid.uuid4(),
        "customer_id": customer_id,
        "name": "key",
        "token": "vb_secret_should_not_be_stored",
        "token_prefix": "vb_secret_s",
        "tm_expire": SENTINEL,
        "tm_create": now(),
        "tm_update": SENTINEL,
        "tm_delete": SENTINEL,
    }
    return Accesskey(**{**base, **fields})


class Recorder:
    """An outbox function that records what it was given and emits one message per call."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.seen: list[Any] = []

    def __call__(self, record: Any) -> list[OutboxMessage]:
        self.seen.append(record)
        body = msgspec.json.encode({"type": self.kind, "id": str(record.id)})
        return [OutboxMessage(exchange="bin-manager.customer-manager.event", body=body)]


def none(record: Any) -> list[OutboxMessage]:
    return []


def page(size: int = 100, **filters: Any) -> ListQuery:
    return ListQuery(page_size=size, before=after(60), filters=Filters(**filters))


def token_hash(n: int) -> str:
    return f"{n:064x}"


def _empty_mysql(dsn: str) -> None:
    conn = mysql_connect(dsn)
    try:
        cursor = conn.cursor()
        for table in TABLES:
            cursor.execute(f"TRUNCATE TABLE {table}")
    finally:
        conn.close()


@pytest.fixture(scope="session")
def mysql_current_dsn() -> Iterator[str]:
    """A MySQL database for the ``current`` wire profile (its own schema), dropped afterwards."""
    need_server("MySQL", MYSQL_HOST, MYSQL_PORT)
    with database(f"cm_test_cur_{secrets.token_hex(4)}") as dsn:
        yield dsn


@pytest.fixture(
    params=["memory", "sqlite", "mysql", "mysql-pure", "sqlite-current", "mysql-current"]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """A factory of storages sharing one fresh, migrated database (memory: one instance).
    ``-current``: the store of the ``current`` wire profile (docs/profiles.md)."""
    opened: list[Storage] = []
    profile: Profile = "current" if request.param.endswith("-current") else "seed"
    if request.param == "memory":
        shared = MemoryStorage()

        def make() -> Storage:
            return shared
    elif request.param.startswith("sqlite"):
        path = str(tmp_path / "store.sqlite3")

        def make() -> Storage:
            opened.append(SQLiteStorage(path, profile=profile))
            return opened[-1]
    else:
        if request.param == "mysql" and not mysql_cext.loaded():
            pytest.skip(f"not the C driver here ({mysql_cext.driver()}): `make test` runs it")
        dsn = request.getfixturevalue("mysql_current_dsn" if profile == "current" else "mysql_dsn")
        MySQLStorage(parse_dsn(dsn), profile=profile).migrate()
        _empty_mysql(dsn)

        def make() -> Storage:
            pure = request.param == "mysql-pure"
            opened.append(MySQLStorage(parse_dsn(dsn), pure=pure, profile=profile))
            return opened[-1]

    make().migrate()
    yield make
    for storage in opened:
        storage.close()


@pytest.fixture
def storage(backend: Factory) -> Storage:
    """One storage of ``backend``: every contract test runs on each backend."""
    return backend()


def race(stores: list[Storage], action: Callable[[Storage], Any]) -> list[Any]:
    """Run ``action`` on every store at the same moment; return results or exceptions."""
    barrier = threading.Barrier(len(stores))

    def run(store: Storage) -> Any:
        barrier.wait()
        try:
            return action(store)
        except Exception as exc:  # collected for the assertions
            return exc

    with ThreadPoolExecutor(len(stores)) as pool:
        return list(pool.map(run, stores))
