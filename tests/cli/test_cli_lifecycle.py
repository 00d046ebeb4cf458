"""customer-control's lifecycle commands (docs/lifecycle.md#command-line) on SQLite and MySQL:
freeze, recover, identity verification, the two sweeps, their errors and --help."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from customer_manager.cli import main
from customer_manager.messages.records import GUEST_ID, NIL, SENTINEL


@pytest.fixture(params=["sqlite", "mysql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("DATABASE_DSN", "REDIS_ADDRESS", "RABBITMQ_ADDRESS", "EMAIL_VERIFY_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    store = ["--db", str(tmp_path / "cli.sqlite3")]
    if request.param == "mysql":
        store = ["--database_dsn", request.getfixturevalue("fresh_mysql_dsn")]

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, [*store, *args])

    if request.param == "mysql":
        assert run("db", "migrate").exit_code == 0
    return run


def ok(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


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
