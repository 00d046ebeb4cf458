"""What the ``mysql-direct-write`` trick (customer_manager/tricks/mysql_direct.py) relies on:
a statement sent through the C connection with the extension's own quoting stores exactly
what the cursor stores, returns the same row counts and raises the same driver errors.
Runs where the C extension is loaded (``make test``); the storage contract covers the rest."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import mysql.connector
import pytest
from mysql.connector.errors import IntegrityError, ProgrammingError

from customer_manager.storage.sql import Tx
from customer_manager.tricks import mysql_direct
from tests.support.servers import mysql_connect

AWKWARD = [
    'it\'s \\ a "quoted" %s; -- DROP TABLE t',
    "ünïcödé 🎉",
    "",
    None,
    uuid.uuid4().bytes + b"\x00'\\\x1a",
    0,
    -7,
    2.5,
]


@pytest.fixture
def conn(mysql_dsn: str) -> Iterator[Any]:
    if not mysql.connector.HAVE_CEXT:
        pytest.skip("the C extension is not loaded (run under make test)")
    connection = mysql_connect(mysql_dsn)
    table = f"direct_{secrets.token_hex(3)}"
    cursor = connection.cursor()
    cursor.execute(
        f"CREATE TABLE {table} (id INT PRIMARY KEY, t TEXT, u TEXT, e TEXT, n TEXT,"
        " b VARBINARY(64), z INT, i INT, f DOUBLE) CHARACTER SET utf8mb4"
    )
    connection.table = table
    yield connection
    cursor.execute(f"DROP TABLE {table}")
    connection.close()


@pytest.fixture(params=["direct", "cursor"])
def write(request: pytest.FixtureRequest, conn: Any) -> Iterator[mysql_direct.Writer]:
    was = mysql_direct.enabled()
    (mysql_direct.enable if request.param == "direct" else mysql_direct.disable)()
    try:
        direct = mysql_direct.writer(conn)
    finally:
        (mysql_direct.enable if was else mysql_direct.disable)()
    assert (direct is not None) == (request.param == "direct")
    yield direct or Tx(conn.cursor(), str).count


def test_values_round_trip_and_counts(conn: Any, write: mysql_direct.Writer) -> None:
    table = conn.table
    insert = f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    assert write(insert, [1, *AWKWARD]) == 1
    assert write(insert, [2, *AWKWARD]) == 1
    conn.commit()
    cursor = conn.cursor()
    cursor.execute(f"SELECT t, u, e, n, b, z, i, f FROM {table} ORDER BY id")
    rows = cursor.fetchall()
    assert [tuple(bytes(v) if isinstance(v, bytearray) else v for v in r) for r in rows] == [
        tuple(AWKWARD)
    ] * 2
    assert write(f"UPDATE {table} SET z = z + %s WHERE i = %s", [1, -7]) == 2
    assert write(f"DELETE FROM {table} WHERE id = %s", [3]) == 0
    conn.rollback()


def test_errors_are_the_drivers(conn: Any, write: mysql_direct.Writer) -> None:
    insert = f"INSERT INTO {conn.table} (id) VALUES (%s)"
    write(insert, [1])
    with pytest.raises(IntegrityError) as duplicate:
        write(insert, [1])
    assert duplicate.value.errno == 1062
    with pytest.raises(ProgrammingError):
        write(insert, [1, 2])  # more values than marks
    with pytest.raises(ProgrammingError) as bad:
        write(f"INSERT INTO {conn.table} (nope) VALUES (%s)", [1])
    assert bad.value.errno == 1054  # unknown column
    conn.rollback()
