"""SQLiteStorage: the embedded default store (docs/configuration.md#embedded-store) on the
stdlib ``sqlite3``.

A file database runs in WAL mode so several instances (several StorageActors, or a CLI next
to a daemon) can share it: writes take the write lock up front (``BEGIN IMMEDIATE``) and wait
up to ``busy_timeout``; still busy after that is ``Unavailable``. UUIDs are 16-byte blobs,
timestamps the 6-digit text form (which sorts and compares correctly as text).
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import time

from customer_manager.errors import Unavailable
from customer_manager.messages.codec import Profile
from customer_manager.storage import sqlrows as q
from customer_manager.storage.sql import SQLStorage, T, Tx, Work
from customer_manager.storage.sqledge import EDGES

BUSY_TIMEOUT_MS = 10_000
CLAIM = (
    "UPDATE customer_outbox SET claim_owner = %s, claim_until = %s WHERE id IN ("
    " SELECT id FROM customer_outbox"
    " WHERE claim_until IS NULL OR claim_until <= %s OR claim_owner = %s"
    " ORDER BY id LIMIT %s)"
)
_UNIQUE = re.compile(r"UNIQUE constraint failed: (.*)")


@functools.lru_cache(maxsize=256)
def _qmark(sql: str) -> str:
    return sql.replace("%s", "?")


class SQLiteStorage(SQLStorage):
    """Storage in a SQLite file (or ``":memory:"``)."""

    dialect = "sqlite"
    nocase = " COLLATE NOCASE"
    for_update = ""  # BEGIN IMMEDIATE already serialises writers
    claim_sql = CLAIM

    def __init__(self, path: str, *, profile: Profile = "seed") -> None:
        self.path = path
        self.edge = EDGES[profile]
        # One owner at a time, but it may be built in one thread and used in another.
        self._conn = sqlite3.connect(
            path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
        self._lock = threading.Lock()
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if path != ":memory:" and not path.startswith("file::memory:"):
            _use_wal(self._conn)
            self._conn.execute("PRAGMA synchronous = NORMAL")

    def ping(self) -> None:
        self._run(lambda tx: tx.rows("SELECT 1"), write=False)

    def close(self) -> None:
        self._conn.close()

    def _run(self, work: Work[T], noun: str = "customer", write: bool = True) -> T:
        with self._lock:
            cursor = self._conn.cursor()
            try:
                if write:
                    cursor.execute("BEGIN IMMEDIATE")
                result = work(Tx(cursor, _qmark, self.edge))
                if self._conn.in_transaction:
                    cursor.execute("COMMIT")
                return result
            except sqlite3.IntegrityError as exc:
                self._rollback()
                match = _UNIQUE.search(str(exc))
                if match is None:
                    raise
                raise q.duplicate(match.group(1), noun) from None
            except sqlite3.OperationalError as exc:
                self._rollback()
                if "locked" in str(exc) or "busy" in str(exc):
                    raise Unavailable(f"sqlite database {self.path} is busy") from None
                raise
            except BaseException:
                self._rollback()
                raise
            finally:
                cursor.close()

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (a persistent setting). Several storage actors open the file
    at once, and SQLite answers a concurrent switch with "locked" at once, without waiting
    for the busy timeout: so check first, and retry briefly."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
