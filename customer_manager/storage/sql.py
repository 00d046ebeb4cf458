"""SQLStorage: the Storage operations shared by MySQL and SQLite (docs/storage.md#sql-semantics).

A subclass supplies the connection, the transaction runner ``_run`` (which maps driver errors
to ours) and a few dialect bits: the case-insensitive email suffix, row locking and the outbox
claim statement. Every operation is one transaction; a mutation stores its outbox messages
in the same commit (docs/storage.md#outbox), computed from the inserted record (every
column is written from it, so it is not read back) or from the row as re-read after an
update or delete.
"""

from __future__ import annotations

import abc
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from customer_manager.errors import NotFound
from customer_manager.messages.query import ListQuery
from customer_manager.messages.records import Accesskey, Customer, as_stored, next_update, now, ts
from customer_manager.storage import replies, schema
from customer_manager.storage import sqlrows as q
from customer_manager.storage.base import (
    PURGE_EVERY,
    REPLY_WINDOW,
    CustomerInsert,
    Deleted,
    KeyOutboxFn,
    OutboxEntry,
    OutboxFn,
    OutboxMessage,
    OutboxStats,
)
from customer_manager.storage.keys_sql import KeysSQL
from customer_manager.storage.lifecycle_sql import LifecycleSQL
from customer_manager.storage.sqledge import EDGES, SeedEdge

T = TypeVar("T")
R = TypeVar("R", Customer, Accesskey)


class Tx:
    """One transaction's cursor: ``%s`` SQL in, plain row tuples out. ``written``: the
    records the transaction inserted, updated or deleted (as they are after it). ``write``
    runs a statement that returns no rows and returns its row count (default: the cursor's
    ``execute`` and ``rowcount``)."""

    def __init__(
        self,
        cursor: Any,
        convert: Callable[[str], str],
        edge: SeedEdge = EDGES["seed"],
        write: Callable[[str, Sequence[Any]], int] | None = None,
    ) -> None:
        self._cursor = cursor
        self._convert = convert
        self._edge = edge
        self._write = write or self._execute
        self.statements = 0
        self.written: list[Customer | Accesskey] = []

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.statements += 1
        cursor, edge = self._cursor, self._edge
        cursor.execute(self._convert(edge.render(sql)), edge.bind(params))
        if cursor.description is None:
            return []
        return edge.read(cursor, [tuple(row) for row in cursor.fetchall()])

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a write (a statement that returns no rows); the number of rows it changed."""
        self.statements += 1
        return self._write(self._convert(self._edge.render(sql)), self._edge.bind(params))

    def _execute(self, sql: str, params: Sequence[Any]) -> int:
        self._cursor.execute(sql, params)
        return int(self._cursor.rowcount)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        found = self.rows(sql, params)
        return found[0][0] if found else None


Work = Callable[[Tx], T]


class SQLStorage(LifecycleSQL, KeysSQL, abc.ABC):
    """Storage over a DB-API connection; see the module docstring."""

    dialect: schema.Dialect
    edge: SeedEdge = EDGES["seed"]  # the wire profile's SQL edge (sqledge.py)
    nocase = ""  # suffix making an email comparison case-insensitive
    for_update = " FOR UPDATE"
    # (owner, until, now, owner, limit): lease the oldest entries that are unclaimed, whose
    # lease expired, or that the owner leased already (a batch whose publish failed)
    claim_sql: str
    _next_purge = 0.0  # monotonic time of the next purge of old write results
    # Run after each migrated version, so an interrupted migration resumes at the next one
    # ("" where the whole migration is one transaction, as in SQLite).
    commit_sql = ""

    @abc.abstractmethod
    def _run(self, work: Work[T], noun: str = "customer", write: bool = True) -> T:
        """Run ``work`` in one transaction (commit, or roll back and map the error)."""

    # -- schema -----------------------------------------------------------------------------

    def migrate(self) -> int:
        return self._run(self._migrate)

    def _migrate(self, tx: Tx) -> int:
        current = self._version(tx)
        todo = schema.pending(self.dialect, current, self.edge.profile)
        if todo:
            self._preflight(tx)  # before anything is created
        tx.rows(schema.VERSION_TABLE[self.dialect])
        for version, steps in todo:
            for step in steps:
                self._apply(tx, step)
            tx.rows(schema.VERSION_SET, (version, now()))
            if self.commit_sql:
                tx.rows(self.commit_sql)
            current = version
        if current >= 4 and schema.BACKFILLS_SECRETS[self.edge.profile]:  # a v4 column
            self._backfill_secrets(tx)
        return current

    def _preflight(self, tx: Tx) -> None:
        """Raise (changing nothing) if a pending step would fail on the data present."""
        return None

    def _apply(self, tx: Tx, step: schema.Step) -> None:
        if isinstance(step, str):
            tx.rows(step)
            return
        has = int(tx.scalar(schema.HAS[self.dialect][step.kind], (step.table, step.name)))
        if bool(has) == step.present:
            tx.rows(step.ddl)

    def schema_version(self) -> int:
        return self._run(self._version, write=False)

    def _version(self, tx: Tx) -> int:
        if not tx.scalar(schema.VERSION_TABLE_EXISTS[self.dialect]):
            return 0
        return int(tx.scalar(schema.VERSION_GET))

    # -- shared steps -----------------------------------------------------------------------

    def _enqueue(self, tx: Tx, messages: Sequence[OutboxMessage]) -> None:
        """Store ``messages`` in the outbox, in order (one INSERT)."""
        if messages:
            stamp = now()
            params = [p for m in messages for p in (m.exchange, m.routing_key, m.body, stamp)]
            tx.count(q.rows_of(q.OUTBOX_INSERT, len(messages)), params)

    def _get(self, tx: Tx, table: q.Table[R], row_id: uuid.UUID, lock: bool = False) -> R:
        sql = f"{table.select} WHERE id = %s" + (self.for_update if lock else "")
        found = tx.rows(sql, (row_id.bytes,))
        if not found:
            raise NotFound(f"{table.noun} {row_id} not found", table.not_found)
        return table.reader(found[0])

    def _once(self, work: Work[T], noun: str, request_key: str, replay: replies.Replay) -> T:
        """``work`` remembered under ``request_key`` (replies.once)."""
        return replies.once(self._run, work, noun, request_key, replay)

    def _insert(
        self,
        table: q.Table[R],
        sql: str,
        record: R,
        params: list[Any],
        outbox: OutboxFn[R],
        request_key: str = "",
    ) -> R:
        def work(tx: Tx) -> R:
            tx.count(sql, params)
            self._enqueue(tx, outbox(record))
            tx.written.append(record)
            return record  # every column was written from it: no need to read the row back

        return self._once(work, table.noun, request_key, replies.record_of(table.record))

    def _writes_plain_token(self, tx: Tx) -> bool:
        """Also store a new key's plain token (the takeover's expand phase, MySQL only)."""
        return False

    def _finds_plain_token(self, tx: Tx) -> bool:
        """A token filter also matches a plain ``token`` column (keys Go inserted)."""
        return False

    def _update(
        self,
        table: q.Table[R],
        row_id: uuid.UUID,
        changes: Mapping[str, Any],
        stamp: str,
        outbox: OutboxFn[R],
        request_key: str = "",
    ) -> R:
        wrong = set(changes) - table.mutable
        if wrong:
            raise ValueError(f"not updatable: {sorted(wrong)}")
        names = sorted(changes)
        values: list[Any] = [q.param(changes[n]) for n in names]

        def work(tx: Tx) -> R:
            current = self._get(tx, table, row_id, lock=True)
            stamped = next_update(current.tm_update, stamp)
            tx.count(q.update_sql(table, names), [*values, stamped, row_id.bytes])
            row = self._get(tx, table, row_id)
            self._enqueue(tx, outbox(row))
            tx.written.append(row)
            return row

        return self._once(work, table.noun, request_key, replies.record_of(table.record))

    def _soft_delete(
        self, tx: Tx, table: q.Table[R], row_id: uuid.UUID, stamp: str, outbox: OutboxFn[R]
    ) -> tuple[R, bool]:
        current = self._get(tx, table, row_id, lock=True)
        if current.deleted:
            return current, False
        stamp = next_update(current.tm_update, stamp)
        sql = q.SOFT_DELETE_CUSTOMER if table is q.CUSTOMERS else q.SOFT_DELETE
        tx.count(sql.format(table=table.name), (stamp, stamp, row_id.bytes))
        row = self._get(tx, table, row_id)
        self._enqueue(tx, outbox(row))
        tx.written.append(row)
        return row, True

    def _list(self, table: q.Table[R], query: ListQuery) -> list[R]:
        def work(tx: Tx) -> list[R]:
            plain = query.filters.token is not None and self._finds_plain_token(tx)
            sql, params = q.list_sql(table, query, self.nocase, plain)
            return [table.reader(r) for r in tx.rows(sql, params)]

        return self._run(work, write=False)

    # -- customers --------------------------------------------------------------------------

    def customer_insert(
        self, customer: Customer, outbox: OutboxFn[Customer], *, request_key: str = ""
    ) -> Customer:
        params = q.customer_params(customer)
        return self._insert(q.CUSTOMERS, q.CUSTOMER_INSERT, customer, params, outbox, request_key)

    def customer_inserts(self, inserts: Sequence[CustomerInsert]) -> list[Customer]:
        """One multi-row INSERT per table and one COMMIT for all (bench/RESULTS.md, sixth
        session): a duplicate email, a repeated request key or any other failure rolls back
        all of them."""
        customers = [i.customer for i in inserts]
        messages = [m for i in inserts for m in i.outbox(i.customer)]
        keyed = [i for i in inserts if i.request_key]

        def work(tx: Tx) -> list[Customer]:
            stamp = now()
            tx.count(
                q.rows_of(q.CUSTOMER_INSERT, len(customers)),
                [p for c in customers for p in q.customer_params(c)],
            )
            self._enqueue(tx, messages)
            if keyed:
                tx.count(
                    q.rows_of(q.REPLY_PUT, len(keyed)),
                    [p for i in keyed for p in (i.request_key, replies.encode(i.customer), stamp)],
                )
            tx.written.extend(customers)
            return customers

        return self._run(work)

    def customer_get(self, customer_id: uuid.UUID) -> Customer:
        return self._run(lambda tx: self._get(tx, q.CUSTOMERS, customer_id), write=False)

    def customer_list(self, query: ListQuery) -> list[Customer]:
        return self._list(q.CUSTOMERS, query)

    def customer_update(
        self,
        customer_id: uuid.UUID,
        changes: Mapping[str, Any],
        now: str,
        outbox: OutboxFn[Customer],
        *,
        request_key: str = "",
    ) -> Customer:
        return self._update(q.CUSTOMERS, customer_id, changes, now, outbox, request_key)

    def customer_delete(
        self,
        customer_id: uuid.UUID,
        now: str,
        outbox: OutboxFn[Customer],
        key_outbox: OutboxFn[Accesskey],
        *,
        request_key: str = "",
    ) -> Deleted:
        def work(tx: Tx) -> Deleted:
            row, changed = self._soft_delete(tx, q.CUSTOMERS, customer_id, now, outbox)
            keys = self._revoke_keys(tx, row, now, lambda _c, key: key_outbox(key))
            return Deleted(record=row, changed=changed, keys=keys)

        return self._once(work, "customer", request_key, replies.deletion_of(Customer))

    def _revoke_keys(
        self, tx: Tx, customer: Customer, now: str, key_outbox: KeyOutboxFn
    ) -> list[Accesskey]:
        """Soft-delete the customer's live access keys (docs/api.md#customer-delete), oldest
        first."""
        ids = tx.rows(q.ACTIVE_KEYS_OF_CUSTOMER + self.for_update, (customer.id.bytes,))

        def outbox(key: Accesskey) -> Sequence[OutboxMessage]:
            return key_outbox(customer, key)

        return [self._soft_delete(tx, q.ACCESSKEYS, q.read_uuid(i), now, outbox)[0] for (i,) in ids]

    # -- access keys ------------------------------------------------------------------------

    def accesskey_insert(
        self, key: Accesskey, token_hash: str, outbox: OutboxFn[Accesskey]
    ) -> Accesskey:
        plain = key.token
        key = as_stored(key)  # the token is not in the record
        params = q.accesskey_params(key, token_hash)

        def work(tx: Tx) -> Accesskey:
            if plain and self._writes_plain_token(tx):
                tx.rows(q.ACCESSKEY_INSERT_PLAIN, [*params, plain])
            else:
                tx.rows(q.ACCESSKEY_INSERT, params)
            self._enqueue(tx, outbox(key))
            return key

        return self._run(work, "accesskey")

    def accesskey_get(self, key_id: uuid.UUID) -> Accesskey:
        return self._run(lambda tx: self._get(tx, q.ACCESSKEYS, key_id), write=False)

    def accesskey_list(self, query: ListQuery) -> list[Accesskey]:
        return self._list(q.ACCESSKEYS, query)

    def accesskey_update(
        self,
        key_id: uuid.UUID,
        changes: Mapping[str, Any],
        now: str,
        outbox: OutboxFn[Accesskey],
        *,
        request_key: str = "",
    ) -> Accesskey:
        return self._update(q.ACCESSKEYS, key_id, changes, now, outbox, request_key)

    def accesskey_delete(
        self, key_id: uuid.UUID, now: str, outbox: OutboxFn[Accesskey], *, request_key: str = ""
    ) -> Deleted:
        def work(tx: Tx) -> Deleted:
            row, changed = self._soft_delete(tx, q.ACCESSKEYS, key_id, now, outbox)
            return Deleted(record=row, changed=changed)

        return self._once(work, "accesskey", request_key, replies.deletion_of(Accesskey))

    def orphaned_key_owners(self) -> list[uuid.UUID]:
        rows = self._run(lambda tx: tx.rows(q.ORPHANED_KEY_OWNERS), write=False)
        return [q.read_uuid(i) for (i,) in rows]

    # -- outbox -----------------------------------------------------------------------------

    def outbox_claim(
        self, owner: str, limit: int, lease_seconds: float, *, reclaim_own: bool = False
    ) -> list[OutboxEntry]:
        moment = datetime.now(UTC)
        stamp, until = ts(moment), ts(moment + timedelta(seconds=lease_seconds))

        def work(tx: Tx) -> list[OutboxEntry]:
            if time.monotonic() >= self._next_purge:  # not a DELETE with every relay
                tx.count(q.REPLIES_PURGE, (ts(moment - timedelta(seconds=REPLY_WINDOW)),))
                self._next_purge = time.monotonic() + PURGE_EVERY
            own = owner if reclaim_own else ""  # a leased row always names a non-empty owner
            tx.count(self.claim_sql, (owner, until, stamp, own, limit))
            return [
                OutboxEntry(
                    id=int(i),
                    message=OutboxMessage(exchange=e, routing_key=k, body=bytes(b)),
                )
                for i, e, k, b in tx.rows(q.OUTBOX_CLAIMED, (owner, until))
            ]

        return self._run(work)

    def outbox_done(self, ids: Sequence[int]) -> None:
        if ids:
            sql = q.OUTBOX_DONE.format(marks=", ".join(["%s"] * len(ids)))
            self._run(lambda tx: tx.count(sql, [int(i) for i in ids]))

    def outbox_size(self) -> int:
        return self.outbox_stats().size

    def outbox_stats(self) -> OutboxStats:
        def work(tx: Tx) -> OutboxStats:
            ((size, oldest),) = tx.rows(q.OUTBOX_STATS)
            return OutboxStats(size=int(size), oldest=q.read_ts(oldest))

        return self._run(work, write=False)
