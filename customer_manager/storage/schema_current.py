"""The schema steps of the ``current`` profile (docs/profiles.md#schema).

Today's VoIPbin database belongs to bin-dbscheme-manager: it already has every column this
service reads, NULL means "not set" and ``tm_delete IS NULL`` means active. So here a
migration adds only objects the Go service ignores (every Go statement names its columns):
our outbox, version and reply tables, the ``email_active`` column with its UNIQUE index
(active-email uniqueness with NULL-is-active semantics) and a UNIQUE index on
``token_hash``. It never runs the seed steps or the lifecycle data updates. On an empty
database (a new deployment, tests, the embedded store) the two tables are created first, as
upstream's migrations leave them. The same additive DDL is in docs/profiles.md as an
Alembic revision, for operators who let bin-dbscheme-manager apply it.
"""

from __future__ import annotations

from customer_manager.storage.schema import (
    MYSQL_OUTBOX,
    MYSQL_REPLIES,
    SQLITE_KEY_INDEXES,
    SQLITE_OUTBOX,
    SQLITE_REPLIES,
    Dialect,
    Step,
    mysql_add,
)
from customer_manager.storage.schema_v6 import CURRENT_MYSQL_V6, CURRENT_SQLITE_V6

_OPTS = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"

# upstream's tables at HEAD, in their physical column order
MYSQL_CUSTOMERS = (
    "CREATE TABLE IF NOT EXISTS customer_customers ("
    " id binary(16) NOT NULL PRIMARY KEY,"
    " name varchar(255), detail text, email varchar(255), phone_number varchar(255),"
    " address varchar(1024), webhook_method varchar(255), webhook_uri varchar(1023),"
    " webhook_secret varchar(255) NOT NULL DEFAULT '',"
    " billing_account_id binary(16),"
    " email_verified tinyint(1) NOT NULL DEFAULT 0,"
    " status varchar(16) NOT NULL DEFAULT 'active',"
    " terms_agreed_version varchar(64) NOT NULL DEFAULT '',"
    " terms_agreed_ip varchar(45) NOT NULL DEFAULT '',"
    " tm_deletion_scheduled datetime(6) NULL DEFAULT NULL,"
    " tm_create datetime(6), tm_update datetime(6) NULL, tm_delete datetime(6) NULL,"
    " metadata json NULL DEFAULT NULL,"
    " identity_verification_status varchar(32) NOT NULL DEFAULT 'none',"
    " INDEX idx_customer_customers_status (status))" + _OPTS
)
MYSQL_ACCESSKEYS = (
    "CREATE TABLE IF NOT EXISTS customer_accesskeys ("
    " id binary(16) NOT NULL PRIMARY KEY, customer_id binary(16),"
    " name varchar(255), detail text, tm_expire datetime(6),"
    " tm_create datetime(6), tm_update datetime(6) NULL, tm_delete datetime(6) NULL,"
    " token_hash char(64), token_prefix varchar(16),"
    " INDEX idx_customer_accesskeys_customer_id (customer_id),"
    " INDEX idx_customer_accesskeys_token_hash (token_hash))" + _OPTS
)
EMAIL_ACTIVE = (
    "varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
    " AS (IF(tm_delete IS NULL AND email <> '', email, NULL)) STORED"
)

_MYSQL: dict[int, list[Step]] = {
    1: [MYSQL_CUSTOMERS, MYSQL_ACCESSKEYS, MYSQL_OUTBOX],
    2: [
        mysql_add("customer_customers", "column", "email_active", EMAIL_ACTIVE),
        mysql_add(
            "customer_customers",
            "index",
            "uq_customer_customers_email_active",
            "UNIQUE (email_active)",
        ),
    ],
    3: [
        mysql_add(
            "customer_accesskeys",
            "index",
            "uq_customer_accesskeys_token_hash",
            "UNIQUE (token_hash)",
        )
    ],
    4: [],  # the lifecycle's columns are upstream's own
    5: list(MYSQL_REPLIES),
    6: CURRENT_MYSQL_V6,  # access-key usage and rotation: ours, additive (schema_v6.py)
}

_SQLITE: dict[int, list[Step]] = {
    1: [
        "CREATE TABLE IF NOT EXISTS customer_customers ("
        " id BLOB NOT NULL PRIMARY KEY,"
        " name TEXT, detail TEXT, email TEXT, phone_number TEXT, address TEXT,"
        " webhook_method TEXT, webhook_uri TEXT, webhook_secret TEXT NOT NULL DEFAULT '',"
        " billing_account_id BLOB, email_verified INTEGER NOT NULL DEFAULT 0,"
        " status TEXT NOT NULL DEFAULT 'active', terms_agreed_version TEXT NOT NULL DEFAULT '',"
        " terms_agreed_ip TEXT NOT NULL DEFAULT '', tm_deletion_scheduled TEXT NULL,"
        " tm_create TEXT, tm_update TEXT NULL, tm_delete TEXT NULL, metadata TEXT NULL,"
        " identity_verification_status TEXT NOT NULL DEFAULT 'none')",
        "CREATE UNIQUE INDEX IF NOT EXISTS uq_customer_customers_email_active"
        " ON customer_customers (email COLLATE NOCASE)"
        " WHERE tm_delete IS NULL AND email <> ''",
        "CREATE INDEX IF NOT EXISTS idx_customer_customers_tm_create"
        " ON customer_customers (tm_create, id)",
        "CREATE INDEX IF NOT EXISTS idx_customer_customers_status ON customer_customers (status)",
        "CREATE TABLE IF NOT EXISTS customer_accesskeys ("
        " id BLOB NOT NULL PRIMARY KEY, customer_id BLOB, name TEXT, detail TEXT,"
        " tm_expire TEXT, tm_create TEXT, tm_update TEXT NULL, tm_delete TEXT NULL,"
        " token_hash TEXT, token_prefix TEXT)",
        *SQLITE_KEY_INDEXES,
        *SQLITE_OUTBOX,
    ],
    2: [],
    3: [],
    4: [],
    5: list(SQLITE_REPLIES),
    6: CURRENT_SQLITE_V6,
}

MIGRATIONS: dict[Dialect, dict[int, list[Step]]] = {"mysql": _MYSQL, "sqlite": _SQLITE}
