"""The list queries of MemoryStorage (docs/storage.md#listing-query): the cursor, the
filters and the order, as the SQL backends apply them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import TypeVar

from customer_manager.messages.query import Filters, ListQuery
from customer_manager.messages.records import SENTINEL, Accesskey, Customer, now

T = TypeVar("T", Customer, Accesskey)


def fold(email: str) -> str:
    return email.casefold()


def page(rows: Iterable[T], query: ListQuery, hashes: Mapping[uuid.UUID, str]) -> list[T]:
    """Apply the cursor and filters, order by (tm_create, id) descending, cut to page_size."""
    stamp = now()
    keep = [r for r in rows if _before(r, query) and _matches(r, query.filters, hashes, stamp)]
    keep.sort(key=lambda r: (r.tm_create, r.id.bytes), reverse=True)
    return keep[: query.page_size]


def _before(row: Customer | Accesskey, query: ListQuery) -> bool:
    if row.tm_create < query.before:
        return True
    return (
        query.before_id is not None
        and row.tm_create == query.before
        and row.id.bytes < query.before_id.bytes
    )


def _matches(
    row: Customer | Accesskey, f: Filters, hashes: Mapping[uuid.UUID, str], stamp: str
) -> bool:
    """Every given filter that names a column of this row's table must hold."""
    for name in ("id", "customer_id", "name", "phone_number", "billing_account_id"):
        wanted = getattr(f, name)
        if wanted is not None and hasattr(row, name) and getattr(row, name) != wanted:
            return False
    if isinstance(row, Customer) and f.email is not None and fold(row.email) != fold(f.email):
        return False
    if isinstance(row, Accesskey):
        if f.token_hash is not None and hashes.get(row.id) != f.token_hash:
            return False
        if f.expired is not None and not _tri(row.tm_expire, stamp, f.expired, expired=True):
            return False
        if f.unused_since is not None and not _unused(row, f.unused_since):
            return False
    return f.deleted is None or _tri(row.tm_delete, SENTINEL, f.deleted, expired=False)


def _tri(value: str, bound: str, flag: bool, *, expired: bool) -> bool:
    """SQL-like comparison where an empty (NULL) value matches neither side.

    expired: flag → value <= bound, else value > bound.
    deleted: flag → value < bound, else value >= bound."""
    if not value:
        return False
    if expired:
        return (value <= bound) if flag else (value > bound)
    return (value < bound) if flag else (value >= bound)


def _unused(key: Accesskey, since: str) -> bool:
    """The ``unused_since`` filter: used before ``since``, or never used and created before."""
    if key.tm_last_used and key.tm_last_used < SENTINEL:
        return key.tm_last_used < since
    return key.tm_create < since
