"""customer-control on the embedded SQLite store, through the real local actor system."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from customer_manager.cli import main
from customer_manager.messages.records import GUEST_ID, NIL, SENTINEL
from customer_manager.storage.base import SCHEMA_VERSION


@pytest.fixture(params=["sqlite", "mysql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run customer-control on SQLite (embedded default) or on a fresh MySQL database."""
    names = ("DATABASE_DSN", "REDIS_ADDRESS", "RABBITMQ_ADDRESS", "EMAIL", "ID")
    for name in (*names, "EMAIL_VERIFY_BASE_URL"):
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
    assert [k["id"] for k in ok(cli("accesskey", "list", "--api-token", token))] == [key["id"]]
    assert ok(cli("accesskey", "list", "--api-token", "vb_unknown")) == []
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
    missing = cli(
        "accesskey",
        "create",
        "--customer-id",
        "2cfbb148-7dc7-11ec-85df-47cf2c8492f0",
        "--name",
        "k",
    )
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: failed to create accesskey: ")
    unnamed = cli("accesskey", "create", "--customer-id", "2cfbb148-7dc7-11ec-85df-47cf2c8492f0")
    assert unnamed.exit_code == 1 and "invalid name: Name is required" in unnamed.stderr
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


# -- the lifecycle commands (docs/lifecycle.md#command-line) ---------------------------------


def test_help_lists_the_new_commands() -> None:
    text = CliRunner().invoke(main, ["customer", "--help"]).output
    for command in (
        "freeze",
        "recover",
        "set-identity-verification",
        "cleanup-unverified",
        "cleanup-frozen-expired",
    ):
        assert f"  {command} " in text


def test_freeze_recover_identity_and_sweeps(cli: Any) -> None:
    made = ok(cli("customer", "create", "--email", "life@example.com"))
    cid = made["id"]
    frozen = ok(cli("customer", "freeze", "--id", cid))
    assert frozen["status"] == "frozen" and frozen["tm_deletion_scheduled"] != SENTINEL
    assert ok(cli("customer", "recover", "--id", cid))["status"] == "active"
    again = cli("customer", "recover", "--id", cid)
    assert again.exit_code == 1
    assert again.stderr.startswith("Error: failed to recover customer: ")
    assert "CUSTOMER_NOT_FROZEN" in again.stderr
    guest = cli("customer", "freeze", "--id", str(GUEST_ID))
    assert guest.exit_code == 1 and "failed to freeze customer: " in guest.stderr
    nil = cli("customer", "freeze", "--id", str(NIL))
    assert nil.exit_code == 2
    verified = ok(cli("customer", "set-identity-verification", "--id", cid, "--status", "verified"))
    assert verified["identity_verification_status"] == "verified"
    bad = cli("customer", "set-identity-verification", "--id", cid, "--status", "maybe")
    assert bad.exit_code == 1
    assert "invalid status 'maybe': must be one of none, pending, verified, rejected" in bad.stderr
    assert ok(cli("customer", "cleanup-unverified")) == {"expired": 0}
    assert ok(cli("customer", "cleanup-frozen-expired")) == {"processed": 0}
    assert ok(cli("customer", "get", "--id", cid))["identity_verification_status"] == "verified"


def test_a_bad_email_verify_base_url_stops_with_one_line(cli: Any) -> None:
    out = cli("--email_verify_base_url", "ftp://x", "customer", "list")
    assert out.exit_code == 1
    assert out.stderr.strip().splitlines() == [
        "Error: EMAIL_VERIFY_BASE_URL must be an absolute http(s) URL, not 'ftp://x'"
    ]


@pytest.mark.parametrize("store", ["sqlite", "mysql"])
def test_the_current_profile_on_the_cli(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """docs/profiles.md: the embedded store and MySQL in ``current``: RFC 3339 times or null,
    ``raw_token`` once, NULL for "not set" in the database."""
    for name in ("DATABASE_DSN", "REDIS_ADDRESS", "RABBITMQ_ADDRESS", "WIRE_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    where = ["--db", str(tmp_path / "current.sqlite3")]
    if store == "mysql":
        where = ["--database_dsn", request.getfixturevalue("fresh_mysql_dsn"), "--without_redis"]

    def run(*args: str) -> Any:
        return ok(CliRunner().invoke(main, ["--wire_profile", "current", *where, *args]))

    if store == "mysql":
        CliRunner().invoke(main, ["--wire_profile", "current", *where, "db", "migrate"])
    made = run("customer", "create", "--email", "cur@example.com")
    assert (made["tm_update"], made["tm_delete"], made["tm_deletion_scheduled"]) == (None,) * 3
    assert made["tm_create"].endswith("Z") and "T" in made["tm_create"]
    if store == "sqlite":  # "not set" is NULL in the database too
        with sqlite3.connect(tmp_path / "current.sqlite3") as db:
            row = db.execute("SELECT tm_update, tm_delete, metadata FROM customer_customers")
            assert row.fetchall() == [(None, None, '{"rtp_debug":false}')]
    key = run("accesskey", "create", "--customer-id", made["id"], "--name", "k")
    assert key["raw_token"].startswith("vb_") and "token" not in key
    assert key["tm_expire"] is None  # never expires
    listed = run("accesskey", "list", "--customer-id", made["id"])
    assert [k["id"] for k in listed] == [key["id"]] and "raw_token" not in listed[0]
    gone = run("customer", "delete", "--id", made["id"])
    assert gone["status"] == "deleted" and gone["tm_delete"] == gone["tm_update"] is not None
    assert run("accesskey", "get", "--id", key["id"])["tm_delete"] is not None  # revoked
    again = run("customer", "create", "--email", "cur@example.com")  # the email is free
    assert again["id"] != made["id"]
