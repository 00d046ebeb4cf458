"""The ``customer-manager`` command line: flags and env names, schema check, log masking."""

from __future__ import annotations

import json
import logging
import secrets

import mysql.connector
import pytest
from click.testing import CliRunner

from customer_manager.config import Settings
from customer_manager.health import parse_listen
from customer_manager.logs import JsonFormatter
from customer_manager.main import describe, main

pytestmark = pytest.mark.integration


def test_help_lists_go_flags_with_env_names() -> None:
    out = CliRunner().invoke(main, ["--help"], terminal_width=200).output
    for flag, env in [
        ("--rabbitmq_address", "RABBITMQ_ADDRESS"),
        ("--database_dsn", "DATABASE_DSN"),
        ("--redis_address", "REDIS_ADDRESS"),
        ("--redis_password", "REDIS_PASSWORD"),
        ("--redis_database", "REDIS_DATABASE"),
        ("--prometheus_endpoint", "PROMETHEUS_ENDPOINT"),
        ("--prometheus_listen_address", "PROMETHEUS_LISTEN_ADDRESS"),
    ]:
        assert flag in out and env in out
    for flag in ("--agent_check", "--billing_account_check", "--prefetch", "--sqlite_path"):
        assert flag in out


def test_mysql_schema_behind_exits_1(mysql_dsn: str) -> None:
    name = f"cm_empty_{secrets.token_hex(4)}"
    conn = mysql.connector.connect(host="127.0.0.1", port=3306, user="root", password="")
    conn.cursor().execute(f"CREATE DATABASE {name}")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # main() installs its JSON handler
    try:
        dsn = f"root:@tcp(127.0.0.1:3306)/{name}"
        result = CliRunner().invoke(main, ["--database_dsn", dsn, "--rabbitmq_address", ""])
        assert result.exit_code == 1
        assert "schema" in result.output and "migrate" in result.output
    finally:
        root.handlers[:], root.level = handlers, level
        conn.cursor().execute(f"DROP DATABASE {name}")
        conn.close()


def test_logs_mask_passwords_and_tokens() -> None:
    settings = Settings(
        database_dsn="app:s3cr3t-pw@tcp(db:3306)/bin_manager",
        redis_password="redis-pw-123",
        rabbitmq_address="amqp://guest:amqp-pw@mq:5672",
    )
    shown = json.dumps(describe(settings))
    for secret in ("s3cr3t-pw", "redis-pw-123", "amqp-pw"):
        assert secret not in shown
    fmt = JsonFormatter(["s3cr3t-pw", "redis-pw-123"])
    record = logging.makeLogRecord(
        {"msg": "dsn %s token %s", "args": ("app:s3cr3t-pw@x", "vb_" + "A" * 32), "levelno": 20}
    )
    line = json.loads(fmt.format(record))
    assert line["message"] == "dsn app:***@x token vb_***"


def test_listen_address_forms() -> None:
    assert parse_listen(":2112") == ("0.0.0.0", 2112)
    assert parse_listen("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_listen("") == ("0.0.0.0", 80)
    for bad in ("notanaddress", ":99999", "host:", ":-1"):
        with pytest.raises(ValueError, match="PROMETHEUS_LISTEN_ADDRESS"):
            parse_listen(bad)
