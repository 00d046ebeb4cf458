"""config.parse_dsn: go-sql-driver DSNs (docs/configuration.md#settings) and MySQLParams.safe()."""

from __future__ import annotations

import pytest

from customer_manager.config import (
    DEFAULT_SQLITE_PATH,
    MySQLParams,
    Settings,
    check,
    embedded_store,
    parse_dsn,
)


def test_full_tcp_dsn() -> None:
    p = parse_dsn("bin-manager:s3cr@t:x@tcp(10.0.0.5:3307)/bin_manager?timeout=5s&charset=utf8mb4")
    assert p == MySQLParams(
        user="bin-manager",
        password="s3cr@t:x",
        host="10.0.0.5",
        port=3307,
        database="bin_manager",
        params={"timeout": "5s", "charset": "utf8mb4"},
    )
    assert "s3cr" not in p.safe() and p.safe() == "bin-manager@10.0.0.5:3307/bin_manager"


@pytest.mark.parametrize(
    ("dsn", "host", "port"),
    [
        ("root:@tcp(127.0.0.1:3306)/db", "127.0.0.1", 3306),
        ("u:p@tcp(mysql)/db", "mysql", 3306),
        ("u:p@tcp([::1]:3310)/db", "::1", 3310),
        ("u:p@/db", "127.0.0.1", 3306),
        ("/db", "127.0.0.1", 3306),
    ],
)
def test_hosts_and_defaults(dsn: str, host: str, port: int) -> None:
    p = parse_dsn(dsn)
    assert (p.host, p.port, p.database) == (host, port, "db")


def test_user_without_password_and_default_user() -> None:
    assert parse_dsn("alice@tcp(h:1)/d").user == "alice"
    assert parse_dsn("alice@tcp(h:1)/d").password == ""
    assert parse_dsn("tcp(h:1)/d").user == "root"


def test_unix_socket() -> None:
    p = parse_dsn("u:p@unix(/var/run/mysqld/mysqld.sock)/db")
    assert p.unix_socket == "/var/run/mysqld/mysqld.sock"
    assert p.safe() == "u@/var/run/mysqld/mysqld.sock/db"


def test_escaped_database_and_empty_params() -> None:
    p = parse_dsn("u:p@tcp(h:1)/my%5Fdb?")
    assert p.database == "my_db" and p.params == {}


@pytest.mark.parametrize("dsn", ["", "mysql://u:p@h/db", "u:p@tcp(h:1)", "u:p@mysql/db"])
def test_invalid_dsn_names_no_secret(dsn: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_dsn(dsn)
    assert "p@" not in str(caught.value)


def test_sqlite_dsn_is_the_embedded_store() -> None:
    assert embedded_store("sqlite:/data/cm.db", "x.sqlite3") == ("", "/data/cm.db")
    assert embedded_store("sqlite:", "x.sqlite3") == ("", DEFAULT_SQLITE_PATH)
    assert embedded_store("u:p@tcp(h:1)/d", "x.sqlite3") == ("u:p@tcp(h:1)/d", "x.sqlite3")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("database_dsn", "u:p@tcp(h:port)/d"),
        ("database_dsn", "u:p@tcp(h:70000)/d"),
        ("redis_address", "h:notaport"),
    ],
)
def test_settings_checked_before_connecting(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=field.upper()):
        check(Settings(**{field: value}))
