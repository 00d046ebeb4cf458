"""Migration version 6: access-key usage, rotation and expiry notices
(docs/storage.md#schema-version-6).

Five columns and two indexes on ``customer_accesskeys``, each added only where missing
(``Ensure``). The defaults mean "not set" (never used, not rotated, no grace period, no
expiry notice sent), so rows a Go instance inserts with its own columns only are plain keys.
No data step: every existing key starts unused and unrotated.
"""

from __future__ import annotations

from typing import Literal

from customer_manager.storage.schema import Dialect, Ensure, Step

_T = "customer_accesskeys"
_SENTINEL = "'9999-01-01 00:00:00.000000'"
_NIL_MYSQL = "0x00000000000000000000000000000000"
_NIL_SQLITE = "X'00000000000000000000000000000000'"

# name, MySQL type and default, SQLite type and default
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    (
        "tm_last_used",
        f"datetime(6) NOT NULL DEFAULT {_SENTINEL}",
        f"TEXT NOT NULL DEFAULT {_SENTINEL}",
    ),
    (
        "rotated_from",
        f"binary(16) NOT NULL DEFAULT {_NIL_MYSQL}",
        f"BLOB NOT NULL DEFAULT {_NIL_SQLITE}",
    ),
    (
        "rotated_to",
        f"binary(16) NOT NULL DEFAULT {_NIL_MYSQL}",
        f"BLOB NOT NULL DEFAULT {_NIL_SQLITE}",
    ),
    (
        "tm_grace_end",
        f"datetime(6) NOT NULL DEFAULT {_SENTINEL}",
        f"TEXT NOT NULL DEFAULT {_SENTINEL}",
    ),
    (
        "tm_expiry_notified",
        f"datetime(6) NOT NULL DEFAULT {_SENTINEL}",
        f"TEXT NOT NULL DEFAULT {_SENTINEL}",
    ),
)
_INDEXES = (
    ("idx_customer_accesskeys_tm_grace_end", "tm_grace_end"),
    ("idx_customer_accesskeys_tm_expire", "tm_expire, id"),
)


def _steps(dialect: Dialect, columns: tuple[tuple[str, str, str], ...] = _COLUMNS) -> list[Step]:
    which: Literal[1, 2] = 1 if dialect == "mysql" else 2
    steps: list[Step] = [
        Ensure(_T, "column", c[0], f"ALTER TABLE {_T} ADD COLUMN {c[0]} {c[which]}")
        for c in columns
    ]
    return steps + [
        Ensure(_T, "index", name, f"CREATE INDEX {name} ON {_T} ({cols})")
        for name, cols in _INDEXES
    ]


MYSQL_V6 = _steps("mysql")
SQLITE_V6 = _steps("sqlite")

# The ``current`` profile (docs/profiles.md#schema): the same objects, additive, with NULL
# as "not set" for the times (the UUID links keep the nil UUID, as Go's binary ids do).
_CURRENT_TIME = ("datetime(6) NULL DEFAULT NULL", "TEXT NULL DEFAULT NULL")
_CURRENT_COLUMNS = tuple(
    (name, *(_CURRENT_TIME if name.startswith("tm_") else (mysql, sqlite)))
    for name, mysql, sqlite in _COLUMNS
)

CURRENT_MYSQL_V6 = _steps("mysql", _CURRENT_COLUMNS)
CURRENT_SQLITE_V6 = _steps("sqlite", _CURRENT_COLUMNS)
