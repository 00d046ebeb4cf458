"""The ``storage`` fixture: every contract test runs on memory, SQLite (a temp file) and
MySQL (the session database from ``mysql_dsn``, emptied before each test) on both protocols of
the driver: its C extension (only where it is loaded, i.e. under ``make test``) and pure Python."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_kit import Factory

from customer_manager.config import parse_dsn
from customer_manager.storage.base import Storage
from customer_manager.storage.memory import MemoryStorage
from customer_manager.storage.mysql import MySQLStorage
from customer_manager.storage.sqlite import SQLiteStorage
from customer_manager.tricks import mysql_cext

TABLES = ("customer_customers", "customer_accesskeys", "customer_outbox")


def _empty_mysql(dsn: str) -> None:
    import mysql.connector

    p = parse_dsn(dsn)
    conn = mysql.connector.connect(
        host=p.host, port=p.port, user=p.user, password=p.password, database=p.database
    )
    try:
        cursor = conn.cursor()
        for table in TABLES:
            cursor.execute(f"TRUNCATE TABLE {table}")
    finally:
        conn.close()


@pytest.fixture(params=["memory", "sqlite", "mysql", "mysql-pure"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """A factory of storages sharing one fresh, migrated database (memory: one instance)."""
    opened: list[Storage] = []
    if request.param == "memory":
        shared = MemoryStorage()

        def make() -> Storage:
            return shared
    elif request.param == "sqlite":
        path = str(tmp_path / "store.sqlite3")

        def make() -> Storage:
            opened.append(SQLiteStorage(path))
            return opened[-1]
    else:
        if request.param == "mysql" and not mysql_cext.loaded():
            pytest.skip(f"not the C driver here ({mysql_cext.driver()}): `make test` runs it")
        dsn = request.getfixturevalue("mysql_dsn")
        MySQLStorage(parse_dsn(dsn)).migrate()
        _empty_mysql(dsn)

        def make() -> Storage:
            opened.append(MySQLStorage(parse_dsn(dsn), pure=request.param == "mysql-pure"))
            return opened[-1]

    make().migrate()
    yield make
    for storage in opened:
        storage.close()


@pytest.fixture
def storage(backend: Factory) -> Storage:
    return backend()
