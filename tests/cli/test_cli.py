"""customer-control on the embedded SQLite store, through the real local actor system."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from customer_manager.cli import main
from customer_manager.messages.records import SENTINEL
from customer_manager.storage.base import SCHEMA_VERSION


@pytest.fixture(params=["sqlite", "mysql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run customer-control on SQLite (embedded default) or on a fresh MySQL database."""
    for name in ("DATABASE_DSN", "REDIS_ADDRESS", "RABBITMQ_ADDRESS", "EMAIL", "ID"):
        monkeypatch.delenv(name, raising=False)
    store = ["--db", str(tmp_path / "cli.sqlite3")]
    if request.param == "mysql":
        dsn = request.getfixturevalue("fresh_mysql_dsn")
        store = ["--database_dsn", dsn, "--without_redis"]  # no daemon caches this database

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, [*store, *args])

    if request.param == "mysql":
        assert run("db", "migrate").exit_code == 0
    return run


def ok(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_customer_lifecycle(cli: Any) -> None:
    made = ok(cli("customer", "create", "--email", "alice@example.com", "--name", "Alice"))
    assert made["email"] == "alice@example.com" and made["webhook_method"] == "POST"
    assert made["tm_delete"] == SENTINEL
    assert ok(cli("customer", "get", "--id", made["id"])) == made
    assert [c["id"] for c in ok(cli("customer", "list"))] == [made["id"]]
    upd = ok(
        cli(
            "customer",
            "update",
            "--id",
            made["id"],
            "--email",
            "alice@example.com",
            "--detail",
            "vip",
        )
    )
    assert upd["detail"] == "vip" and "name" not in upd  # full replace, as in Go
    bill = "11111111-2222-3333-4444-555555555555"
    got = ok(
        cli("customer", "update-billing-account", "--id", made["id"], "--billing-account-id", bill)
    )
    assert got["billing_account_id"] == bill
    gone = ok(cli("customer", "delete", "--id", made["id"]))
    assert gone["tm_delete"] != SENTINEL
    out = cli("customer", "list", "--limit", "5")
    assert [c["id"] for c in ok(out)] == [made["id"]]  # deleted rows are listed too


def test_accesskey_flow_token_shown_once(cli: Any) -> None:
    cust = ok(cli("customer", "create", "--email", "bob@example.com"))
    key = ok(
        cli("accesskey", "create", "--customer-id", cust["id"], "--name", "ci", "--expire", "720h")
    )
    token = key["token"]
    assert token.startswith("vb_") and len(token) == 35
    assert key["token_prefix"] == token[:11] and key["tm_expire"] != SENTINEL
    fetched = ok(cli("accesskey", "get", "--id", key["id"]))
    assert "token" not in fetched and fetched["token_prefix"] == token[:11]
    assert [k["id"] for k in ok(cli("accesskey", "list", "--token", token))] == [key["id"]]
    assert ok(cli("accesskey", "list", "--token", "vb_unknown")) == []
    assert ok(cli("accesskey", "update", "--id", key["id"], "--name", "n2"))["name"] == "n2"
    assert ok(cli("accesskey", "delete", "--id", key["id"]))["tm_delete"] != SENTINEL
    listed = ok(cli("accesskey", "list", "--customer-id", cust["id"]))
    assert [k["id"] for k in listed] == [key["id"]]


def test_errors_and_exit_codes(cli: Any) -> None:
    missing = cli("customer", "create", "--name", "x")
    assert missing.exit_code == 2 and "--email" in missing.output
    bad_id = cli("customer", "get", "--id", "not-a-uuid")
    assert bad_id.exit_code == 2 and "not-a-uuid" in bad_id.output
    unknown = cli("customer", "get", "--id", "2cfbb148-7dc7-11ec-85df-47cf2c8492f0")
    assert unknown.exit_code == 1 and "Error:" in unknown.stderr
    assert "not found" in unknown.stderr
    invalid = cli("customer", "create", "--email", "@nope")
    assert invalid.exit_code == 1 and "INVALID_EMAIL" in invalid.stderr
    ok(cli("customer", "create", "--email", "dup@example.com"))
    dup = cli("customer", "create", "--email", "DUP@example.com")
    assert dup.exit_code == 1 and "EMAIL_ALREADY_EXISTS" in dup.stderr
    assert (
        cli(
            "accesskey", "create", "--customer-id", "2cfbb148-7dc7-11ec-85df-47cf2c8492f0"
        ).exit_code
        == 1
    )
    assert (
        cli(
            "accesskey",
            "create",
            "--customer-id",
            "2cfbb148-7dc7-11ec-85df-47cf2c8492f0",
            "--expire",
            "soon",
        ).exit_code
        == 2
    )


def test_mysql_needs_migrate_first(fresh_mysql_dsn: str) -> None:
    args = ["--database_dsn", fresh_mysql_dsn, "--without_redis", "customer", "list"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 1 and "customer-control db migrate" in out.stderr


def test_db_migrate_is_idempotent(cli: Any) -> None:
    first = cli("db", "migrate")
    assert first.exit_code == 0 and f"schema version {SCHEMA_VERSION}" in first.stdout
    assert cli("db", "migrate").stdout == first.stdout
    assert f"schema version {SCHEMA_VERSION}" in cli("db", "version").stdout


def test_unreachable_mysql_names_the_host(cli: Any) -> None:
    dsn = "root:secret@tcp(127.0.0.1:1)/x"
    out = cli("--database_dsn", dsn, "--without_redis", "customer", "list")
    assert out.exit_code == 1 and "127.0.0.1:1" in out.stderr
    assert "secret" not in out.output
