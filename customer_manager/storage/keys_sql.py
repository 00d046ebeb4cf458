"""The access-key usage, rotation and expiry operations of SQLStorage
(docs/api.md#access-key-usage-and-rotation, docs/storage.md#schema-version-6).

``KeysSQL`` is a base of ``SQLStorage``; it uses the transaction runner and the shared steps
that SQLStorage defines (declared here so the type checker knows them). "Live" and "not set"
are the SQL edge's marks (``LIVE()``, ``UNSET()``: storage/sqledge.py), never literals.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from customer_manager.errors import FailedPrecondition
from customer_manager.messages.expiring import ExpiringQuery
from customer_manager.messages.records import NIL, Accesskey, next_update
from customer_manager.storage import sqlrows as q
from customer_manager.storage.base import OutboxFn, RotateOutboxFn, Rotation

_K = "customer_accesskeys"
TOUCH = (
    f"UPDATE {_K} SET tm_last_used = %s"
    " WHERE id = %s AND (tm_last_used < %s OR UNSET(tm_last_used))"
)
ROTATE_OLD = (
    f"UPDATE {_K} SET rotated_to = %s, tm_grace_end = %s, tm_update = %s"
    " WHERE id = %s AND rotated_to = %s AND LIVE(tm_delete)"
)
GRACE_OVER = (
    f"{q.ACCESSKEYS.select} WHERE LIVE(tm_delete) AND tm_grace_end <= %s"
    " ORDER BY tm_grace_end, id LIMIT %s"
)
NOTIFY = f"UPDATE {_K} SET tm_expiry_notified = %s WHERE id = %s AND UNSET(tm_expiry_notified)"


def expiring_sql(query: ExpiringQuery) -> tuple[str, list[Any]]:
    """Live, unrotated keys expiring in the window after the cursor, ``(tm_expire, id)``
    ascending (index ``idx_customer_accesskeys_tm_expire``)."""
    where = ["LIVE(tm_delete)", "rotated_to = %s", "tm_expire > %s", "tm_expire <= %s"]
    params: list[Any] = [NIL.bytes, query.start, query.end]
    if query.after_id is not None:
        where.append("tm_expire >= %s AND (tm_expire > %s OR id > %s)")
        params += [query.after_expire, query.after_expire, query.after_id.bytes]
    if query.customer_id is not None:
        where.append("customer_id = %s")
        params.append(query.customer_id.bytes)
    if query.unnotified:
        where.append("UNSET(tm_expiry_notified)")
    sql = f"{q.ACCESSKEYS.select} WHERE {' AND '.join(where)} ORDER BY tm_expire, id LIMIT %s"
    return sql, [*params, query.page_size]


class KeysSQL:
    """See the module doc."""

    for_update: str

    def _run(self, work: Any, noun: str = "customer", write: bool = True) -> Any:
        raise NotImplementedError

    def _get(self, tx: Any, table: Any, row_id: uuid.UUID, lock: bool = False) -> Any:
        raise NotImplementedError

    def _enqueue(self, tx: Any, messages: Any) -> None:
        raise NotImplementedError

    def _soft_delete(
        self, tx: Any, table: Any, row_id: uuid.UUID, stamp: str, outbox: Any
    ) -> tuple[Any, bool]:
        raise NotImplementedError

    def _writes_plain_token(self, tx: Any) -> bool:
        raise NotImplementedError

    def accesskey_touch(self, key_id: uuid.UUID, moment: str) -> Accesskey | None:
        def work(tx: Any) -> Accesskey | None:
            if tx.count(TOUCH, (moment, key_id.bytes, moment)) != 1:
                return None
            row: Accesskey = self._get(tx, q.ACCESSKEYS, key_id)
            tx.written.append(row)
            return row

        result: Accesskey | None = self._run(work, "accesskey")
        return result

    def accesskey_rotate(
        self,
        old_id: uuid.UUID,
        key: Accesskey,
        token_hash: str,
        grace_end: str,
        moment: str,
        outbox: RotateOutboxFn,
    ) -> Rotation:
        plain = key.token
        key = msgspec.structs.replace(key, token="")
        params = q.accesskey_params(key, token_hash)

        def work(tx: Any) -> Rotation:
            old: Accesskey = self._get(tx, q.ACCESSKEYS, old_id, lock=True)
            check_rotatable(old)
            if plain and self._writes_plain_token(tx):
                tx.rows(q.ACCESSKEY_INSERT_PLAIN, [*params, plain])
            else:
                tx.rows(q.ACCESSKEY_INSERT, params)
            stamp = next_update(old.tm_update, moment)
            guard = (key.id.bytes, grace_end, stamp, old_id.bytes, NIL.bytes)
            if tx.count(ROTATE_OLD, guard) != 1:
                raise already_rotated(old_id)
            if grace_end <= moment:
                tx.rows(q.SOFT_DELETE.format(table=_K), (stamp, stamp, old_id.bytes))
            previous: Accesskey = self._get(tx, q.ACCESSKEYS, old_id)
            self._enqueue(tx, outbox(key, previous))
            tx.written.extend((key, previous))
            return Rotation(key=key, previous=previous)

        result: Rotation = self._run(work, "accesskey")
        return result

    def accesskey_end_grace(
        self, key_id: uuid.UUID, moment: str, outbox: OutboxFn[Accesskey]
    ) -> Accesskey | None:
        def work(tx: Any) -> Accesskey | None:
            current: Accesskey = self._get(tx, q.ACCESSKEYS, key_id, lock=True)
            if current.deleted or not current.grace_over(moment):
                return None
            row, _ = self._soft_delete(tx, q.ACCESSKEYS, key_id, moment, outbox)
            deleted: Accesskey = row
            return deleted

        result: Accesskey | None = self._run(work, "accesskey")
        return result

    def accesskey_grace_over(self, moment: str, limit: int) -> list[Accesskey]:
        params = (moment, limit)
        rows: list[Accesskey] = self._run(
            lambda tx: [q.to_accesskey(r) for r in tx.rows(GRACE_OVER, params)], write=False
        )
        return rows

    def accesskey_expiring(self, query: ExpiringQuery) -> list[Accesskey]:
        sql, params = expiring_sql(query)
        rows: list[Accesskey] = self._run(
            lambda tx: [q.to_accesskey(r) for r in tx.rows(sql, params)], write=False
        )
        return rows

    def accesskey_notify_expiry(
        self, key_id: uuid.UUID, moment: str, outbox: OutboxFn[Accesskey]
    ) -> Accesskey | None:
        def work(tx: Any) -> Accesskey | None:
            if tx.count(NOTIFY, (moment, key_id.bytes)) != 1:
                return None
            row: Accesskey = self._get(tx, q.ACCESSKEYS, key_id)
            self._enqueue(tx, outbox(row))
            return row

        result: Accesskey | None = self._run(work, "accesskey")
        return result


def check_rotatable(old: Accesskey) -> None:
    """409 unless ``old`` is live and not rotated (docs/api.md#access-key-rotate)."""
    if old.deleted:
        raise FailedPrecondition(f"accesskey {old.id} is deleted", "ACCESSKEY_DELETED")
    if old.rotated:
        raise already_rotated(old.id)


def already_rotated(key_id: uuid.UUID) -> FailedPrecondition:
    return FailedPrecondition(
        f"accesskey {key_id} was rotated already; its new token cannot be shown again",
        "ACCESSKEY_ALREADY_ROTATED",
    )
