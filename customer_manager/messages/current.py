"""The ``current`` wire profile's record shapes (docs/profiles.md#json).

Today's VoIPbin peers decode every time into a Go ``*time.Time``: RFC 3339 with the
fraction's trailing zeros trimmed and ``Z``, or ``null`` when not set; never omitted. An
access key shows ``token_prefix`` always and its plain token only as ``raw_token``. The
internal model (records.py) keeps one form for both profiles: the 6-digit UTC string, the
sentinel for "not set"; this module converts at the edge, both ways.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from customer_manager.messages.records import (
    SENTINEL,
    TS_FORMAT,
    Accesskey,
    Customer,
    Metadata,
    PublicAccesskey,
    PublicCustomer,
)

Stamp = str | None


def rfc3339(stamp: str) -> Stamp:
    """An internal time as Go prints a ``*time.Time`` (RFC3339Nano, UTC); None if not set
    (the sentinel, or a value a seed database left NULL)."""
    if not stamp or stamp >= SENTINEL:
        return None
    date, _, clock = stamp.partition(" ")
    whole, _, fraction = clock.partition(".")
    fraction = fraction.rstrip("0")
    return f"{date}T{whole}.{fraction}Z" if fraction else f"{date}T{whole}Z"


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z"
)


class NotATime(ValueError):
    """A JSON time that Go's ``time.Time`` would not decode."""


def internal(value: Stamp) -> str:
    """A JSON time of this profile as the internal form; ``null`` is not set. Raises
    NotATime for anything Go would not decode (a seed-format time, ``""``)."""
    if value is None:
        return SENTINEL
    match = _RFC3339.match(value)
    if match is None:
        raise NotATime(f"not an RFC 3339 time: {value[:40]!r}")
    date, clock, fraction, zone = match.groups()
    micro = (fraction or "")[:6].ljust(6, "0")
    try:  # the field ranges too (month 13, February 30, hour 25): Go refuses them
        moment = datetime.fromisoformat(f"{date}T{clock}.{micro}{zone.replace('Z', '+00:00')}")
    except ValueError as exc:
        raise NotATime(str(exc)) from None
    if zone == "Z":
        return f"{date} {clock}.{micro}"
    return moment.astimezone(UTC).strftime(TS_FORMAT)


class CustomerJSON(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``customer.Customer`` of the newest Go (docs/profiles.md#json)."""

    id: uuid.UUID
    name: str = ""
    detail: str = ""
    email: str = ""
    phone_number: str = ""
    address: str = ""
    webhook_method: str = ""
    webhook_uri: str = ""
    webhook_secret: str = ""
    billing_account_id: uuid.UUID
    email_verified: bool
    status: str
    identity_verification_status: str
    terms_agreed_version: str = ""
    terms_agreed_ip: str = ""
    metadata: Metadata
    tm_deletion_scheduled: Stamp
    tm_create: Stamp
    tm_update: Stamp
    tm_delete: Stamp


class AccesskeyJSON(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``accesskey.Accesskey`` of the newest Go: ``token_prefix`` always printed, the plain
    token only as ``raw_token`` (docs/profiles.md#json)."""

    id: uuid.UUID
    customer_id: uuid.UUID
    name: str = ""
    detail: str = ""
    token_prefix: str
    raw_token: str = ""
    tm_expire: Stamp
    tm_create: Stamp
    tm_update: Stamp
    tm_delete: Stamp


class PublicCustomerJSON(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The webhook record of a customer (``customer.WebhookMessage``)."""

    id: uuid.UUID
    name: str = ""
    detail: str = ""
    email: str = ""
    phone_number: str = ""
    address: str = ""
    webhook_method: str = ""
    webhook_uri: str = ""
    billing_account_id: uuid.UUID
    metadata: Metadata
    email_verified: bool
    status: str
    identity_verification_status: str
    tm_deletion_scheduled: Stamp
    tm_create: Stamp
    tm_update: Stamp
    tm_delete: Stamp


class PublicAccesskeyJSON(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The webhook record of an access key (``accesskey.WebhookMessage``)."""

    id: uuid.UUID
    customer_id: uuid.UUID
    name: str = ""
    detail: str = ""
    token: str = ""
    token_prefix: str = ""
    tm_expire: Stamp
    tm_create: Stamp
    tm_update: Stamp
    tm_delete: Stamp


_SHAPES: dict[type[Any], type[Any]] = {
    Customer: CustomerJSON,
    Accesskey: AccesskeyJSON,
    PublicCustomer: PublicCustomerJSON,
    PublicAccesskey: PublicAccesskeyJSON,
}
_RENAMED = {"token": "raw_token"}


def outward(obj: Any) -> Any:
    """``obj`` with every record in it (in dicts and lists too) in this profile's shape."""
    shape = _SHAPES.get(type(obj))
    if shape is not None:
        fields: dict[str, Any] = {}
        for name in obj.__struct_fields__:
            value = getattr(obj, name)
            if name.startswith("tm_"):
                value = rfc3339(value)
            elif name == "token" and shape is AccesskeyJSON:
                name = _RENAMED[name]
            fields[name] = value
        return shape(**{k: v for k, v in fields.items() if k in shape.__struct_fields__})
    if isinstance(obj, dict):
        return {key: outward(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [outward(value) for value in obj]
    return obj


_INWARD: dict[type[Any], tuple[type[Any], msgspec.json.Decoder[Any]]] = {
    Customer: (CustomerJSON, msgspec.json.Decoder(CustomerJSON)),
    Accesskey: (AccesskeyJSON, msgspec.json.Decoder(AccesskeyJSON)),
}


def inward(raw: bytes, cls: type[Any]) -> Any:
    """A record of this profile's JSON (a cache entry, ours or a Go instance's) as the
    internal record. Raises msgspec.ValidationError / DecodeError or NotATime for an entry of
    another shape (the seed profile's, a partial one), which the cache counts as a miss."""
    _shape, decoder = _INWARD[cls]
    decoded = decoder.decode(raw)
    fields: dict[str, Any] = {}
    for name in decoded.__struct_fields__:
        value = getattr(decoded, name)
        if name.startswith("tm_"):
            value = internal(value)
        elif name == "raw_token":
            continue  # never kept (a Go entry has none either)
        fields[name] = value
    return cls(**fields)
