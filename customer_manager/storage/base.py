"""The Storage port: what the actors need from a database (docs/storage.md#backends).

Every backend (MySQL, SQLite, memory) satisfies ``Storage`` and passes one contract suite.
Implementations are *not* thread-safe: each StorageActor owns one instance (one connection).

Writes are transactional with their outbox messages (docs/storage.md#outbox): a mutation calls the
given ``outbox`` function with the record as re-read inside the transaction and stores the
returned messages in the same commit. A relay publishes and then removes them.

A write given a ``request_key`` (what identifies the request: ``messages.ops.request_key``)
stores its result with the change, and a repeat of that key within REPLY_WINDOW returns the
stored result instead of writing again (issue 18 #3): a deletion as ``Deleted(changed=False)``.

Errors raised (from ``customer_manager.errors``): ``NotFound`` (no such row),
``AlreadyExists`` (active email or token hash taken; reason ``EMAIL_ALREADY_EXISTS`` /
``TOKEN_ALREADY_EXISTS``), ``Unavailable`` (database unreachable; message names the host,
never the password). Anything else is a bug.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import msgspec

from customer_manager.messages.bodies import AccesskeyUpdateBody, CustomerFields
from customer_manager.messages.expiring import ExpiringQuery
from customer_manager.messages.query import ListQuery
from customer_manager.messages.records import Accesskey, Customer

SCHEMA_VERSION = 6
REPLY_WINDOW = 600.0  # seconds a write's result is kept for repeats of its request
PURGE_EVERY = REPLY_WINDOW / 10  # seconds between purges of older results (SQL backends)


class OutboxMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One AMQP publish to make later: ``exchange`` ("" = default) and ``routing_key``."""

    exchange: str
    routing_key: str = ""
    body: bytes


class OutboxEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A claimed outbox row: its id (ascending = write order) and the message."""

    id: int
    message: OutboxMessage


class OutboxStats(msgspec.Struct, frozen=True, kw_only=True):
    """The entries not yet published: how many, and when the oldest of them was written (a
    wire timestamp, UTC; "" when there is none)."""

    size: int
    oldest: str = ""


R = TypeVar("R", Customer, Accesskey)
OutboxFn = Callable[[R], Sequence[OutboxMessage]]

# Columns that update() may change, per table (everything else is fixed after insert).
CUSTOMER_MUTABLE = frozenset(CustomerFields.__struct_fields__) | {
    "billing_account_id",
    "metadata",
    "identity_verification_status",
}
ACCESSKEY_MUTABLE = frozenset(AccesskeyUpdateBody.__struct_fields__)


class Deleted(msgspec.Struct, frozen=True, kw_only=True):
    """Result of a soft delete. ``changed`` is False when the row was already deleted (then
    it was not written and has no outbox message). ``keys`` are the access keys that a
    customer delete soft-deleted with it (docs/storage.md#soft-delete), also when the
    customer was deleted already (keys of a tenant the Go service deleted)."""

    record: Customer | Accesskey
    changed: bool
    keys: list[Accesskey] = []


class Rotation(msgspec.Struct, frozen=True, kw_only=True):
    """Result of a rotation: the new key (without its token) and the old one as rotated
    (deleted as well when its grace period is 0)."""

    key: Accesskey
    previous: Accesskey


KeyOutboxFn = Callable[[Customer, Accesskey], Sequence[OutboxMessage]]
RotateOutboxFn = Callable[[Accesskey, Accesskey], Sequence[OutboxMessage]]  # (new, previous)
SignupOutboxFn = Callable[[Customer, Accesskey], Sequence[OutboxMessage]]
Due = Literal["unverified", "frozen_expired"]


@dataclass(frozen=True)
class Transition:
    """One conditional update of a customer (docs/lifecycle.md#statuses-and-transitions): set
    ``changes`` and ``tm_update``
    WHERE the row is live (``tm_delete`` at the sentinel) and, when given, has ``status`` /
    ``email_verified``. ``outbox`` gets the row as re-read after the update;
    ``revoke_keys`` also soft-deletes the customer's live access keys (as a delete does), each with
    ``key_outbox(customer, key)``."""

    changes: Mapping[str, Any]
    outbox: OutboxFn[Customer]
    status: str | None = None
    email_verified: bool | None = None
    revoke_keys: bool = False
    key_outbox: KeyOutboxFn | None = field(default=None)
    operation: str = "update"  # the ``db_operation_*`` metric label (docs/lifecycle.md#metrics)


@dataclass(frozen=True)
class CustomerInsert:
    """The arguments of one ``customer_insert`` (for ``customer_inserts``)."""

    customer: Customer
    outbox: OutboxFn[Customer]
    request_key: str = ""


class Storage(Protocol):
    """Persistence for customers, access keys and the outbox."""

    def ping(self) -> None: ...
    def close(self) -> None: ...
    def migrate(self) -> int:
        """Apply pending migrations (idempotent); return the schema version now in force."""
        ...

    def schema_version(self) -> int:
        """The applied schema version, 0 for an empty database."""
        ...

    # customers
    def customer_insert(
        self, customer: Customer, outbox: OutboxFn[Customer], *, request_key: str = ""
    ) -> Customer: ...
    def customer_inserts(self, inserts: Sequence[CustomerInsert]) -> list[Customer]:
        """Every insert in one transaction, or none of them: the first failure is raised and
        nothing is stored (the caller then runs each alone for its own answer)."""
        ...

    def customer_get(self, customer_id: uuid.UUID) -> Customer: ...
    def customer_list(self, query: ListQuery) -> list[Customer]: ...
    def customer_update(
        self,
        customer_id: uuid.UUID,
        changes: Mapping[str, Any],
        now: str,
        outbox: OutboxFn[Customer],
        *,
        request_key: str = "",
    ) -> Customer:
        """Set ``changes`` (keys from CUSTOMER_MUTABLE) and ``tm_update``; works on deleted
        rows too (as in Go). NotFound if there is no such row."""
        ...

    def customer_delete(
        self,
        customer_id: uuid.UUID,
        now: str,
        outbox: OutboxFn[Customer],
        key_outbox: OutboxFn[Accesskey],
        *,
        request_key: str = "",
    ) -> Deleted:
        """Soft-delete the customer and, in the same transaction, its active access keys."""
        ...

    # the lifecycle (docs/lifecycle.md)
    def customer_transition(
        self, customer_id: uuid.UUID, steps: Sequence[Transition], now: str
    ) -> Deleted | None:
        """Apply ``steps`` in order in one transaction; if one of them matches no row, roll
        everything back and return None (a concurrent change won). Otherwise the customer
        as last re-read, with the keys revoked (``changed`` is True)."""
        ...

    def customer_due(
        self, due: Due, cutoff: str, limit: int, exclude: Sequence[uuid.UUID]
    ) -> list[Customer]:
        """Live customers a sweep must process, oldest first, at most ``limit``, none of
        ``exclude``: ``unverified`` = initial, unverified, created before ``cutoff``;
        ``frozen_expired`` = frozen since before ``cutoff``."""
        ...

    def customer_signup(
        self, customer: Customer, key: Accesskey, token_hash: str, outbox: SignupOutboxFn
    ) -> tuple[Customer, Accesskey]:
        """Insert the customer, then its access key, with ``outbox(customer, key)``, in one
        transaction (F7): any failure leaves nothing."""
        ...

    # access keys
    def accesskey_insert(
        self, key: Accesskey, token_hash: str, outbox: OutboxFn[Accesskey]
    ) -> Accesskey:
        """Insert ``key`` (its ``token`` field is ignored: only hash and prefix are stored)."""
        ...

    def accesskey_get(self, key_id: uuid.UUID) -> Accesskey: ...
    def accesskey_list(self, query: ListQuery) -> list[Accesskey]: ...
    def accesskey_update(
        self,
        key_id: uuid.UUID,
        changes: Mapping[str, Any],
        now: str,
        outbox: OutboxFn[Accesskey],
        *,
        request_key: str = "",
    ) -> Accesskey: ...
    def accesskey_delete(
        self,
        key_id: uuid.UUID,
        now: str,
        outbox: OutboxFn[Accesskey],
        *,
        request_key: str = "",
    ) -> Deleted: ...
    # access-key usage, rotation and expiry (docs/api.md#access-key-usage-and-rotation)
    def accesskey_touch(self, key_id: uuid.UUID, moment: str) -> Accesskey | None:
        """Set ``tm_last_used`` to ``moment`` unless it is as new already (monotonic;
        ``tm_update`` stays). The row as re-read if it changed, else None."""
        ...

    def accesskey_rotate(
        self,
        old_id: uuid.UUID,
        key: Accesskey,
        token_hash: str,
        grace_end: str,
        moment: str,
        outbox: RotateOutboxFn,
    ) -> Rotation:
        """In one transaction: lock the old key (NotFound; FailedPrecondition
        ``ACCESSKEY_DELETED`` or ``ACCESSKEY_ALREADY_ROTATED``), insert ``key`` (as
        ``accesskey_insert``), set the old key's ``rotated_to``, ``tm_grace_end`` and
        ``tm_update``, soft-delete it too when ``grace_end <= moment``, and store
        ``outbox(new, previous)``."""
        ...

    def accesskey_end_grace(
        self, key_id: uuid.UUID, moment: str, outbox: OutboxFn[Accesskey]
    ) -> Accesskey | None:
        """Soft-delete the key if it is live and its grace period ended at or before
        ``moment``: the deleted row, or None if it was not (a concurrent sweep won)."""
        ...

    def accesskey_grace_over(self, moment: str, limit: int) -> list[Accesskey]:
        """Live keys whose grace period ended at or before ``moment``, oldest end first."""
        ...

    def accesskey_expiring(self, query: ExpiringQuery) -> list[Accesskey]: ...
    def accesskey_notify_expiry(
        self, key_id: uuid.UUID, moment: str, outbox: OutboxFn[Accesskey]
    ) -> Accesskey | None:
        """Mark the key's expiry notice sent (only if it was not: a CAS) and store
        ``outbox(key)`` with the mark; the key, or None if another run marked it first."""
        ...

    def orphaned_key_owners(self) -> list[uuid.UUID]:
        """Deleted customers that still have active keys (Go never revoked them)."""
        ...

    # outbox
    def outbox_claim(
        self, owner: str, limit: int, lease_seconds: float, *, reclaim_own: bool = False
    ) -> list[OutboxEntry]:
        """Lease up to ``limit`` entries to ``owner``, oldest first: unclaimed ones, those
        whose lease expired and, with ``reclaim_own`` (the first claim after a reconnect),
        those ``owner`` holds already (left by a failed publish, so they go out at once, not
        when the lease runs out). Two owners never hold the same entry at once."""
        ...

    def outbox_done(self, ids: Sequence[int]) -> None: ...
    def outbox_stats(self) -> OutboxStats: ...
    def outbox_size(self) -> int:
        """``outbox_stats().size``."""
        ...
