"""Backend specifics: MySQL error mapping and reconnect, migrations (fresh and on a Go-era
schema), SQLite files, open_storage."""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mysql.connector
import pytest

from customer_manager.config import MySQLParams, Settings, parse_dsn
from customer_manager.errors import Unavailable
from customer_manager.messages.query import hash_token
from customer_manager.storage import open_storage
from customer_manager.storage.base import SCHEMA_VERSION
from customer_manager.storage.mysql import MySQLStorage
from customer_manager.storage.sqlite import SQLiteStorage
from tests.support.storage import customer, none, page

GO_SCHEMA = (
    "CREATE TABLE customer_customers (id binary(16) PRIMARY KEY, name varchar(255),"
    " detail text, email varchar(255), phone_number varchar(255), address varchar(1024),"
    " webhook_method varchar(255), webhook_uri varchar(1023), billing_account_id binary(16),"
    " tm_create datetime(6), tm_update datetime(6), tm_delete datetime(6))",
    "CREATE TABLE customer_accesskeys (id binary(16) PRIMARY KEY, customer_id binary(16),"
    " name varchar(255), detail text, token varchar(1023), tm_expire datetime(6),"
    " tm_create datetime(6), tm_update datetime(6), tm_delete datetime(6),"
    " INDEX idx_customer_accesskeys_customer_id(customer_id),"
    " INDEX idx_customer_accesskeys_token(token))",
)


def _admin(params: MySQLParams, database: str | None = None) -> Any:
    return mysql.connector.connect(
        host=params.host,
        port=params.port,
        user=params.user,
        password=params.password,
        database=database,
    )


@pytest.fixture
def scratch_db(mysql_dsn: str) -> Iterator[MySQLParams]:
    """A brand-new empty MySQL database for this test only."""
    params = parse_dsn(mysql_dsn)
    name = f"cm_scratch_{secrets.token_hex(4)}"
    conn = _admin(params)
    conn.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        yield MySQLParams(host=params.host, port=params.port, user=params.user, database=name)
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        conn.close()


def test_mysql_fresh_migration(scratch_db: MySQLParams) -> None:
    store = MySQLStorage(scratch_db)
    assert store.schema_version() == 0
    assert store.migrate() == SCHEMA_VERSION
    assert MySQLStorage(scratch_db).migrate() == SCHEMA_VERSION
    assert store.schema_version() == SCHEMA_VERSION
    store.close()


def test_mysql_adopts_go_schema(scratch_db: MySQLParams) -> None:
    conn = _admin(scratch_db, scratch_db.database)
    cursor = conn.cursor()
    for ddl in GO_SCHEMA:
        cursor.execute(ddl)
    key_id, owner = uuid.uuid4(), uuid.uuid4()
    cursor.execute(
        "INSERT INTO customer_accesskeys (id, customer_id, name, token, tm_expire, tm_create,"
        " tm_update, tm_delete) VALUES (%s, %s, 'go', 'abcdefghijklmnop', '9999-01-01',"
        " '2021-01-01', '9999-01-01', '9999-01-01')",
        (key_id.bytes, owner.bytes),
    )
    conn.commit()
    conn.close()
    store = MySQLStorage(scratch_db)
    assert store.migrate() == SCHEMA_VERSION
    found = store.accesskey_list(page(token_hash=hash_token("abcdefghijklmnop")))
    assert [k.id for k in found] == [key_id]
    assert found[0].token_prefix == "abcdefghijk" and found[0].token == ""
    store.customer_insert(customer("go@example.com"), none)
    store.close()


def test_mysql_unreachable_is_unavailable_without_password() -> None:
    store = MySQLStorage(MySQLParams(host="127.0.0.1", port=1, password="hunter2", database="x"))
    with pytest.raises(Unavailable) as caught:
        store.ping()
    assert "127.0.0.1:1" in caught.value.message
    assert "hunter2" not in caught.value.message


def test_mysql_reconnects_after_lost_connection(mysql_dsn: str) -> None:
    store = MySQLStorage(parse_dsn(mysql_dsn))
    store.migrate()
    conn_id = store._run(lambda tx: tx.scalar("SELECT CONNECTION_ID()"), write=False)
    admin = _admin(parse_dsn(mysql_dsn))
    admin.cursor().execute(f"KILL CONNECTION {int(conn_id)}")
    admin.close()
    created = store.customer_insert(customer(f"{uuid.uuid4().hex}@example.com"), none)
    assert store.customer_get(created.id) == created
    store.close()


def test_sqlite_file_is_shared_and_persistent(tmp_path: Path) -> None:
    path = str(tmp_path / "a.sqlite3")
    first = SQLiteStorage(path)
    assert first.schema_version() == 0
    assert first.migrate() == SCHEMA_VERSION
    created = first.customer_insert(customer("s@example.com"), none)
    first.close()
    second = SQLiteStorage(path)
    assert second.migrate() == SCHEMA_VERSION
    assert second.customer_get(created.id) == created
    second.close()


def test_sqlite_in_memory() -> None:
    store = SQLiteStorage(":memory:")
    store.migrate()
    created = store.customer_insert(customer("m@example.com"), none)
    assert store.customer_get(created.id) == created


def test_open_storage_picks_backend(tmp_path: Path) -> None:
    lite = open_storage(Settings(sqlite_path=str(tmp_path / "o.sqlite3")))
    assert isinstance(lite, SQLiteStorage)
    lite.close()
    mysql_store = open_storage(Settings(database_dsn="u:p@tcp(db:3307)/bin_manager"))
    assert isinstance(mysql_store, MySQLStorage)
    assert mysql_store.params.host == "db" and mysql_store.params.port == 3307


def test_sqlite_stores_start_together_on_a_new_file(tmp_path: Path) -> None:
    """Storage actors start at once on a new file while one of them migrates it: none may
    fail (SQLite answers a concurrent switch to WAL with "locked", without waiting). The
    race is narrow, so it is run on 30 new files (it failed on about 1 in 30 before)."""
    import threading

    from customer_manager.storage.sqlite import SQLiteStorage

    errors: list[BaseException] = []
    for round_ in range(30):
        path = str(tmp_path / f"race{round_}.sqlite3")
        start = threading.Barrier(4)

        def open_one(migrate: bool, path: str = path, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                store = SQLiteStorage(path)
                if migrate:
                    store.migrate()
                store.close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_one, args=(i == 0,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    assert errors == []


_PRODUCTION_PROCESS = """
import logging, os, sys
import customer_manager  # the package alone: no driver, no environment change
assert "_mysql_connector" not in sys.modules
assert not any(k.startswith("SSL_CERT_") for k in os.environ)
from customer_manager.tricks import mysql_cext
mysql_cext.preload()  # what the entry points in customer_manager.launch do first
from customer_manager import tricks
import mysql.connector, ssl
from mysql.connector.connection_cext import CMySQLConnection
from customer_manager.config import parse_dsn
from customer_manager.storage.mysql import MySQLStorage

logging.basicConfig(level=logging.INFO)
tricks.install()  # what the daemon's main does
assert mysql.connector.HAVE_CEXT, "the C extension did not load"
store = MySQLStorage(parse_dsn(sys.argv[1]))
store.ping()
assert isinstance(store._conn, CMySQLConnection), type(store._conn)
store.close()
assert ssl.create_default_context().cert_store_stats()["x509_ca"] > 0, "no CA certificates"
print(ssl.OPENSSL_VERSION)
"""


def test_the_daemon_process_runs_mysql_on_the_c_extension(mysql_dsn: str) -> None:
    """customer_manager/tricks/mysql_cext.py loads the driver's C extension before ssl (about
    40 % less CPU per create); without it the driver silently falls back to pure Python. A fresh
    process, started as the entry points start, must end up on it, with ssl still finding the
    system's CA certificates; importing the package alone must load and change nothing."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SSL_CERT_")}
    done = subprocess.run(
        [sys.executable, "-c", _PRODUCTION_PROCESS, mysql_dsn],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OpenSSL 3.")
    assert "MySQL driver: C extension" in done.stderr  # tricks.install() logs the driver


def test_tls_handshake_in_this_process(tmp_path: Path) -> None:
    """Python's ssl makes a verified TLS connection in the test process, which (under
    ``make test``) shares the C extension's OpenSSL."""
    import socket
    import ssl
    import subprocess
    import threading

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(tls.recv(5))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with (
        socket.create_connection(listener.getsockname()) as raw,
        client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"hello")
        assert tls.recv(5) == b"hello"
    thread.join(5)
    listener.close()
