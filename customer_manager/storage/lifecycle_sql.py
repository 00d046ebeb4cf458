"""The lifecycle operations of SQLStorage (docs/lifecycle.md#statuses-and-transitions,
docs/lifecycle.md#schema-version-4, docs/lifecycle.md#routes): conditional transitions,
the sweep selections, signup in one transaction and the ``webhook_secret`` backfill.

``LifecycleSQL`` is a base of ``SQLStorage``; it uses the transaction runner and the shared
steps that SQLStorage defines (declared here so the type checker knows them).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from customer_manager.messages.records import Accesskey, Customer, new_webhook_secret
from customer_manager.storage import sqlrows as q
from customer_manager.storage.base import (
    Deleted,
    Due,
    KeyOutboxFn,
    OutboxMessage,
    SignupOutboxFn,
    Transition,
)

_LIVE = "LIVE(tm_delete)"
DUE_SQL: dict[Due, str] = {
    "unverified": "email_verified = 0 AND status = 'initial' AND tm_create < %s"
    " ORDER BY tm_create, id",
    "frozen_expired": "status = 'frozen' AND tm_deletion_scheduled < %s"
    " ORDER BY tm_deletion_scheduled, id",
}
SECRETLESS = (
    "SELECT id FROM customer_customers WHERE webhook_secret = '' AND LIVE(tm_delete)"
    " ORDER BY id LIMIT 1000"
)
SET_SECRET = (
    "UPDATE customer_customers SET webhook_secret = %s WHERE id = %s AND webhook_secret = ''"
)


class NoMatch(Exception):
    """A transition matched no row: the transaction is rolled back."""


class LifecycleSQL:
    """See the module doc."""

    def _run(self, work: Any, noun: str = "customer", write: bool = True) -> Any:
        raise NotImplementedError

    def _get(self, tx: Any, table: Any, row_id: uuid.UUID, lock: bool = False) -> Any:
        raise NotImplementedError

    def _enqueue(self, tx: Any, messages: Sequence[OutboxMessage]) -> None:
        raise NotImplementedError

    def _revoke_keys(
        self, tx: Any, customer: Customer, now: str, key_outbox: KeyOutboxFn
    ) -> list[Accesskey]:
        raise NotImplementedError

    def customer_transition(
        self, customer_id: uuid.UUID, steps: Sequence[Transition], now: str
    ) -> Deleted | None:
        def work(tx: Any) -> Deleted:
            row: Customer | None = None
            keys: list[Accesskey] = []
            for step in steps:
                sql, params = _transition_sql(step, customer_id, now)
                if tx.count(sql, params) != 1:
                    raise NoMatch
                row = self._get(tx, q.CUSTOMERS, customer_id)
                assert row is not None
                if step.revoke_keys and step.key_outbox is not None:
                    keys += self._revoke_keys(tx, row, now, step.key_outbox)
                self._enqueue(tx, step.outbox(row))
            assert row is not None
            return Deleted(record=row, changed=True, keys=keys)

        try:
            result: Deleted = self._run(work)
        except NoMatch:
            return None
        return result

    def customer_due(
        self, due: Due, cutoff: str, limit: int, exclude: Sequence[uuid.UUID]
    ) -> list[Customer]:
        skip = f" AND id NOT IN ({', '.join(['%s'] * len(exclude))})" if exclude else ""
        sql = f"{q.CUSTOMERS.select} WHERE {_LIVE}{skip} AND {DUE_SQL[due]} LIMIT %s"
        params = [*(i.bytes for i in exclude), cutoff, limit]
        rows: list[Customer] = self._run(
            lambda tx: [q.to_customer(r) for r in tx.rows(sql, params)], write=False
        )
        return rows

    def customer_signup(
        self, customer: Customer, key: Accesskey, token_hash: str, outbox: SignupOutboxFn
    ) -> tuple[Customer, Accesskey]:
        stored = msgspec.structs.replace(key, token="")

        def work(tx: Any) -> tuple[Customer, Accesskey]:
            tx.rows(q.CUSTOMER_INSERT, q.customer_params(customer))
            self._insert_signup_key(tx, stored, token_hash)
            self._enqueue(tx, outbox(customer, stored))
            return customer, stored

        result: tuple[Customer, Accesskey] = self._run(work)
        return result

    def _insert_signup_key(self, tx: Any, key: Accesskey, token_hash: str) -> None:
        """The second insert of a signup (a test may make it fail)."""
        tx.rows(q.ACCESSKEY_INSERT, q.accesskey_params(key, token_hash))

    def _backfill_secrets(self, tx: Any) -> int:
        """docs/lifecycle.md#schema-version-4: give every live customer without a
        ``webhook_secret`` one (idempotent; run
        at every startup, so rows a seed Go instance inserts meanwhile get one too)."""
        done = 0
        while ids := tx.rows(SECRETLESS):
            for (row_id,) in ids:
                done += tx.count(SET_SECRET, (new_webhook_secret(), row_id))
        return done


def _transition_sql(step: Transition, customer_id: uuid.UUID, now: str) -> tuple[str, list[Any]]:
    names = sorted(step.changes)
    sets = "".join(f"{name} = %s, " for name in names)
    where = [f"id = %s AND {_LIVE}"]
    params: list[Any] = [customer_id.bytes]
    if step.status is not None:
        where.append("status = %s")
        params.append(step.status)
    if step.email_verified is not None:
        where.append("email_verified = %s")
        params.append(int(step.email_verified))
    sql = f"UPDATE customer_customers SET {sets}tm_update = %s WHERE {' AND '.join(where)}"
    return sql, [*(q.param(step.changes[n]) for n in names), now, *params]
