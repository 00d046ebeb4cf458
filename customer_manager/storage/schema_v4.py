"""Migration version 4: the customer lifecycle columns (docs/lifecycle.md#schema-version-4).

Each column and index is added only where missing (``Ensure``), so a database that already
has some of them (an interrupted run, or a schema shared with an upstream Go instance) is
completed, not broken. The defaults are ours (F3): ``email_verified`` 1 and
``tm_deletion_scheduled`` at the sentinel, so a seed Go instance inserting only its 12
columns creates a verified, active customer that no sweep touches. The two data steps run
once, with the version that records them: existing soft-deleted rows become ``deleted``,
active rows are grandfathered as identity ``verified``.

The ``webhook_secret`` backfill is not here: it runs at every startup (``SQLStorage``).
"""

from __future__ import annotations

from typing import Literal

from customer_manager.storage.schema import Dialect, Ensure, Step

_T = "customer_customers"
_SENTINEL = "'9999-01-01 00:00:00.000000'"

# name, MySQL type and default, SQLite type and default
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("webhook_secret", "varchar(255) NOT NULL DEFAULT ''", "TEXT NOT NULL DEFAULT ''"),
    ("email_verified", "tinyint(1) NOT NULL DEFAULT 1", "INTEGER NOT NULL DEFAULT 1"),
    ("status", "varchar(16) NOT NULL DEFAULT 'active'", "TEXT NOT NULL DEFAULT 'active'"),
    (
        "identity_verification_status",
        "varchar(32) NOT NULL DEFAULT 'none'",
        "TEXT NOT NULL DEFAULT 'none'",
    ),
    ("terms_agreed_version", "varchar(64) NOT NULL DEFAULT ''", "TEXT NOT NULL DEFAULT ''"),
    ("terms_agreed_ip", "varchar(45) NOT NULL DEFAULT ''", "TEXT NOT NULL DEFAULT ''"),
    ("metadata", "json NULL DEFAULT NULL", "TEXT NULL DEFAULT NULL"),
    (
        "tm_deletion_scheduled",
        f"datetime(6) NOT NULL DEFAULT {_SENTINEL}",
        f"TEXT NOT NULL DEFAULT {_SENTINEL}",
    ),
)
_INDEXES = (
    ("idx_customer_customers_status_sched", "status, tm_deletion_scheduled"),
    ("idx_customer_customers_unverified", "email_verified, status, tm_create"),
)
DATA_STEPS: tuple[str, ...] = (
    f"UPDATE {_T} SET status = 'deleted' WHERE tm_delete IS NULL OR tm_delete < {_SENTINEL}",
    f"UPDATE {_T} SET identity_verification_status = 'verified' WHERE status = 'active'",
)


def _steps(dialect: Dialect) -> list[Step]:
    which: Literal[1, 2] = 1 if dialect == "mysql" else 2
    steps: list[Step] = [
        Ensure(_T, "column", c[0], f"ALTER TABLE {_T} ADD COLUMN {c[0]} {c[which]}")
        for c in _COLUMNS
    ]
    steps += [
        Ensure(_T, "index", name, f"CREATE INDEX {name} ON {_T} ({columns})")
        for name, columns in _INDEXES
    ]
    return steps + list(DATA_STEPS)


MYSQL_V4 = _steps("mysql")
SQLITE_V4 = _steps("sqlite")
