"""Versioned schema migrations for MySQL/MariaDB and SQLite (docs/storage.md#migrations).

``MIGRATIONS[dialect][version]`` is an ordered list of steps; ``customer_schema_version``
records each version as it completes (the version advances step by step). Every step is
idempotent, so a migration interrupted half-way (MySQL DDL commits implicitly) resumes at the
version it was in when re-run. Taking over a Go database (expand/contract, README "Switching
from the Go service") adds a pre-flight check and an explicit contract step: ``takeover``.

MySQL adopts an existing Go schema: the tables are created with the Go columns only if
missing, and the columns and indexes we add are added only where missing (``Ensure``), so a
Go instance and a Python instance can share the tables during a migration. Active-email
uniqueness (docs/storage.md#email-uniqueness) is a STORED generated column ``email_active``
(the email while active, else NULL; NULLs never collide) with a UNIQUE index; its
``utf8mb4_general_ci`` collation makes it case-insensitive. SQLite uses a partial unique
index with ``COLLATE NOCASE``. Empty emails never collide (they are invalid on create
anyway).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from customer_manager.messages.codec import Profile

Dialect = Literal["mysql", "sqlite"]


class Ensure(msgspec.Struct, frozen=True):
    """Run ``ddl`` only if ``table`` lacks (``present=False``) or has (``present=True``)
    the column or index ``name``."""

    table: str
    kind: Literal["column", "index"]
    name: str
    ddl: str
    present: bool = False


Step = str | Ensure

VERSION_TABLE: dict[Dialect, str] = {
    "mysql": "CREATE TABLE IF NOT EXISTS customer_schema_version ("
    " version int NOT NULL PRIMARY KEY, tm_apply datetime(6) NOT NULL) ENGINE=InnoDB",
    "sqlite": "CREATE TABLE IF NOT EXISTS customer_schema_version ("
    " version INTEGER NOT NULL PRIMARY KEY, tm_apply TEXT NOT NULL)",
}
VERSION_GET = "SELECT COALESCE(MAX(version), 0) FROM customer_schema_version"
VERSION_SET = "INSERT INTO customer_schema_version (version, tm_apply) VALUES (%s, %s)"
VERSION_TABLE_EXISTS: dict[Dialect, str] = {
    "mysql": "SELECT COUNT(*) FROM information_schema.tables"
    " WHERE table_schema = DATABASE() AND table_name = 'customer_schema_version'",
    "sqlite": "SELECT COUNT(*) FROM sqlite_master"
    " WHERE type = 'table' AND name = 'customer_schema_version'",
}
MYSQL_HAS: dict[str, str] = {
    "column": "SELECT COUNT(*) FROM information_schema.columns"
    " WHERE table_schema = DATABASE() AND table_name = %s AND column_name = %s",
    "index": "SELECT COUNT(*) FROM information_schema.statistics"
    " WHERE table_schema = DATABASE() AND table_name = %s AND index_name = %s",
}
SQLITE_HAS: dict[str, str] = {
    "column": "SELECT COUNT(*) FROM pragma_table_info(%s) WHERE name = %s",
    "index": "SELECT COUNT(*) FROM sqlite_master"
    " WHERE type = 'index' AND tbl_name = %s AND name = %s",
}
HAS: dict[Dialect, dict[str, str]] = {"mysql": MYSQL_HAS, "sqlite": SQLITE_HAS}

# Hash the plain tokens Go wrote (and keep them: Go replicas may still look them up).
HASH_PLAIN_TOKENS = (
    "UPDATE customer_accesskeys SET token_hash = SHA2(token, 256), token_prefix = LEFT(token, 11)"
    " WHERE token_hash IS NULL AND token IS NOT NULL AND token <> ''"
)

_MYSQL_TABLE_OPTS = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
_ACTIVE = "'9999-01-01 00:00:00.000000'"


def mysql_add(table: str, kind: Literal["column", "index"], name: str, spec: str) -> Ensure:
    what = "COLUMN" if kind == "column" else spec.split("(")[0].strip() or "INDEX"
    body = spec if kind == "column" else spec[len(what) :].strip()
    return Ensure(table, kind, name, f"ALTER TABLE {table} ADD {what} {name} {body}")


MYSQL_OUTBOX = (
    "CREATE TABLE IF NOT EXISTS customer_outbox ("
    " id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " exchange varchar(255) NOT NULL, routing_key varchar(255) NOT NULL,"
    " body mediumblob NOT NULL, tm_create datetime(6) NOT NULL,"
    " claim_owner varchar(255) NULL, claim_until datetime(6) NULL,"
    " INDEX idx_customer_outbox_claim (claim_until))" + _MYSQL_TABLE_OPTS
)
SQLITE_KEY_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS uq_customer_accesskeys_token_hash"
    " ON customer_accesskeys (token_hash)",
    "CREATE INDEX IF NOT EXISTS idx_customer_accesskeys_customer_id"
    " ON customer_accesskeys (customer_id)",
    "CREATE INDEX IF NOT EXISTS idx_customer_accesskeys_tm_create"
    " ON customer_accesskeys (tm_create, id)",
)
SQLITE_OUTBOX = (
    "CREATE TABLE IF NOT EXISTS customer_outbox ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " exchange TEXT NOT NULL, routing_key TEXT NOT NULL, body BLOB NOT NULL,"
    " tm_create TEXT NOT NULL, claim_owner TEXT, claim_until TEXT)",
    "CREATE INDEX IF NOT EXISTS idx_customer_outbox_claim ON customer_outbox (claim_until)",
)

_MYSQL_V1: list[Step] = [
    "CREATE TABLE IF NOT EXISTS customer_customers ("
    " id binary(16) NOT NULL PRIMARY KEY,"
    " name varchar(255), detail text, email varchar(255), phone_number varchar(255),"
    " address varchar(1024), webhook_method varchar(255), webhook_uri varchar(1023),"
    " billing_account_id binary(16),"
    " tm_create datetime(6), tm_update datetime(6), tm_delete datetime(6))" + _MYSQL_TABLE_OPTS,
    mysql_add(
        "customer_customers", "index", "idx_customer_customers_tm_create", "INDEX (tm_create, id)"
    ),
    "CREATE TABLE IF NOT EXISTS customer_accesskeys ("
    " id binary(16) NOT NULL PRIMARY KEY, customer_id binary(16),"
    " name varchar(255), detail text, tm_expire datetime(6),"
    " tm_create datetime(6), tm_update datetime(6), tm_delete datetime(6))" + _MYSQL_TABLE_OPTS,
    mysql_add(
        "customer_accesskeys",
        "column",
        "token_hash",
        "char(64) CHARACTER SET ascii COLLATE ascii_bin NULL",
    ),
    mysql_add("customer_accesskeys", "column", "token_prefix", "varchar(16) NULL"),
    mysql_add(
        "customer_accesskeys", "index", "uq_customer_accesskeys_token_hash", "UNIQUE (token_hash)"
    ),
    mysql_add(
        "customer_accesskeys",
        "index",
        "idx_customer_accesskeys_customer_id",
        "INDEX (customer_id)",
    ),
    mysql_add(
        "customer_accesskeys", "index", "idx_customer_accesskeys_tm_create", "INDEX (tm_create, id)"
    ),
    MYSQL_OUTBOX,
]

_SQLITE_V1: list[Step] = [
    "CREATE TABLE IF NOT EXISTS customer_customers ("
    " id BLOB NOT NULL PRIMARY KEY,"
    " name TEXT, detail TEXT, email TEXT, phone_number TEXT, address TEXT,"
    " webhook_method TEXT, webhook_uri TEXT, billing_account_id BLOB,"
    " tm_create TEXT, tm_update TEXT, tm_delete TEXT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS uq_customer_customers_email_active"
    " ON customer_customers (email COLLATE NOCASE)"
    f" WHERE tm_delete >= {_ACTIVE} AND email <> ''",
    "CREATE INDEX IF NOT EXISTS idx_customer_customers_tm_create"
    " ON customer_customers (tm_create, id)",
    "CREATE TABLE IF NOT EXISTS customer_accesskeys ("
    " id BLOB NOT NULL PRIMARY KEY, customer_id BLOB, name TEXT, detail TEXT,"
    " token_hash TEXT, token_prefix TEXT,"
    " tm_expire TEXT, tm_create TEXT, tm_update TEXT, tm_delete TEXT)",
    *SQLITE_KEY_INDEXES,
    *SQLITE_OUTBOX,
]

# v2: active-email uniqueness. A Go-era table may hold duplicates (Go never checked updates):
# ``takeover.preflight`` lists them before any step runs, so this step never half-applies.
_MYSQL_V2: list[Step] = [
    mysql_add(
        "customer_customers",
        "column",
        "email_active",
        "varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        f" AS (IF(tm_delete >= {_ACTIVE} AND email <> '', email, NULL)) STORED",
    ),
    mysql_add(
        "customer_customers", "index", "uq_customer_customers_email_active", "UNIQUE (email_active)"
    ),
]

# v3 (expand): hash the plain tokens of a Go-era table (Go keeps writing ``token`` until the
# contract step; keys it inserts later are found by either column, see sqlrows). The marks
# table records the contract step (``takeover.contract``).
_MYSQL_V3: list[Step] = [
    Ensure("customer_accesskeys", "column", "token", HASH_PLAIN_TOKENS, present=True),
    "CREATE TABLE IF NOT EXISTS customer_schema_marks ("
    " name varchar(64) NOT NULL PRIMARY KEY, tm_apply datetime(6) NOT NULL)" + _MYSQL_TABLE_OPTS,
]

# v5: the results of write requests, so a repeat is answered as its first run was
# (storage/replies.py); entries older than REPLY_WINDOW are purged with the outbox claims.
MYSQL_REPLIES: tuple[Step, ...] = (
    "CREATE TABLE IF NOT EXISTS customer_replies ("
    " request_key char(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,"
    " reply mediumblob NOT NULL, tm_create datetime(6) NOT NULL,"
    " INDEX idx_customer_replies_tm_create (tm_create))" + _MYSQL_TABLE_OPTS,
)
SQLITE_REPLIES: tuple[Step, ...] = (
    "CREATE TABLE IF NOT EXISTS customer_replies ("
    " request_key TEXT NOT NULL PRIMARY KEY, reply BLOB NOT NULL, tm_create TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idx_customer_replies_tm_create ON customer_replies (tm_create)",
)


def _migrations() -> dict[Dialect, dict[int, list[Step]]]:
    # v4: the customer lifecycle (schema_v4.py, docs/lifecycle.md#schema-version-4)
    from customer_manager.storage.schema_v4 import MYSQL_V4, SQLITE_V4

    # v6: access-key usage, rotation and expiry notices (schema_v6.py,
    # docs/storage.md#schema-version-6)
    from customer_manager.storage.schema_v6 import MYSQL_V6, SQLITE_V6

    return {
        "mysql": {
            1: _MYSQL_V1,
            2: _MYSQL_V2,
            3: _MYSQL_V3,
            4: MYSQL_V4,
            5: list(MYSQL_REPLIES),
            6: MYSQL_V6,
        },
        # SQLite never held Go data: v1 has it all; 2 and 3 keep the numbers aligned.
        "sqlite": {
            1: _SQLITE_V1,
            2: [],
            3: [],
            4: SQLITE_V4,
            5: list(SQLITE_REPLIES),
            6: SQLITE_V6,
        },
    }


MIGRATIONS = _migrations()
# the webhook_secret backfill of every start (schema_v4.py) belongs to the seed profile
BACKFILLS_SECRETS: dict[Profile, bool] = {"seed": True, "current": False}


def pending(
    dialect: Dialect, current: int, profile: Profile = "seed"
) -> list[tuple[int, list[Step]]]:
    """The migrations after ``current``, in order, for the wire profile's database
    (docs/profiles.md#schema: ``current`` has its own, additive steps)."""
    from customer_manager.storage.schema_current import MIGRATIONS as CURRENT

    steps = (CURRENT if profile == "current" else MIGRATIONS)[dialect]
    return [(version, steps[version]) for version in sorted(steps) if version > current]
