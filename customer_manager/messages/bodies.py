"""Request bodies (docs/api.md#routes) and Go's decoding rules for them
(docs/api.md#request-envelope).

Go's decoder matches keys case-insensitively (exact match preferred), ignores unknown keys,
turns ``null`` into the zero value and rejects wrong types. Bodies are small, so we decode
generically, normalise, and convert strictly into the target Struct.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, TypeVar

import msgspec

from customer_manager.messages.records import NIL

INT32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
INT64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
# The MySQL column sizes (schema.py), enforced for every backend: a longer value is the
# client's error (400), not a failed INSERT (500). ``text`` holds 65535 bytes, so 16383
# characters of up to 4 bytes.
STR255 = Annotated[str, msgspec.Meta(max_length=255)]
STR1023 = Annotated[str, msgspec.Meta(max_length=1023)]
STR1024 = Annotated[str, msgspec.Meta(max_length=1024)]
TEXT = Annotated[str, msgspec.Meta(max_length=16383)]


class BodyError(ValueError):
    """The request body cannot be decoded into the expected shape (400 INVALID_BODY)."""


class CustomerFields(msgspec.Struct, frozen=True, kw_only=True):
    """Body of ``POST /v1/customers`` and ``PUT /v1/customers/<id>`` (the same 7 keys)."""

    name: STR255 = ""
    detail: TEXT = ""
    email: STR255 = ""
    phone_number: STR255 = ""
    address: STR1024 = ""
    webhook_method: STR255 = ""
    webhook_uri: STR1023 = ""


class BillingAccountBody(msgspec.Struct, frozen=True, kw_only=True):
    """Body of ``PUT /v1/customers/<id>/billing_account_id``."""

    billing_account_id: uuid.UUID = NIL


class IsValidBalanceBody(msgspec.Struct, frozen=True, kw_only=True):
    """Body of ``POST /v1/customers/<id>/is_valid_balance``."""

    reference_type: str = ""
    country: str = ""
    count: INT64 = 0


class AccesskeyCreateBody(msgspec.Struct, frozen=True, kw_only=True):
    """Body of ``POST /v1/accesskeys``; ``expire`` in seconds, ≤ 0 means never
    (docs/api.md#access-key-create)."""

    customer_id: uuid.UUID = NIL
    name: STR255 = ""
    detail: TEXT = ""
    expire: INT32 = 0


MAX_GRACE = 2_592_000  # seconds (30 days) an old key may keep working after a rotation


class AccesskeyRotateBody(msgspec.Struct, frozen=True, kw_only=True):
    """Body of ``POST /v1/accesskeys/<id>/rotate`` (docs/api.md#access-key-rotate): ``grace``
    seconds the old key keeps working, ``expire`` as in create."""

    grace: INT32 = 86400
    expire: INT32 = 0


class NotifyExpiringBody(msgspec.Struct, frozen=True, kw_only=True):
    """Body of ``POST /v1/accesskeys/notify_expiring``: the window in seconds."""

    within: INT32 = 604800


class AccesskeyUpdateBody(msgspec.Struct, frozen=True, kw_only=True):
    """Body of ``PUT /v1/accesskeys/<id>``."""

    name: STR255 = ""
    detail: TEXT = ""


_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_CANON = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def parse_uuid(text: str) -> uuid.UUID:
    """Parse a UUID the way gofrs/uuid does: canonical, 32 hex, ``{...}`` or ``urn:uuid:``."""
    inner = text
    if inner.startswith("urn:uuid:"):
        inner = inner[9:]
    elif inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    if _CANON.fullmatch(inner) or _HEX32.fullmatch(inner):
        return uuid.UUID(inner)
    raise BodyError(f"invalid UUID {text[:64]!r}")


_uuid_fields: dict[type, frozenset[str]] = {}


def _uuid_field_names(cls: type[msgspec.Struct]) -> frozenset[str]:
    names = _uuid_fields.get(cls)
    if names is None:
        info = msgspec.inspect.type_info(cls)
        assert isinstance(info, msgspec.inspect.StructType)
        names = frozenset(
            f.name for f in info.fields if isinstance(f.type, msgspec.inspect.UUIDType)
        )
        _uuid_fields[cls] = names
    return names


def normalise(obj: dict[str, Any], cls: type[msgspec.Struct]) -> dict[str, Any]:
    """Map ``obj``'s keys onto ``cls``'s fields as Go does; drop nulls; parse UUID strings."""
    fields = cls.__struct_fields__
    out: dict[str, Any] = {}
    for key, value in obj.items():  # in document order, so the last duplicate wins
        name = key if key in fields else key.lower()
        if name not in fields:
            continue
        if value is None:
            out.pop(name, None)
            continue
        if name in _uuid_field_names(cls):
            if not isinstance(value, str):
                raise BodyError(f"{name}: expected a UUID string")
            value = parse_uuid(value)
        out[name] = value
    return out


T = TypeVar("T", bound=msgspec.Struct)


def decode_body(raw: bytes, cls: type[T]) -> T:
    """Decode a request's ``data`` into ``cls``. Absent data is an error, ``null`` is empty."""
    if not raw:
        raise BodyError("request data is missing")
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        try:
            obj = msgspec.json.decode(raw.decode("utf-8", "replace"))
        except msgspec.DecodeError as exc:
            raise BodyError(f"request data is not valid JSON: {exc}") from None
    if obj is None:
        return cls()
    if not isinstance(obj, dict):
        raise BodyError("request data must be a JSON object")
    try:
        return msgspec.convert(normalise(obj, cls), cls, strict=True)
    except msgspec.ValidationError as exc:
        raise BodyError(str(exc)) from None


class SignupBody(CustomerFields, frozen=True, kw_only=True):
    """Body of ``POST /v1/customers/signup`` (docs/lifecycle.md#signup): create's keys and
    ``client_ip``."""

    client_ip: str = ""


class EmailVerifyBody(msgspec.Struct, frozen=True, kw_only=True):
    """Body of ``POST /v1/customers/email_verify`` (docs/lifecycle.md#email-verification)."""

    token: str = ""


class MetadataBody(msgspec.Struct, frozen=True, kw_only=True):
    """The metadata of ``PUT /v1/customers/<id>/metadata`` (docs/lifecycle.md#metadata)."""

    rtp_debug: bool = False
