"""MemoryStorage: the in-process fake that satisfies the Storage protocol
(docs/storage.md#backends).

It follows the same rules as the SQL backends (the contract suite runs against all three):
active-email uniqueness (case-insensitive, empty emails never collide), token-hash
uniqueness, soft delete, the customer-delete cascade and the outbox. Unlike the SQL
backends it is thread-safe (one lock), so tests may share one instance between actors.
Every mutation computes its new state and outbox messages first and commits afterwards, so
a failing ``outbox`` function leaves nothing behind (as a rolled-back transaction would).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from customer_manager.errors import AlreadyExists, NotFound
from customer_manager.messages.query import ListQuery
from customer_manager.messages.records import Accesskey, Customer, as_stored, next_update, now
from customer_manager.storage.base import (
    ACCESSKEY_MUTABLE,
    CUSTOMER_MUTABLE,
    SCHEMA_VERSION,
    CustomerInsert,
    Deleted,
    OutboxEntry,
    OutboxFn,
    OutboxMessage,
    OutboxStats,
)
from customer_manager.storage.memory_keys import MemoryKeys
from customer_manager.storage.memory_lifecycle import MemoryLifecycle
from customer_manager.storage.memory_query import fold
from customer_manager.storage.memory_query import page as _page
from customer_manager.storage.replies import ReplyLog, deletion_of, encode, record_of, remembered

T = TypeVar("T", Customer, Accesskey)


class _Lease(msgspec.Struct, kw_only=True):
    message: OutboxMessage
    created: str
    owner: str = ""
    until: float = 0.0


class MemoryStorage(MemoryLifecycle, MemoryKeys):
    """Customers, access keys and the outbox in dicts, guarded by one re-entrant lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._replies = ReplyLog()
        self._customers: dict[uuid.UUID, Customer] = {}
        self._keys: dict[uuid.UUID, Accesskey] = {}
        self._hashes: dict[uuid.UUID, str] = {}
        self._notified: dict[uuid.UUID, str] = {}
        self._outbox: dict[int, _Lease] = {}
        self._next_outbox_id = 1
        self._version = 0
        self.closed = False

    # -- lifecycle --------------------------------------------------------------------------

    def ping(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def migrate(self) -> int:
        self._version = SCHEMA_VERSION
        return self._version

    def schema_version(self) -> int:
        return self._version

    # -- helpers ----------------------------------------------------------------------------

    def _enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        stamp = now()
        for message in messages:
            self._outbox[self._next_outbox_id] = _Lease(message=message, created=stamp)
            self._next_outbox_id += 1

    def _check_new(self, customer: Customer, batch: Container[object] = ()) -> None:
        """AlreadyExists if the customer's id is taken (stored, or in ``batch``) or its email
        is used by an active customer."""
        if customer.id in self._customers or customer.id in batch:
            raise AlreadyExists(f"customer {customer.id} exists", "CUSTOMER_ALREADY_EXISTS")
        self._check_email(customer)

    def _check_email(self, customer: Customer) -> None:
        if customer.deleted or not customer.email:
            return
        folded = fold(customer.email)
        for other in self._customers.values():
            if other.id != customer.id and not other.deleted and fold(other.email) == folded:
                raise AlreadyExists(
                    f"email {customer.email} is already used", "EMAIL_ALREADY_EXISTS"
                )

    def _customer(self, customer_id: uuid.UUID) -> Customer:
        found = self._customers.get(customer_id)
        if found is None:
            raise NotFound(f"customer {customer_id} not found", "CUSTOMER_NOT_FOUND")
        return found

    def _key(self, key_id: uuid.UUID) -> Accesskey:
        found = self._keys.get(key_id)
        if found is None:
            raise NotFound(f"accesskey {key_id} not found", "ACCESSKEY_NOT_FOUND")
        return found

    # -- customers --------------------------------------------------------------------------

    @remembered(record_of(Customer))
    def customer_insert(self, customer: Customer, outbox: OutboxFn[Customer]) -> Customer:
        with self._lock:
            self._check_new(customer)
            messages = outbox(customer)
            self._customers[customer.id] = customer
            self._enqueue(messages)
            return customer

    def customer_inserts(self, inserts: Sequence[CustomerInsert]) -> list[Customer]:
        with self._lock:
            messages = [i.outbox(i.customer) for i in inserts]
            seen: set[object] = set()  # the batch's ids, request keys and active emails
            for i in inserts:
                customer = i.customer
                if i.request_key and (
                    i.request_key in seen or self._replies.get(i.request_key) is not None
                ):
                    raise AlreadyExists(f"request {i.request_key} ran already")
                self._check_new(customer, seen)
                email = ("email", fold(customer.email))
                if customer.email and not customer.deleted and email in seen:
                    raise AlreadyExists(f"email {customer.email} twice", "EMAIL_ALREADY_EXISTS")
                seen.update({customer.id, email, *([i.request_key] if i.request_key else [])})
            for i, outbox in zip(inserts, messages, strict=True):
                self._customers[i.customer.id] = i.customer
                self._enqueue(outbox)
                if i.request_key:
                    self._replies.put(i.request_key, encode(i.customer))
            return [i.customer for i in inserts]

    def customer_get(self, customer_id: uuid.UUID) -> Customer:
        with self._lock:
            return self._customer(customer_id)

    def customer_list(self, query: ListQuery) -> list[Customer]:
        with self._lock:
            rows = list(self._customers.values())
        return _page(rows, query, {})

    @remembered(record_of(Customer))
    def customer_update(
        self,
        customer_id: uuid.UUID,
        changes: Mapping[str, Any],
        now: str,
        outbox: OutboxFn[Customer],
    ) -> Customer:
        _check_changes(changes, CUSTOMER_MUTABLE)
        with self._lock:
            current = self._customer(customer_id)
            stamp = next_update(current.tm_update, now)
            updated = msgspec.structs.replace(current, **changes, tm_update=stamp)
            self._check_email(updated)
            messages = outbox(updated)
            self._customers[customer_id] = updated
            self._enqueue(messages)
            return updated

    @remembered(deletion_of(Customer))
    def customer_delete(
        self,
        customer_id: uuid.UUID,
        now: str,
        outbox: OutboxFn[Customer],
        key_outbox: OutboxFn[Accesskey],
    ) -> Deleted:
        with self._lock:
            current = self._customer(customer_id)
            changed = not current.deleted
            gone = _gone(current, now) if changed else current  # deleted before: keys revoked
            messages = list(outbox(gone)) if changed else []
            keys = [
                _gone(k, now)
                for k in _page_all(self._keys.values())
                if k.customer_id == customer_id and not k.deleted
            ]
            for key in keys:
                messages.extend(key_outbox(key))
            self._customers[customer_id] = gone
            self._keys.update((k.id, k) for k in keys)
            self._enqueue(messages)
            return Deleted(record=gone, changed=changed, keys=keys)

    # -- access keys ------------------------------------------------------------------------

    def accesskey_insert(
        self, key: Accesskey, token_hash: str, outbox: OutboxFn[Accesskey]
    ) -> Accesskey:
        stored = as_stored(key)
        with self._lock:
            self._check_new_key(stored, token_hash)
            messages = outbox(stored)
            self._keys[key.id] = stored
            self._hashes[key.id] = token_hash
            self._enqueue(messages)
            return stored

    def accesskey_get(self, key_id: uuid.UUID) -> Accesskey:
        with self._lock:
            return self._key(key_id)

    def accesskey_list(self, query: ListQuery) -> list[Accesskey]:
        with self._lock:
            rows, hashes = list(self._keys.values()), dict(self._hashes)
        return _page(rows, query, hashes)

    @remembered(record_of(Accesskey))
    def accesskey_update(
        self,
        key_id: uuid.UUID,
        changes: Mapping[str, Any],
        now: str,
        outbox: OutboxFn[Accesskey],
    ) -> Accesskey:
        _check_changes(changes, ACCESSKEY_MUTABLE)
        with self._lock:
            current = self._key(key_id)
            stamp = next_update(current.tm_update, now)
            updated = msgspec.structs.replace(current, **changes, tm_update=stamp)
            messages = outbox(updated)
            self._keys[key_id] = updated
            self._enqueue(messages)
            return updated

    @remembered(deletion_of(Accesskey))
    def accesskey_delete(self, key_id: uuid.UUID, now: str, outbox: OutboxFn[Accesskey]) -> Deleted:
        with self._lock:
            current = self._key(key_id)
            if current.deleted:
                return Deleted(record=current, changed=False)
            gone = _gone(current, now)
            messages = outbox(gone)
            self._keys[key_id] = gone
            self._enqueue(messages)
            return Deleted(record=gone, changed=True)

    def orphaned_key_owners(self) -> list[uuid.UUID]:
        with self._lock:
            owners = {k.customer_id for k in self._keys.values() if not k.deleted}
            return sorted(o for o in owners if o in self._customers and self._customers[o].deleted)

    # -- outbox -----------------------------------------------------------------------------

    def outbox_claim(
        self, owner: str, limit: int, lease_seconds: float, *, reclaim_own: bool = False
    ) -> list[OutboxEntry]:
        moment = time.time()
        claimed: list[OutboxEntry] = []
        with self._lock:
            for entry_id in sorted(self._outbox):
                if len(claimed) >= limit:
                    break
                lease = self._outbox[entry_id]
                mine = reclaim_own and lease.owner == owner
                if lease.owner and not mine and lease.until > moment:
                    continue
                lease.owner, lease.until = owner, moment + lease_seconds
                claimed.append(OutboxEntry(id=entry_id, message=lease.message))
        return claimed

    def outbox_done(self, ids: Sequence[int]) -> None:
        with self._lock:
            for entry_id in ids:
                self._outbox.pop(entry_id, None)

    def outbox_size(self) -> int:
        return self.outbox_stats().size

    def outbox_stats(self) -> OutboxStats:
        with self._lock:
            first = next(iter(self._outbox.values()), None)  # ids ascend in insertion order
            return OutboxStats(size=len(self._outbox), oldest=first.created if first else "")


def _gone(record: T, stamp: str) -> T:
    """``record`` soft-deleted by a write stamped ``stamp`` (a customer's status too)."""
    stamp = next_update(record.tm_update, stamp)
    if isinstance(record, Customer):
        return msgspec.structs.replace(record, tm_delete=stamp, tm_update=stamp, status="deleted")
    return msgspec.structs.replace(record, tm_delete=stamp, tm_update=stamp)


def _page_all(keys: Iterable[Accesskey]) -> list[Accesskey]:
    """Keys in creation order (the cascade's outbox order)."""
    return sorted(keys, key=lambda k: (k.tm_create, k.id.bytes))


def _check_changes(changes: Mapping[str, Any], allowed: frozenset[str]) -> None:
    wrong = set(changes) - allowed
    if wrong:
        raise ValueError(f"not updatable: {sorted(wrong)}")
