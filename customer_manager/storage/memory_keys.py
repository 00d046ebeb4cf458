"""The access-key usage, rotation and expiry operations of MemoryStorage
(docs/api.md#access-key-usage-and-rotation), with the SQL backends' rules. ``MemoryKeys`` is a
base of ``MemoryStorage`` and works on its dicts under its lock; ``_notified`` holds the
keys whose expiry notice was sent (the SQL ``tm_expiry_notified``, not in the record).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence

import msgspec

from customer_manager.errors import NotFound
from customer_manager.messages.expiring import ExpiringQuery
from customer_manager.messages.records import SENTINEL, Accesskey, as_stored, next_update
from customer_manager.storage.base import OutboxFn, OutboxMessage, RotateOutboxFn, Rotation
from customer_manager.storage.keys_sql import check_rotatable


class MemoryKeys:
    """See the module doc."""

    _lock: threading.RLock
    _keys: dict[uuid.UUID, Accesskey]
    _hashes: dict[uuid.UUID, str]
    _notified: dict[uuid.UUID, str]

    def _enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        raise NotImplementedError

    def _check_new_key(self, key: Accesskey, token_hash: str) -> None:
        raise NotImplementedError

    def _key(self, key_id: uuid.UUID) -> Accesskey:
        raise NotImplementedError

    def accesskey_touch(self, key_id: uuid.UUID, moment: str) -> Accesskey | None:
        with self._lock:
            current = self._keys.get(key_id)
            if current is None or not _older(current.tm_last_used or "", moment):
                return None
            touched = msgspec.structs.replace(current, tm_last_used=moment)
            self._keys[key_id] = touched
            return touched

    def accesskey_rotate(
        self,
        old_id: uuid.UUID,
        key: Accesskey,
        token_hash: str,
        grace_end: str,
        moment: str,
        outbox: RotateOutboxFn,
    ) -> Rotation:
        stored = as_stored(key)
        with self._lock:
            old = self._key(old_id)
            check_rotatable(old)
            self._check_new_key(stored, token_hash)
            stamp = next_update(old.tm_update, moment)
            previous = msgspec.structs.replace(
                old, rotated_to=stored.id, tm_grace_end=grace_end, tm_update=stamp
            )
            if grace_end <= moment:
                previous = msgspec.structs.replace(previous, tm_delete=stamp)
            messages = outbox(stored, previous)
            self._keys[stored.id] = stored
            self._hashes[stored.id] = token_hash
            self._keys[old_id] = previous
            self._enqueue(messages)
            return Rotation(key=stored, previous=previous)

    def accesskey_end_grace(
        self, key_id: uuid.UUID, moment: str, outbox: OutboxFn[Accesskey]
    ) -> Accesskey | None:
        with self._lock:
            current = self._key(key_id)
            if current.deleted or not current.grace_over(moment):
                return None
            stamp = next_update(current.tm_update, moment)
            gone = msgspec.structs.replace(current, tm_delete=stamp, tm_update=stamp)
            messages = outbox(gone)
            self._keys[key_id] = gone
            self._enqueue(messages)
            return gone

    def accesskey_grace_over(self, moment: str, limit: int) -> list[Accesskey]:
        with self._lock:
            due = [k for k in self._keys.values() if not k.deleted and k.grace_over(moment)]
        due.sort(key=lambda k: (k.tm_grace_end, k.id.bytes))
        return due[:limit]

    def accesskey_expiring(self, query: ExpiringQuery) -> list[Accesskey]:
        with self._lock:
            rows = [k for k in self._keys.values() if self._expiring(k, query)]
        rows.sort(key=lambda k: (k.tm_expire, k.id.bytes))
        return rows[: query.page_size]

    def _expiring(self, key: Accesskey, query: ExpiringQuery) -> bool:
        if key.deleted or key.rotated or not query.start < key.tm_expire <= query.end:
            return False
        if query.customer_id is not None and key.customer_id != query.customer_id:
            return False
        if query.unnotified and key.id in self._notified:
            return False
        if query.after_id is None:
            return True
        cursor = (query.after_expire, query.after_id.bytes)
        return (key.tm_expire, key.id.bytes) > cursor

    def accesskey_notify_expiry(
        self, key_id: uuid.UUID, moment: str, outbox: OutboxFn[Accesskey]
    ) -> Accesskey | None:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None:
                raise NotFound(f"accesskey {key_id} not found", "ACCESSKEY_NOT_FOUND")
            if key_id in self._notified:
                return None
            messages = outbox(key)
            self._notified[key_id] = moment
            self._enqueue(messages)
            return key


def _older(last_used: str, moment: str) -> bool:
    """The monotonic rule of the last-used write: never used, or used before ``moment``."""
    return not last_used or last_used >= SENTINEL or last_used < moment
