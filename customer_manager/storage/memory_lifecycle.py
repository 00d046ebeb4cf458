"""The lifecycle operations of MemoryStorage (docs/lifecycle.md), with the SQL backends' rules: the
same guards, all-or-nothing transitions, one atomic signup. ``MemoryLifecycle`` is a base of
``MemoryStorage`` and works on its dicts under its lock.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from customer_manager.errors import AlreadyExists
from customer_manager.messages.records import SENTINEL, Accesskey, Customer, as_stored
from customer_manager.storage.base import (
    Deleted,
    Due,
    KeyOutboxFn,
    OutboxMessage,
    SignupOutboxFn,
    Transition,
)


class MemoryLifecycle:
    """See the module doc."""

    _lock: threading.RLock
    _customers: dict[uuid.UUID, Customer]
    _keys: dict[uuid.UUID, Accesskey]
    _hashes: dict[uuid.UUID, str]

    def _enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        raise NotImplementedError

    def _check_email(self, customer: Customer) -> None:
        raise NotImplementedError

    def customer_transition(
        self, customer_id: uuid.UUID, steps: Sequence[Transition], now: str
    ) -> Deleted | None:
        with self._lock:
            row = self._customers.get(customer_id)
            messages: list[OutboxMessage] = []
            keys: dict[uuid.UUID, Accesskey] = {}
            for step in steps:
                if row is None or not _guard(row, step):
                    return None
                row = msgspec.structs.replace(row, **step.changes, tm_update=now)
                if step.revoke_keys and step.key_outbox is not None:
                    keys.update(self._revoked(row, now, step.key_outbox, messages))
                messages.extend(step.outbox(row))
            if row is None:
                return None
            self._customers[customer_id] = row
            self._keys.update(keys)
            self._enqueue(messages)
            return Deleted(record=row, changed=True, keys=list(keys.values()))

    def _revoked(
        self, customer: Customer, now: str, outbox: KeyOutboxFn, messages: list[OutboxMessage]
    ) -> dict[uuid.UUID, Accesskey]:
        live = sorted(
            (k for k in self._keys.values() if k.customer_id == customer.id and not k.deleted),
            key=lambda k: (k.tm_create, k.id.bytes),
        )
        gone = [msgspec.structs.replace(k, tm_delete=now, tm_update=now) for k in live]
        for key in gone:
            messages.extend(outbox(customer, key))
        return {k.id: k for k in gone}

    def customer_due(
        self, due: Due, cutoff: str, limit: int, exclude: Sequence[uuid.UUID]
    ) -> list[Customer]:
        with self._lock:
            rows = [c for c in self._customers.values() if not c.deleted and c.id not in exclude]
        if due == "unverified":
            found = [
                c
                for c in rows
                if not c.email_verified and c.status == "initial" and c.tm_create < cutoff
            ]
            found.sort(key=lambda c: (c.tm_create, c.id.bytes))
        else:
            found = [c for c in rows if c.status == "frozen" and c.tm_deletion_scheduled < cutoff]
            found.sort(key=lambda c: (c.tm_deletion_scheduled, c.id.bytes))
        return found[:limit]

    def customer_signup(
        self, customer: Customer, key: Accesskey, token_hash: str, outbox: SignupOutboxFn
    ) -> tuple[Customer, Accesskey]:
        stored = as_stored(key)
        with self._lock:
            if customer.id in self._customers:
                raise AlreadyExists(f"customer {customer.id} exists", "CUSTOMER_ALREADY_EXISTS")
            self._check_email(customer)
            self._check_new_key(stored, token_hash)
            messages = outbox(customer, stored)
            self._customers[customer.id] = customer
            self._keys[stored.id] = stored
            self._hashes[stored.id] = token_hash
            self._enqueue(messages)
            return customer, stored

    def _check_new_key(self, key: Accesskey, token_hash: str) -> None:
        """The unique id and token hash of a key to insert."""
        if key.id in self._keys:
            raise AlreadyExists(f"accesskey {key.id} exists", "ACCESSKEY_ALREADY_EXISTS")
        if token_hash in self._hashes.values():
            raise AlreadyExists("token already exists", "TOKEN_ALREADY_EXISTS")


def _guard(row: Customer, step: Transition) -> bool:
    checks: list[Any] = [row.tm_delete == SENTINEL]
    if step.status is not None:
        checks.append(row.status == step.status)
    if step.email_verified is not None:
        checks.append(row.email_verified == step.email_verified)
    return all(checks)
