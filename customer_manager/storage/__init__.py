"""Storage backends behind the ``Storage`` protocol (docs/storage.md#backends)."""

from __future__ import annotations

from customer_manager.config import Settings, parse_dsn
from customer_manager.storage.base import Storage


def open_storage(settings: Settings) -> Storage:
    """MySQL when ``database_dsn`` is set, else SQLite at ``sqlite_path``
    (docs/configuration.md#embedded-store).
    Connecting is lazy for MySQL (the first call connects); call ``ping()`` to check."""
    if settings.database_dsn:
        from customer_manager.storage.mysql import MySQLStorage

        return MySQLStorage(
            parse_dsn(settings.database_dsn),
            plain_tokens=settings.expand_plain_tokens,
            profile=settings.wire_profile,
        )
    from customer_manager.storage.sqlite import SQLiteStorage

    return SQLiteStorage(settings.sqlite_path, profile=settings.wire_profile)
