"""MySQLStorage: production storage on MySQL/MariaDB with mysql-connector-python (its C
extension when the entry point loaded it: ``customer_manager/tricks/mysql_cext.py``).

One connection per instance (one StorageActor), autocommit off, one transaction per
operation, READ COMMITTED. A lost connection is dropped and re-opened on the next use; an
operation that failed before its COMMIT was sent is retried once on a fresh connection (the
server rolled it back); a connection lost at COMMIT is OutcomeUnknown (503, not retried).
Errors: 1062 → AlreadyExists, unreachable/lost server or lock timeouts → Unavailable naming
host:port (never the password).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import mysql.connector

from customer_manager.config import MySQLParams
from customer_manager.errors import OutcomeUnknown, ServiceError, Unavailable
from customer_manager.messages.codec import Profile
from customer_manager.storage import sqlrows as q
from customer_manager.storage import takeover
from customer_manager.storage.sql import SQLStorage, T, Tx, Work
from customer_manager.storage.sqledge import EDGES
from customer_manager.tricks import mysql_direct

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3
# A statement that gets no byte back for this long fails (Unavailable) and drops the
# connection, so a storage actor is never stuck on a peer that vanished (no FIN, no RST),
# which without it lasts until TCP gives up (~15 min). Above innodb_lock_wait_timeout.
IO_TIMEOUT = 15
SESSION_SETUP = (
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION innodb_lock_wait_timeout = 10",
)
CLAIM = (
    "UPDATE customer_outbox SET claim_owner = %s, claim_until = %s"
    " WHERE claim_until IS NULL OR claim_until <= %s OR claim_owner = %s ORDER BY id LIMIT %s"
)
MIGRATE_LOCK = "SELECT GET_LOCK('customer_manager_migrate', 60)"
MIGRATE_UNLOCK = "SELECT RELEASE_LOCK('customer_manager_migrate')"
DUPLICATE = 1062
REFUSED = {1044: "access denied to the database", 1045: "access denied", 1049: "unknown database"}
BUSY = frozenset({1205, 1213})  # lock wait timeout, deadlock
LOST = frozenset({2002, 2003, 2005, 2006, 2013, 2055, 3024, 4031})  # unreachable, gone, timed out
_KEY = re.compile(r"for key '([^']*)'")
# With the C extension, commit() and rollback() raise its MySQLInterfaceError, which is not a
# mysql.connector.Error (statements have theirs translated by the cursor).
DRIVER_ERRORS: tuple[type[Exception], ...] = (mysql.connector.Error,)
if mysql.connector.HAVE_CEXT:
    from _mysql_connector import MySQLInterfaceError  # type: ignore[import-not-found]

    DRIVER_ERRORS += (MySQLInterfaceError,)


def _same(sql: str) -> str:
    return sql


class MySQLStorage(SQLStorage):
    """Storage in MySQL/MariaDB (the schema shared with the Go service)."""

    dialect = "mysql"
    claim_sql = CLAIM
    commit_sql = "COMMIT"

    def __init__(
        self,
        params: MySQLParams,
        *,
        pure: bool = False,
        plain_tokens: bool = False,
        profile: Profile = "seed",
    ) -> None:
        """``pure``: use the driver's pure-Python protocol even when its C extension is
        loaded (the tests run the contract on both). ``plain_tokens``: the takeover's expand
        phase, new keys also get Go's plain ``token`` until the contract step
        (``storage.takeover``)."""
        self.params = params
        self.edge = EDGES[profile]
        self._pure = pure
        self._plain_tokens = plain_tokens
        self._go_columns: bool | None = None  # Go's ``token`` column exists (asked once)
        self._where = params.unix_socket or f"{params.host}:{params.port}"
        self._conn: Any = None
        # One cursor for the connection's life: ``conn.cursor()`` pings the server each time.
        self._cursor: Any = None
        self._write: mysql_direct.Writer | None = None  # statements without rows

    def ping(self) -> None:
        self._run(lambda tx: tx.rows("SELECT 1"), write=False)

    def close(self) -> None:
        self._drop()

    def migrate(self) -> int:
        def work(tx: Tx) -> int:
            tx.rows(MIGRATE_LOCK)
            try:
                return self._migrate(tx)
            finally:
                tx.rows(MIGRATE_UNLOCK)

        return self._run(work)

    def contract(self, quiet_seconds: float) -> list[Any]:
        """The contract step (``takeover.contract``), under the migration lock."""

        def work(tx: Tx) -> list[Any]:
            tx.rows(MIGRATE_LOCK)
            try:
                return takeover.contract(tx, quiet_seconds)
            finally:
                tx.rows(MIGRATE_UNLOCK)

        return self._run(work)

    def _preflight(self, tx: Tx) -> None:
        takeover.preflight(tx)

    def _finds_plain_token(self, tx: Tx) -> bool:
        if self._go_columns is None:
            self._go_columns = takeover.has_column(tx, "customer_accesskeys", "token")
        return self._go_columns

    def _writes_plain_token(self, tx: Tx) -> bool:
        return self._plain_tokens and not takeover.contracted(tx)

    # -- connection -------------------------------------------------------------------------

    def _connect(self) -> tuple[Any, Any, mysql_direct.Writer | None]:
        p = self.params
        where: dict[str, Any] = (
            {"unix_socket": p.unix_socket} if p.unix_socket else {"host": p.host, "port": p.port}
        )
        try:
            conn = mysql.connector.connect(
                user=p.user,
                password=p.password,
                database=p.database,
                connection_timeout=CONNECT_TIMEOUT,
                read_timeout=IO_TIMEOUT,
                write_timeout=IO_TIMEOUT,
                autocommit=False,
                charset="utf8mb4",
                collation="utf8mb4_general_ci",
                use_pure=self._pure or not mysql.connector.HAVE_CEXT,
                **where,
            )
            cursor = conn.cursor()
            for statement in SESSION_SETUP:
                cursor.execute(statement)
            # Read now: the driver queries it lazily inside the first execute with
            # parameters, where a failure comes out as a ProgrammingError.
            _ = conn.sql_mode
        except mysql.connector.Error as exc:
            raise self._unavailable(exc) from None
        return conn, cursor, mysql_direct.writer(conn)

    def _drop(self) -> None:
        conn, self._conn, self._cursor, self._write = self._conn, None, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # the connection is gone either way
                log.debug("closing a broken MySQL connection failed", exc_info=True)

    def _unavailable(self, exc: mysql.connector.Error) -> Unavailable:
        if exc.errno in REFUSED:
            return Unavailable(
                f"MySQL refused {self.params.safe()}: {REFUSED[exc.errno]} (error {exc.errno});"
                " check the user, password and database in DATABASE_DSN"
            )
        return Unavailable(f"MySQL at {self._where} is unavailable (error {exc.errno})")

    # -- transactions -----------------------------------------------------------------------

    def _run(self, work: Work[T], noun: str = "customer", write: bool = True) -> T:
        for attempt in (1, 2):
            reused = self._conn is not None
            if self._conn is None:
                self._conn, self._cursor, self._write = self._connect()
            tx = Tx(self._cursor, _same, self.edge, self._write)
            try:
                result = work(tx)
            except DRIVER_ERRORS as exc:
                error = self._translate(exc, noun)
                if isinstance(error, Unavailable) and reused and attempt == 1:
                    continue  # the server rolled the transaction back: retry once, reconnected
                raise error from None
            except BaseException:
                self._rollback()
                raise
            self._commit(tx)
            return result
        raise AssertionError("unreachable")

    def _commit(self, tx: Tx) -> None:
        """COMMIT; if the connection fails there, the outcome is unknown: drop the connection
        and raise OutcomeUnknown naming the records written (never retried)."""
        try:
            self._conn.commit()
        except DRIVER_ERRORS as exc:
            self._drop()
            errno = getattr(exc, "errno", None)
            raise OutcomeUnknown(
                f"MySQL at {self._where}: connection lost at COMMIT (error {errno}),"
                " the change may or may not be stored",
                tx.written,
            ) from None

    def _translate(self, exc: Exception, noun: str) -> ServiceError | Exception:
        """Map a driver error (rolling back, or dropping a lost connection)."""
        if not isinstance(exc, mysql.connector.Error):  # the C extension's own error
            self._drop()
            return Unavailable(f"MySQL at {self._where} is unavailable ({exc})")
        if exc.errno == DUPLICATE:
            self._rollback()
            match = _KEY.search(exc.msg or "")
            return q.duplicate(match.group(1) if match else "", noun)
        if exc.errno in BUSY:
            self._rollback()
            return Unavailable(f"MySQL at {self._where} is busy (error {exc.errno}), try again")
        if exc.errno in LOST or isinstance(
            exc, mysql.connector.InterfaceError | mysql.connector.OperationalError
        ):
            self._drop()
            return self._unavailable(exc)
        self._rollback()
        return exc

    def _rollback(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rollback()
        except DRIVER_ERRORS:
            self._drop()
