"""Taking over a database the Go service wrote (issue 13): pre-flight, expand, old data
brought to our rules, contract; run with ``customer-control`` as an operator would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from customer_manager.cli import main
from customer_manager.config import parse_dsn
from customer_manager.storage import schema
from customer_manager.storage.base import SCHEMA_VERSION
from customer_manager.storage.mysql import MySQLStorage
from tests.support.go_like import SENTINEL, GoService, go_time
from tests.support.servers import REDIS_DB

pytestmark = pytest.mark.integration


@pytest.fixture
def go(fresh_mysql_dsn: str, redis_db: redis.Redis, redis_address: str) -> Iterator[GoService]:
    """A database with the Go schema, written and cached by a Go stand-in."""
    service = GoService(fresh_mysql_dsn, redis_address, REDIS_DB)
    service.create_schema()
    yield service
    service.close()


def ctl(go: GoService, *args: str) -> Result:
    """customer-control as the operator runs it: MySQL and the daemons' Redis, no broker."""
    where = ["--database_dsn", go.dsn, "--redis_address", go.redis_address]
    return CliRunner().invoke(main, [*where, "--redis_database", str(go.redis_db), *args])


def out(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def login(go: GoService, token: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = out(ctl(go, "accesskey", "list", "--token", token))
    return found


def events(go: GoService, kind: str) -> list[dict[str, Any]]:
    bodies = [json.loads(b) for (b,) in go.sql("SELECT body FROM customer_outbox ORDER BY id")]
    return [e["data"] for e in bodies if e.get("type") == kind]


def test_go_database_taken_over_without_breaking_a_key(go: GoService) -> None:
    alice = go.insert_customer("alice@example.com", webhook_uri="test.com")  # Go accepted it
    gone = go.insert_customer("gone@example.com", deleted=True)
    first, second = go.insert_customer("dup@example.com"), go.insert_customer("DUP@example.com")
    live = [go.insert_key(alice), go.insert_key(first)]
    orphan, _ = go.insert_key(gone)  # Go deleted the tenant and left its key active

    # Pre-flight: the duplicates are listed by id, with what to do; nothing is changed.
    blocked = ctl(go, "db", "migrate")
    assert blocked.exit_code == 1
    assert "dup@example.com" in blocked.output
    assert str(first) in blocked.output and str(second) in blocked.output
    assert "nothing was changed" in blocked.output and "customer delete" in blocked.output
    assert MySQLStorage(parse_dsn(go.dsn)).schema_version() == 0
    assert not go.sql("SHOW COLUMNS FROM customer_customers LIKE 'email_active'")
    assert go.sql("SHOW TABLES") == [("customer_accesskeys",), ("customer_customers",)]

    go.delete_customer(second)  # the operator's fix, with the Go tools still in charge
    done = ctl(go, "db", "migrate")
    assert done.exit_code == 0, done.output
    assert f"schema version {SCHEMA_VERSION}" in done.output
    assert "revoked 1 active key(s) of 1 deleted customer(s)" in done.output
    assert "revoked 0 active key(s)" in ctl(go, "db", "migrate").output  # clean re-run

    # Rows preserved, read back in the 6-digit form.
    row = go.row("customer", alice)
    assert row is not None
    shown = out(ctl(go, "customer", "get", "--id", str(alice)))
    for field in ("name", "email", "webhook_method", "webhook_uri", "tm_create", "tm_delete"):
        assert shown[field] == row[field]

    # Every live Go key authenticates; the deleted tenant's key is revoked, with its event.
    for key_id, token in live:
        [key] = login(go, token)
        assert key["id"] == str(key_id) and key["tm_delete"] == SENTINEL
        assert "token" not in key and key["token_prefix"] == token[:11]
    revoked = go.get("customer_accesskey", orphan)  # Go's read path, from our cache entry
    assert revoked is not None and revoked["tm_delete"] != SENTINEL
    assert [e["id"] for e in events(go, "accesskey_deleted")] == [str(orphan)]

    # Go's cache entry (plain token inside) read by us: no token shown.
    cached = out(ctl(go, "accesskey", "get", "--id", str(live[0][0])))
    assert "token" not in cached and cached["token_prefix"] == live[0][1][:11]

    # A Go-era webhook_uri sent back unchanged does not block an update; a new bad one does.
    same = ["customer", "update", "--id", str(alice), "--email", "alice@example.com"]
    assert ctl(go, *same, "--name", "Alice", "--webhook-uri", "test.com").exit_code == 0
    bad = ctl(go, *same, "--webhook-uri", "also-bad")
    assert bad.exit_code == 1 and "INVALID_WEBHOOK_URI" in bad.output

    _contract(go, alice, live)


def _contract(go: GoService, alice: uuid.UUID, live: list[tuple[uuid.UUID, str]]) -> None:
    late_id, late_token = go.insert_key(alice)  # a Go replica still running
    assert [k["id"] for k in login(go, late_token)] == [str(late_id)]  # found by plain token

    assert ctl(go, "db", "migrate", "--contract").exit_code == 2  # needs --go-stopped
    refused = ctl(go, "db", "migrate", "--contract", "--go-stopped")
    assert refused.exit_code == 1 and "still creating keys" in refused.output
    assert go.sql("SELECT COUNT(*) FROM customer_accesskeys WHERE token IS NOT NULL")[0][0] == 4

    hours_ago = go_time(datetime.now(UTC) - timedelta(hours=2))
    go.sql(
        "UPDATE customer_accesskeys SET tm_create = %s WHERE id = %s", (hours_ago, late_id.bytes)
    )
    done = ctl(go, "db", "migrate", "--contract", "--go-stopped")
    assert done.exit_code == 0, done.output
    assert "4 plain token(s) wiped" in done.output
    assert go.sql("SELECT COUNT(*) FROM customer_accesskeys WHERE token IS NOT NULL")[0][0] == 0
    for key_id, token in [*live, (late_id, late_token)]:
        assert token.encode() not in (go.redis.get(f"customer_accesskey:{key_id}") or b"")
        assert [k["id"] for k in login(go, token)] == [str(key_id)]
    assert "0 plain token(s) wiped" in ctl(go, "db", "migrate", "--contract", "--go-stopped").output


def test_interrupted_migration_resumes(go: GoService, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = go.insert_customer("owner@example.com")
    key_id, token = go.insert_key(owner)
    store = MySQLStorage(parse_dsn(go.dsn))
    broken = [*schema.MIGRATIONS["mysql"][3][:1], "SELECT no_such_column FROM customer_accesskeys"]
    monkeypatch.setitem(schema.MIGRATIONS["mysql"], 3, broken)
    with pytest.raises(Exception, match="no_such_column"):
        store.migrate()
    store.close()
    store = MySQLStorage(parse_dsn(go.dsn))
    assert store.schema_version() == 2  # v1 and v2 are in; v3 stopped half-way
    monkeypatch.undo()
    assert store.migrate() == SCHEMA_VERSION
    hashed = go.sql(
        "SELECT token_hash, token FROM customer_accesskeys WHERE id = %s", (key_id.bytes,)
    )
    assert hashed[0][0] is not None and hashed[0][1] == token  # hashed once, Go's token kept
    store.close()
