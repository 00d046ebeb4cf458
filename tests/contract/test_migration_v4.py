"""Migration version 4 (docs/lifecycle.md#schema-version-4) on MySQL and SQLite: applied to a
database holding
seed-version rows, re-applied without change, and a seed-style INSERT of the 12 seed
columns afterwards gives a verified, active customer that no sweep touches (F3)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mysql.connector
import pytest

from customer_manager.config import parse_dsn
from customer_manager.messages.records import SENTINEL, Metadata, after
from customer_manager.storage import schema
from customer_manager.storage.base import SCHEMA_VERSION
from customer_manager.storage.mysql import MySQLStorage
from customer_manager.storage.sql import SQLStorage
from customer_manager.storage.sqlite import SQLiteStorage

SEED_INSERT = (
    "INSERT INTO customer_customers (id, name, detail, email, phone_number, address,"
    " webhook_method, webhook_uri, billing_account_id, tm_create, tm_update, tm_delete)"
    " VALUES (%s, %s, '', %s, '', '', '', '', %s, %s, %s, %s)"
)
OLD = "2020-01-01 00:00:00.000000"
Run = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


@pytest.fixture(params=["mysql", "sqlite"])
def seed_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Callable[[], SQLStorage], Run]]:
    """A database at schema version 3 (the seed's customer columns) and a raw SQL runner."""
    if request.param == "mysql":
        dsn = request.getfixturevalue("fresh_mysql_dsn")
        p = parse_dsn(dsn)
        conn: Any = mysql.connector.connect(
            host=p.host, port=p.port, user=p.user, database=p.database, autocommit=True
        )

        def make() -> SQLStorage:
            return MySQLStorage(parse_dsn(dsn))
    else:
        path = str(tmp_path / "seed.sqlite3")
        conn = sqlite3.connect(path, isolation_level=None)

        def make() -> SQLStorage:
            return SQLiteStorage(path)

    def run(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = conn.cursor()
        cursor.execute(sql if request.param == "mysql" else sql.replace("%s", "?"), params)
        rows = [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        cursor.close()
        return rows

    with monkeypatch.context() as patch:
        for later in [v for v in schema.MIGRATIONS[make().dialect] if v > 3]:
            patch.delitem(schema.MIGRATIONS[make().dialect], later)
        assert make().migrate() == 3
    yield make, run
    conn.close()


def _seed_row(run: Run, email: str, deleted: str, created: str = OLD) -> uuid.UUID:
    row_id = uuid.uuid4()
    nil = uuid.UUID(int=0).bytes
    run(SEED_INSERT, (row_id.bytes, "seed", email, nil, created, SENTINEL, deleted))
    return row_id


def _dump(run: Run) -> list[tuple[Any, ...]]:
    return run("SELECT * FROM customer_customers ORDER BY id", ())


def test_v4_on_seed_rows_and_reapplied(seed_db: tuple[Callable[[], SQLStorage], Run]) -> None:
    make, run = seed_db
    active = _seed_row(run, "live@example.com", SENTINEL)
    gone = _seed_row(run, "gone@example.com", "2021-01-01 00:00:00.000000")
    store = make()
    assert store.migrate() == SCHEMA_VERSION == 6
    live, dead = store.customer_get(active), store.customer_get(gone)
    assert (live.status, live.email_verified, live.identity_verification_status) == (
        "active",
        True,
        "verified",  # grandfathered (ffb1bfe3f8d7:23)
    )
    assert (dead.status, dead.email_verified, dead.identity_verification_status) == (
        "deleted",
        True,
        "none",
    )
    for row in (live, dead):
        assert row.metadata == Metadata() and row.tm_deletion_scheduled == SENTINEL
        assert row.terms_agreed_version == row.terms_agreed_ip == ""
    assert len(live.webhook_secret) == 32 and dead.webhook_secret == ""  # the backfill
    (raw_metadata,) = run("SELECT metadata FROM customer_customers WHERE id = %s", (active.bytes,))
    assert raw_metadata == (None,)
    before = _dump(run)
    assert make().migrate() == SCHEMA_VERSION  # re-applied: no change
    assert _dump(run) == before
    versions = run("SELECT version FROM customer_schema_version ORDER BY version", ())
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_seed_insert_after_v4_is_left_alone_by_the_sweeps(
    seed_db: tuple[Callable[[], SQLStorage], Run],
) -> None:
    make, run = seed_db
    store = make()
    store.migrate()
    seed = _seed_row(run, "go-instance@example.com", SENTINEL)
    found = store.customer_get(seed)
    assert (found.status, found.email_verified) == ("active", True)
    assert found.tm_deletion_scheduled == SENTINEL
    future = after(10 * 365 * 86400)
    assert store.customer_due("unverified", future, 1000, []) == []
    assert store.customer_due("frozen_expired", future, 1000, []) == []
    assert make().migrate() == SCHEMA_VERSION  # the next startup gives it a webhook secret
    assert len(store.customer_get(seed).webhook_secret) == 32
