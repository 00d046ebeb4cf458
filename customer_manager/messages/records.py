"""The records: Customer (docs/api.md#customer-record) and Accesskey
(docs/api.md#access-key-record).

Field order is the Go JSON key order. ``omit_defaults`` reproduces ``omitempty`` for strings;
UUID fields have no default, so they are always emitted (a nil UUID is printed, as in Go).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec

NIL = uuid.UUID(int=0)
SENTINEL = "9999-01-01 00:00:00.000000"
TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def ts(moment: datetime) -> str:
    """Format a datetime as the wire timestamp ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime(TS_FORMAT)


def unix(stamp: str) -> float:
    """A wire timestamp (UTC) as Unix time."""
    return datetime.strptime(stamp, TS_FORMAT).replace(tzinfo=UTC).timestamp()


def now() -> str:
    """The current UTC time as a wire timestamp."""
    return ts(datetime.now(UTC))


def after(seconds: int, start: str | None = None) -> str:
    """``start`` (default now) plus ``seconds``, as a wire timestamp."""
    base = datetime.strptime(start, TS_FORMAT) if start else datetime.now(UTC)
    return ts(base + timedelta(seconds=seconds))


def version(tm_update: str) -> str:
    """A record's version, for ordering copies of it (the cache keeps the newest): its
    ``tm_update``, or "" (the first version) while it was never updated (the sentinel)."""
    return "" if not tm_update or tm_update >= SENTINEL else tm_update


def next_update(current: str, stamp: str) -> str:
    """The ``tm_update`` a write stamped ``stamp`` gives a row whose ``tm_update`` is
    ``current``: ``stamp``, or 1 µs after ``current`` when that is not older. Writes of a
    row are serialised by its lock, so its versions increase in commit order even when the
    writers' clocks (or the moments they took ``stamp``) are in the other order."""
    last = version(current)
    if last < stamp:
        return stamp
    return ts(datetime.strptime(last, TS_FORMAT) + timedelta(microseconds=1))


class Customer(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A tenant. Same keys, order and omit-empty rules as the Go ``customer.Customer``."""

    id: uuid.UUID
    name: str = ""
    detail: str = ""
    email: str = ""
    phone_number: str = ""
    address: str = ""
    webhook_method: str = ""
    webhook_uri: str = ""
    billing_account_id: uuid.UUID
    tm_create: str = ""
    tm_update: str = ""
    tm_delete: str = ""

    @property
    def deleted(self) -> bool:
        """Go's check: anything but the sentinel (even an empty value) counts as deleted."""
        return self.tm_delete != SENTINEL


class Accesskey(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An API token's record. ``token`` is set only in the create reply; stored, cached and
    published records carry ``token_prefix`` and never the token itself (docs/storage.md#tokens).
    ``token_hash`` is kept out of JSON by the codec in ``storage`` (never on the wire)."""

    id: uuid.UUID
    customer_id: uuid.UUID
    name: str = ""
    detail: str = ""
    token: str = ""
    token_prefix: str = ""
    tm_expire: str = ""
    tm_create: str = ""
    tm_update: str = ""
    tm_delete: str = ""

    @property
    def deleted(self) -> bool:
        return self.tm_delete != SENTINEL


Record = Customer | Accesskey
