"""The ``current`` wire profile's record shapes (docs/profiles.md#json).

Today's VoIPbin peers decode every time into a Go ``*time.Time``: RFC 3339 with the
fraction's trailing zeros trimmed and ``Z``, or ``null`` when not set; never omitted. An
access key shows ``token_prefix`` always and its plain token only as ``raw_token``. The
internal model (records.py) keeps one form for both profiles: the 6-digit UTC string, the
sentinel for "not set"; this module converts at the edge, both ways.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from customer_manager.messages.records import (
    SENTINEL,
    TS_FORMAT,
    Accesskey,
    Customer,
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


def _shape(record: type[Any], *, rename: dict[str, str] | None = None, always: str = "") -> Any:
    """The ``current`` JSON shape of an internal record type: the same keys in the same order
    (a renamed key follows ``always``), every ``tm_*`` key always printed (a time or
    ``null``), ``always`` printed even when empty, other keys as the record omits them."""
    rename = rename or {}
    keys: list[tuple[Any, ...]] = []
    for field in msgspec.structs.fields(record):
        key = rename.get(field.name, field.name)
        if field.name.startswith("tm_"):
            keys.append((key, Stamp))
        elif field.name == always or field.default is msgspec.NODEFAULT:
            keys.append((key, field.type))
        else:
            keys.append((key, field.type, field.default))
    for moved in rename.values():
        entry = next(k for k in keys if k[0] == moved)
        keys.remove(entry)
        keys.insert(next(i for i, k in enumerate(keys) if k[0] == always) + 1, entry)
    name = f"{record.__name__}JSON"
    return msgspec.defstruct(name, keys, frozen=True, kw_only=True, omit_defaults=True)


# ``customer.Customer`` and ``customer.WebhookMessage`` of today's Go (docs/profiles.md#json)
CustomerJSON = _shape(Customer)
PublicCustomerJSON = _shape(PublicCustomer)
# ``accesskey.Accesskey``: ``token_prefix`` always printed, the plain token only as
# ``raw_token``, which follows it; the webhook record never carries a token
AccesskeyJSON = _shape(Accesskey, rename={"token": "raw_token"}, always="token_prefix")
PublicAccesskeyJSON = _shape(PublicAccesskey)
_SHAPES: dict[type[Any], Any] = {
    Customer: CustomerJSON,
    Accesskey: AccesskeyJSON,
    PublicCustomer: PublicCustomerJSON,
    PublicAccesskey: PublicAccesskeyJSON,
}
# per record type: its shape and, for each of the shape's keys, the record field it shows and
# whether it is a time (built once: the conversion runs for every record sent)
_PLANS: dict[type[Any], tuple[Any, tuple[tuple[str, str, bool], ...]]] = {
    record: (
        shape,
        tuple(
            ("token" if key == "raw_token" else key, key, key.startswith("tm_"))
            for key in shape.__struct_fields__
        ),
    )
    for record, shape in _SHAPES.items()
}


def outward(obj: Any) -> Any:
    """``obj`` with every record in it (in dicts and lists too) in this profile's shape."""
    plan = _PLANS.get(type(obj))
    if plan is not None:
        shape, keys = plan
        return shape(
            **{
                key: rfc3339(getattr(obj, field)) if time else getattr(obj, field)
                for field, key, time in keys
            }
        )
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
