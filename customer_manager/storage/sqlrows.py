"""SQL text and row mapping shared by the MySQL and SQLite backends.

Statements use ``%s`` placeholders (SQLite's cursor wrapper turns them into ``?``). Column
names in generated fragments come from the fixed sets below, never from requests.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from customer_manager.errors import AlreadyExists
from customer_manager.messages.query import Filters, ListQuery
from customer_manager.messages.records import (
    LIVE_STATUSES,
    NIL,
    SENTINEL,
    TS_FORMAT,
    Accesskey,
    Customer,
    Metadata,
    as_stored,
    now,
)
from customer_manager.storage.base import ACCESSKEY_MUTABLE, CUSTOMER_MUTABLE

R = TypeVar("R", Customer, Accesskey)

# The selected columns are the record fields, in JSON order; an access key stores its
# token's prefix, never the token (docs/storage.md#tokens).
CUSTOMER_COLUMNS: tuple[str, ...] = Customer.__struct_fields__
ACCESSKEY_COLUMNS = tuple(f for f in Accesskey.__struct_fields__ if f != "token")
_UUID_COLUMNS = frozenset({"id", "customer_id", "billing_account_id", "rotated_from", "rotated_to"})
_TS_COLUMNS = frozenset(
    {
        "tm_create",
        "tm_update",
        "tm_delete",
        "tm_expire",
        "tm_deletion_scheduled",
        "tm_last_used",
        "tm_grace_end",
    }
)


@dataclass(frozen=True)
class Table(Generic[R]):
    """One record table: its name, selected columns, row reader, updatable columns, the
    equality filters that apply to it and what its rows are called."""

    name: str
    columns: tuple[str, ...]
    reader: Callable[[Sequence[Any]], R]
    mutable: frozenset[str]
    filters: frozenset[str]
    noun: str
    record: type[R]

    @property
    def select(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {self.name}"

    @property
    def not_found(self) -> str:
        return f"{self.noun.upper()}_NOT_FOUND"


def _read(column: str, value: Any) -> Any:
    if column in _UUID_COLUMNS:
        return read_uuid(value)
    if column in _TS_COLUMNS:
        return read_ts(value)
    if column == "email_verified":
        return bool(value)
    if column == "metadata":
        return read_metadata(value)
    if isinstance(value, bytes | bytearray):
        return value.decode()
    return "" if value is None else value


def to_customer(row: Sequence[Any]) -> Customer:
    """A customer row. F1: a live status on a row with ``tm_delete`` set reads ``deleted``
    (a seed Go instance soft-deletes by ``tm_delete`` only)."""
    fields = {c: _read(c, v) for c, v in zip(CUSTOMER_COLUMNS, row, strict=True)}
    if fields["tm_delete"] != SENTINEL and fields["status"] in LIVE_STATUSES:
        fields["status"] = "deleted"
    return Customer(**fields)


def read_metadata(value: Any) -> Metadata:
    """The JSON column; NULL or unreadable is the zero value (as Go's mapping reads it)."""
    if not value:
        return Metadata()
    try:
        return msgspec.json.decode(value, type=Metadata)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Metadata()


def to_accesskey(row: Sequence[Any]) -> Accesskey:
    return Accesskey(**{c: _read(c, v) for c, v in zip(ACCESSKEY_COLUMNS, row, strict=True)})


CUSTOMERS = Table(
    "customer_customers",
    CUSTOMER_COLUMNS,
    to_customer,
    CUSTOMER_MUTABLE,
    frozenset({"id", "name", "email", "phone_number", "billing_account_id"}),
    "customer",
    Customer,
)
ACCESSKEYS = Table(
    "customer_accesskeys",
    ACCESSKEY_COLUMNS,
    to_accesskey,
    ACCESSKEY_MUTABLE,
    frozenset({"id", "customer_id", "name", "token_hash"}),
    "accesskey",
    Accesskey,
)

CUSTOMER_INSERT = (
    f"INSERT INTO customer_customers ({', '.join(CUSTOMER_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(CUSTOMER_COLUMNS))})"
)
ACCESSKEY_INSERT = (
    f"INSERT INTO customer_accesskeys ({', '.join(ACCESSKEY_COLUMNS)}, token_hash)"
    f" VALUES ({', '.join(['%s'] * (len(ACCESSKEY_COLUMNS) + 1))})"
)
ACCESSKEY_INSERT_PLAIN = ACCESSKEY_INSERT.replace(", token_hash)", ", token_hash, token)").replace(
    "%s)", "%s, %s)"
)
# A key a Go replica inserted during a takeover has a plain token and no hash yet.
EITHER_TOKEN = "(token_hash = %s OR (token_hash IS NULL AND token = %s))"
# Used before the moment, or never used and created before it (docs/api.md#filters).
UNUSED_SINCE = "(tm_last_used < %s OR (UNSET(tm_last_used) AND tm_create < %s))"
SOFT_DELETE = "UPDATE {table} SET tm_delete = %s, tm_update = %s WHERE id = %s"
# docs/lifecycle.md#statuses-and-transitions: a customer delete also sets status (upstream
# ``dbhandler/customer.go:503-507``)
SOFT_DELETE_CUSTOMER = (
    "UPDATE customer_customers SET tm_delete = %s, tm_update = %s, status = 'deleted' WHERE id = %s"
)
ACTIVE_KEYS_OF_CUSTOMER = (
    "SELECT id FROM customer_accesskeys WHERE customer_id = %s AND LIVE(tm_delete)"
    " ORDER BY tm_create, id"
)
REPLY_GET = "SELECT reply FROM customer_replies WHERE request_key = %s"
REPLY_PUT = "INSERT INTO customer_replies (request_key, reply, tm_create) VALUES (%s, %s, %s)"
REPLIES_PURGE = "DELETE FROM customer_replies WHERE tm_create < %s"
ORPHANED_KEY_OWNERS = (
    "SELECT DISTINCT c.id FROM customer_customers c JOIN customer_accesskeys k"
    " ON k.customer_id = c.id WHERE GONE(c.tm_delete) AND LIVE(k.tm_delete) ORDER BY c.id"
)
OUTBOX_INSERT = (
    "INSERT INTO customer_outbox (exchange, routing_key, body, tm_create) VALUES (%s, %s, %s, %s)"
)
OUTBOX_CLAIMED = (
    "SELECT id, exchange, routing_key, body FROM customer_outbox"
    " WHERE claim_owner = %s AND claim_until = %s ORDER BY id"
)
OUTBOX_DONE = "DELETE FROM customer_outbox WHERE id IN ({marks})"
OUTBOX_STATS = "SELECT COUNT(*), MIN(tm_create) FROM customer_outbox"


def param(value: Any) -> Any:
    """A Python value as a bound parameter (UUIDs as their 16 bytes, metadata as JSON text,
    booleans as 0/1)."""
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, Metadata):
        return msgspec.json.encode(value).decode()
    if isinstance(value, bool):
        return int(value)
    return value


def read_uuid(value: Any) -> uuid.UUID:
    """A binary(16) value; NULL or empty is the nil UUID (docs/storage.md#encodings)."""
    if not value:
        return NIL
    return uuid.UUID(bytes=bytes(value))


def read_ts(value: Any) -> str:
    """A datetime(6) value in the 6-digit wire form; NULL reads as ``""``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(TS_FORMAT)
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def customer_params(customer: Customer) -> list[Any]:
    return [param(getattr(customer, c)) for c in CUSTOMER_COLUMNS]


def accesskey_params(key: Accesskey, token_hash: str) -> list[Any]:
    """The INSERT parameters; a usage or rotation field the record leaves empty is stored
    as "not set" (records.as_stored)."""
    stored = as_stored(key)
    return [param(getattr(stored, c)) for c in ACCESSKEY_COLUMNS] + [token_hash]


@functools.cache
def rows_of(insert: str, count: int) -> str:
    """``insert`` (an INSERT with one ``VALUES (...)`` row) inserting ``count`` rows."""
    head, values, row = insert.partition(" VALUES ")
    return head + values + ", ".join([row] * count)


def update_sql(table: Table[Any], names: Sequence[str]) -> str:
    sets = ", ".join(f"{name} = %s" for name in names)
    return f"UPDATE {table.name} SET {sets}, tm_update = %s WHERE id = %s"


def list_sql(
    table: Table[Any], query: ListQuery, nocase: str, plain: bool = False
) -> tuple[str, list[Any]]:
    """The page query (docs/storage.md#listing-query): ``(tm_create, id) < (before,
    before_id)``, newest first. ``plain``: a token filter also matches Go's plain ``token``
    column (``EITHER_TOKEN``)."""
    where = ["tm_create < %s"]
    params: list[Any] = [query.before]
    if query.before_id is not None:
        where = ["tm_create <= %s AND (tm_create < %s OR id < %s)"]
        params = [query.before, query.before, query.before_id.bytes]
    conditions, values = _filter_sql(table, query.filters, nocase, plain)
    sql = (
        f"{table.select} WHERE {' AND '.join(where + conditions)}"
        " ORDER BY tm_create DESC, id DESC LIMIT %s"
    )
    return sql, [*params, *values, query.page_size]


def _filter_sql(
    table: Table[Any], f: Filters, nocase: str, plain: bool
) -> tuple[list[str], list[Any]]:
    conditions: list[str] = []
    values: list[Any] = []
    for name in sorted(table.filters):
        wanted = getattr(f, name)
        if name == "token_hash" and wanted is not None and plain and f.token is not None:
            conditions.append(EITHER_TOKEN)
            values.extend((wanted, f.token))
        elif wanted is not None:
            conditions.append(f"{name} = %s{nocase if name == 'email' else ''}")
            values.append(param(wanted))
    if f.deleted is not None:
        conditions.append("GONE(tm_delete)" if f.deleted else "LIVE(tm_delete)")
    if f.expired is not None and table is ACCESSKEYS:
        conditions.append(
            "tm_expire <= %s" if f.expired else "(tm_expire > %s OR UNSET(tm_expire))"
        )
        values.append(now())
    if f.unused_since is not None and table is ACCESSKEYS:
        conditions.append(UNUSED_SINCE)
        values.extend((f.unused_since, f.unused_since))
    return conditions, values


def duplicate(key: str, noun: str) -> AlreadyExists:
    """The AlreadyExists for a unique-key violation naming the index or column ``key`` in a
    write to the ``noun`` table (a primary key violation names no column we recognise)."""
    if "email" in key:
        return AlreadyExists("email is already used by an active customer", "EMAIL_ALREADY_EXISTS")
    if "token" in key:
        return AlreadyExists("token already exists", "TOKEN_ALREADY_EXISTS")
    return AlreadyExists(f"{noun} already exists", f"{noun.upper()}_ALREADY_EXISTS")
