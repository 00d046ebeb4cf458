"""Plugin: a stand-in for the NEWEST upstream Go customer-manager and its peers (the
``current`` wire profile, docs/profiles.md), written from the contract alone, to check ours
against. What it plays:

* **Schema** (docs/profiles.md#mysql): ``CURRENT_SCHEMA_SQL``, the newest upstream tables in
  physical column order, and the ``current_dsn`` fixture (a fresh database built from it,
  dropped after).
* **Go writer** (docs/profiles.md#mysql, docs/profiles.md#redis): ``GoCurrent`` inserts,
  soft-deletes and caches rows exactly as the newest Go does (explicit sorted column lists,
  NULL for unset times, metadata JSON, hashed ``vb_`` tokens, ``customer:<id>`` entries in Go
  JSON).
* **Go readers** (docs/profiles.md#json, docs/profiles.md#errors): ``decode_customer``,
  ``decode_accesskey`` and friends decode bytes as ``encoding/json`` into the upstream structs
  would, and FAIL wherever Go fails (a time that is not RFC 3339, a wrong JSON type, a bad
  UUID). On top of that they check what the newest callers depend on and what the contract
  promises about our output (key order and omitempty, ``status`` in its enum, ``metadata`` an
  object, no ``token``/``token_hash``, ``raw_token`` only where allowed, times in Go's
  canonical RFC3339Nano).
* **Go SQL reader** (docs/profiles.md#mysql): ``GoCurrent.customer`` / ``accesskey`` run
  Go's SELECT and apply its row rules; ``GoCurrent.cleanup_unverified`` is Go's expiry job.
* **Golden data**: the upstream literal JSON of the listenhandler tests
  (``tests/support/data/current_golden.txt``) with ``golden()`` to substitute our values, and
  ``TIME_GOLDEN`` (docs/profiles.md#times).

Upstream facts are from voipbin/monorepo at 2bf22fa4e; no upstream code is copied.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import msgspec
import pika
import pytest
import redis

from tests.support.amqp import Client, connect
from tests.support.go_like import GoStore
from tests.support.servers import mysql_connect

# ===================================================================================== schema

CURRENT_SCHEMA_SQL: tuple[str, ...] = (
    # docs/profiles.md#mysql: physical column order as the Alembic chain leaves it (AFTER clauses of
    # 902325885953, b2e4f8a91c03, dafeedbccfa5, 455debd049b2; c78cf0c45f54 and ffb1bfe3f8d7
    # append at the end).
    "CREATE TABLE customer_customers ("
    " id binary(16) NOT NULL PRIMARY KEY,"
    " name varchar(255), detail text,"
    " email varchar(255), phone_number varchar(255), address varchar(1024),"
    " webhook_method varchar(255), webhook_uri varchar(1023),"
    " webhook_secret varchar(255) NOT NULL DEFAULT '',"
    " billing_account_id binary(16),"
    " email_verified tinyint(1) NOT NULL DEFAULT 0,"
    " status varchar(16) NOT NULL DEFAULT 'active',"
    " terms_agreed_version varchar(64) NOT NULL DEFAULT '',"
    " terms_agreed_ip varchar(45) NOT NULL DEFAULT '',"
    " tm_deletion_scheduled datetime(6) NULL DEFAULT NULL,"
    " tm_create datetime(6) NULL, tm_update datetime(6) NULL, tm_delete datetime(6) NULL,"
    " metadata json NULL DEFAULT NULL,"
    " identity_verification_status varchar(32) NOT NULL DEFAULT 'none'"
    ")",
    "CREATE INDEX idx_customer_customers_status ON customer_customers(status)",
    # 133ea3a35091, then 8f42ac0555e7 (token_hash/token_prefix appended; token dropped).
    "CREATE TABLE customer_accesskeys ("
    " id binary(16) NOT NULL PRIMARY KEY, customer_id binary(16),"
    " name varchar(255), detail text,"
    " tm_expire datetime(6) NULL, tm_create datetime(6) NULL,"
    " tm_update datetime(6) NULL, tm_delete datetime(6) NULL,"
    " token_hash char(64), token_prefix varchar(16)"
    ")",
    "CREATE INDEX idx_customer_accesskeys_customer_id ON customer_accesskeys(customer_id)",
    "CREATE INDEX idx_customer_accesskeys_token_hash ON customer_accesskeys(token_hash)",
)
UPSTREAM_TABLES = ("customer_customers", "customer_accesskeys")
UPSTREAM_CUSTOMER_COLUMNS = [
    "id",
    "name",
    "detail",
    "email",
    "phone_number",
    "address",
    "webhook_method",
    "webhook_uri",
    "webhook_secret",
    "billing_account_id",
    "email_verified",
    "status",
    "terms_agreed_version",
    "terms_agreed_ip",
    "tm_deletion_scheduled",
    "tm_create",
    "tm_update",
    "tm_delete",
    "metadata",
    "identity_verification_status",
]
UPSTREAM_ACCESSKEY_COLUMNS = [
    "id",
    "customer_id",
    "name",
    "detail",
    "tm_expire",
    "tm_create",
    "tm_update",
    "tm_delete",
    "token_hash",
    "token_prefix",
]
UPSTREAM_INDEXES = {
    "customer_customers": {"PRIMARY", "idx_customer_customers_status"},
    "customer_accesskeys": {
        "PRIMARY",
        "idx_customer_accesskeys_customer_id",
        "idx_customer_accesskeys_token_hash",
    },
}

# docs/profiles.md#mysql: SELECT lists in struct order; INSERT lists sorted by squirrel's SetMap.
CUSTOMER_SELECT = [
    "id",
    "name",
    "detail",
    "email",
    "phone_number",
    "address",
    "webhook_method",
    "webhook_uri",
    "webhook_secret",
    "billing_account_id",
    "email_verified",
    "status",
    "identity_verification_status",
    "terms_agreed_version",
    "terms_agreed_ip",
    "metadata",
    "tm_deletion_scheduled",
    "tm_create",
    "tm_update",
    "tm_delete",
]
ACCESSKEY_SELECT = [
    "id",
    "customer_id",
    "name",
    "detail",
    "token_hash",
    "token_prefix",
    "tm_expire",
    "tm_create",
    "tm_update",
    "tm_delete",
]
CUSTOMER_INSERT = sorted(CUSTOMER_SELECT)
ACCESSKEY_INSERT = sorted(ACCESSKEY_SELECT)


def create_current_schema(dsn: str) -> None:
    """Build the newest upstream tables in the (empty) database of ``dsn``."""
    conn = mysql_connect(dsn)
    try:
        cursor = conn.cursor()
        for statement in CURRENT_SCHEMA_SQL:
            cursor.execute(statement)
    finally:
        conn.close()


@pytest.fixture
def current_dsn(fresh_mysql_dsn: str) -> str:
    """A fresh, uniquely named MySQL database holding only the newest upstream schema
    (dropped after the test by ``fresh_mysql_dsn``)."""
    create_current_schema(fresh_mysql_dsn)
    return fresh_mysql_dsn


# =================================================================== times (docs/profiles.md#times)

NIL = uuid.UUID(int=0)
TIME_GOLDEN: list[tuple[str | None, str]] = [
    # (DB datetime(6), JSON): the golden table of docs/profiles.md#times
    ("2026-08-22 10:15:30.123456", '"2026-08-22T10:15:30.123456Z"'),
    ("2026-08-22 10:15:30.120000", '"2026-08-22T10:15:30.12Z"'),
    ("2026-08-22 10:15:30.000000", '"2026-08-22T10:15:30Z"'),
    (None, "null"),
    # upstream evidence: bin-agent-manager/pkg/listenhandler/v1_agents_test.go:78,86
    ("2023-11-19 09:29:39.712000", '"2023-11-19T09:29:39.712Z"'),
]
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-](\d{2}):(\d{2}))\Z"
)


class GoDecodeError(ValueError):
    """Where Go's ``json.Unmarshal`` (or a documented promise a newest caller relies on) fails."""


def go_time_json(moment: datetime | None) -> str:
    """The JSON Go's ``encoding/json`` prints for a ``*time.Time`` in UTC: RFC3339Nano with
    ``Z``, trailing fractional zeros trimmed; ``null`` for nil."""
    if moment is None:
        return "null"
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return f'"{text}Z"'


def parse_go_time(text: str) -> datetime:
    """``time.Time.UnmarshalJSON`` of a JSON string's content: strict RFC 3339 (``T``, ``Z`` or
    ``±hh:mm``, ``.`` + 1..n digits, fields in range). Digits past 6 are truncated (Go keeps 9;
    every writer here is microsecond-precise). Returns an aware UTC datetime."""
    match = _RFC3339.match(text)
    if match is None:
        raise GoDecodeError(f"time {text!r} is not RFC 3339 (Go: cannot parse)")
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    if match[8] != "Z" and (int(match[9]) >= 24 or int(match[10]) >= 60):
        raise GoDecodeError(f"time {text!r}: time zone offset out of range")
    micro = int((match[7] or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError as exc:  # month 13, 31 April, hour 24, second 60 ...: Go rejects too
        raise GoDecodeError(f"time {text!r}: {exc}") from None
    if match[8] != "Z":
        sign = 1 if match[8][0] == "+" else -1
        moment -= sign * timedelta(hours=int(match[9]), minutes=int(match[10]))
    return moment


def db_time_to_json(value: datetime | str | None) -> str:
    """Go's path from a datetime(6) column to JSON (docs/profiles.md#times): driver text -> ISO ->
    UTC -> JSON."""
    if value is None:
        return "null"
    if isinstance(value, str):
        value = datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f")
    return go_time_json(value.replace(tzinfo=UTC))


# ============================================================= Go JSON encoding (HTML-safe escapes)

_GO_ESCAPES: tuple[tuple[str, str], ...] = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def go_dumps(value: Any) -> bytes:
    """``json.Marshal`` of plain JSON data (dicts keep their order): compact, UTF-8,
    HTML-safe escapes (those characters only occur inside strings)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for plain, escaped in _GO_ESCAPES:
        text = text.replace(plain, escaped)
    return text.encode()


def _time_value(moment: datetime | None) -> str | None:
    """A time as the JSON value Go prints: RFC3339Nano text, or None (``null``)."""
    encoded = go_time_json(moment)
    return None if encoded == "null" else encoded[1:-1]


# =============================================================== Go records (docs/profiles.md#json)

CUSTOMER_STATUSES = ("initial", "active", "frozen", "deleted", "expired")
IDENTITY_STATUSES = ("none", "pending", "verified", "rejected")
EVENT_TYPES = (
    "customer_created",
    "customer_updated",
    "customer_deleted",
    "customer_frozen",
    "customer_recovered",
    "customer_identity_verification_updated",
    "accesskey_created",
    "accesskey_updated",
    "accesskey_deleted",
)
TOKEN_RE = re.compile(r"vb_[A-Za-z0-9_-]{32}\Z")
FieldKind = Literal["uuid", "string", "bool", "time", "metadata"]


@dataclasses.dataclass
class GoCustomer:
    """``cmcustomer.Customer`` (docs/profiles.md#customer) as Go holds it after decoding."""

    id: uuid.UUID = NIL
    name: str = ""
    detail: str = ""
    email: str = ""
    phone_number: str = ""
    address: str = ""
    webhook_method: str = ""
    webhook_uri: str = ""
    webhook_secret: str = ""
    billing_account_id: uuid.UUID = NIL
    email_verified: bool = False
    status: str = ""
    identity_verification_status: str = ""
    terms_agreed_version: str = ""
    terms_agreed_ip: str = ""
    metadata: dict[str, bool] = dataclasses.field(default_factory=lambda: {"rtp_debug": False})
    tm_deletion_scheduled: datetime | None = None
    tm_create: datetime | None = None
    tm_update: datetime | None = None
    tm_delete: datetime | None = None

    @property
    def deleted(self) -> bool:
        """docs/profiles.md#mysql: "already deleted" means ``TMDelete != nil``."""
        return self.tm_delete is not None


@dataclasses.dataclass
class GoAccesskey:
    """``accesskey.Accesskey`` (docs/profiles.md#access-key); ``token_hash`` only ever comes from
    the DB."""

    id: uuid.UUID = NIL
    customer_id: uuid.UUID = NIL
    name: str = ""
    detail: str = ""
    token_hash: str = ""
    token_prefix: str = ""
    raw_token: str = ""
    tm_expire: datetime | None = None
    tm_create: datetime | None = None
    tm_update: datetime | None = None
    tm_delete: datetime | None = None


# (json key, kind, omitempty) in struct order = Go's encoding order
CUSTOMER_FIELDS: list[tuple[str, FieldKind, bool]] = [
    ("id", "uuid", False),
    ("name", "string", True),
    ("detail", "string", True),
    ("email", "string", True),
    ("phone_number", "string", True),
    ("address", "string", True),
    ("webhook_method", "string", True),
    ("webhook_uri", "string", True),
    ("webhook_secret", "string", True),
    ("billing_account_id", "uuid", False),  # omitempty on a [16]byte never drops it
    ("email_verified", "bool", False),
    ("status", "string", False),
    ("identity_verification_status", "string", False),
    ("terms_agreed_version", "string", True),
    ("terms_agreed_ip", "string", True),
    ("metadata", "metadata", False),
    ("tm_deletion_scheduled", "time", False),
    ("tm_create", "time", False),
    ("tm_update", "time", False),
    ("tm_delete", "time", False),
]
ACCESSKEY_FIELDS: list[tuple[str, FieldKind, bool]] = [
    ("id", "uuid", False),
    ("customer_id", "uuid", False),
    ("name", "string", True),
    ("detail", "string", True),
    ("token_prefix", "string", False),
    ("raw_token", "string", True),
    ("tm_expire", "time", False),
    ("tm_create", "time", False),
    ("tm_update", "time", False),
    ("tm_delete", "time", False),
]


def customer_json(c: GoCustomer, *, headless: bool | None = None) -> bytes:
    """``json.Marshal`` of a Customer (or, with ``headless``, a CustomerCreatedEvent)."""
    out = _encode_fields(c, CUSTOMER_FIELDS)
    if headless is not None:
        out["headless"] = headless
    return go_dumps(out)


def accesskey_json(k: GoAccesskey) -> bytes:
    """``json.Marshal`` of an Accesskey: never ``token_hash``; ``raw_token`` when set."""
    return go_dumps(_encode_fields(k, ACCESSKEY_FIELDS))


def _encode_fields(record: Any, fields: list[tuple[str, FieldKind, bool]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, kind, omitempty in fields:
        value = getattr(record, key)
        if kind == "uuid":
            out[key] = str(value)
        elif kind == "time":
            out[key] = _time_value(value)
        elif kind == "metadata":
            out[key] = {"rtp_debug": bool(value.get("rtp_debug", False))}
        elif not (omitempty and value == ""):
            out[key] = value
    return out


# =================================================== Go decoding (encoding/json semantics)


class _Obj(dict[str, Any]):
    """A decoded JSON object that remembers its keys in order, duplicates included."""

    pairs: list[tuple[str, Any]]


def _object(pairs: list[tuple[str, Any]]) -> _Obj:
    obj = _Obj(pairs)  # the last duplicate wins, as in Go
    obj.pairs = pairs
    return obj


def _pairs(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """An object's keys and values in document order (duplicates included)."""
    pairs: list[tuple[str, Any]] = getattr(obj, "pairs", list(obj.items()))
    return pairs


def _no_constant(name: str) -> Any:
    raise GoDecodeError(f"{name} is not JSON (Go: invalid character)")


def go_loads(raw: bytes | str) -> Any:
    """JSON syntax as Go accepts it (no NaN/Infinity); objects keep their key order."""
    try:
        return json.loads(raw, object_pairs_hook=_object, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, GoDecodeError):
            raise
        raise GoDecodeError(f"not JSON: {exc}") from None


def _go_uuid(value: str) -> uuid.UUID:
    """gofrs ``UUID.UnmarshalText``: canonical, braced, ``urn:uuid:`` or 32 hex digits."""
    text = value
    if len(text) in (41, 45) and text[:9].lower() == "urn:uuid:":
        text = text[9:]
    elif len(text) in (34, 38) and text[0] == "{" and text[-1] == "}":
        text = text[1:-1]
    hexdigits = text.replace("-", "") if len(text) == 36 else text
    dashes_ok = len(text) != 36 or all(text[i] == "-" for i in (8, 13, 18, 23))
    if len(hexdigits) != 32 or not dashes_ok or not re.fullmatch(r"[0-9a-fA-F]{32}", hexdigits):
        raise GoDecodeError(f"uuid: incorrect UUID {value!r}")
    return uuid.UUID(hex=hexdigits)


def _go_field(key: str, kind: FieldKind, value: Any, current: Any) -> Any:
    """One field as ``encoding/json`` stores it; ``null`` leaves non-pointers unchanged."""
    if value is None:
        return None if kind == "time" else current
    if kind == "uuid":
        if not isinstance(value, str):
            raise GoDecodeError(f"{key}: {type(value).__name__} into uuid.UUID")
        return _go_uuid(value)
    if kind == "string":
        if not isinstance(value, str):
            raise GoDecodeError(f"{key}: {type(value).__name__} into string")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise GoDecodeError(f"{key}: {type(value).__name__} into bool")
        return value
    if kind == "time":
        if not isinstance(value, str):
            raise GoDecodeError(f"{key}: {type(value).__name__} into time.Time")
        return parse_go_time(value)
    # metadata: struct {rtp_debug bool}; unknown keys ignored
    if not isinstance(value, dict):
        raise GoDecodeError(f"{key}: {type(value).__name__} into customer.Metadata")
    meta = dict(current)
    for name, item in value.items():
        if name.lower() == "rtp_debug" and item is not None:
            if not isinstance(item, bool):
                raise GoDecodeError(f"metadata.rtp_debug: {type(item).__name__} into bool")
            meta["rtp_debug"] = item
    return meta


def go_unmarshal(raw: bytes | Any, target: Any, fields: list[tuple[str, FieldKind, bool]]) -> Any:
    """``json.Unmarshal(raw, &target)`` for a flat struct: exact key match first, else
    case-insensitive (Go's rule); unknown keys ignored; ``null`` top-level = no change."""
    obj = go_loads(raw) if isinstance(raw, bytes | str) else raw
    if obj is None:
        return target
    if not isinstance(obj, dict):
        raise GoDecodeError(f"{type(obj).__name__} into a struct")
    names = {key: (key, kind) for key, kind, _ in fields}
    folded = {key.lower(): (key, kind) for key, kind, _ in fields}
    for key, value in _pairs(obj):
        found = names.get(key) or folded.get(key.lower())
        if found is not None:
            name, kind = found
            setattr(target, name, _go_field(name, kind, value, getattr(target, name)))
    return target


# ============================================ contract checks on top (what callers rely on)

RawToken = Literal["forbidden", "required"]
_NEVER = ("token", "token_hash")


def _expected_keys(record: Any, fields: list[tuple[str, FieldKind, bool]]) -> list[str]:
    return [k for k, _, omit in fields if not (omit and getattr(record, k) == "")]


def _check_common(
    obj: dict[str, Any],
    record: Any,
    fields: list[tuple[str, FieldKind, bool]],
    what: str,
    extra: list[str],
) -> None:
    keys = [k for k, _ in _pairs(obj)]
    expected = _expected_keys(record, fields) + extra
    if keys != expected:
        raise GoDecodeError(f"{what}: keys {keys} are not the documented {expected}")
    for key, kind, _ in fields:
        if key not in obj:
            continue
        value = obj[key]
        if kind == "uuid" and value != str(getattr(record, key)):
            raise GoDecodeError(f"{what}.{key}: {value!r} is not a canonical lowercase UUID")
        if kind == "time":
            if value is None:
                continue
            canonical = go_time_json(getattr(record, key))[1:-1]
            if value != canonical:
                raise GoDecodeError(f"{what}.{key}: {value!r} is not Go's RFC3339Nano {canonical}")


def decode_customer(raw: bytes | Any) -> GoCustomer:
    """A customer record (docs/profiles.md#customer) from a reply, an event (``customer_*`` data,
    without ``headless``: see ``decode_event``) or a ``customer:<id>`` cache entry, as the newest Go
    reads it, plus the promises of docs/profiles.md#customer: every key in order, ``status`` and
    ``identity_verification_status`` in their enums, ``metadata`` exactly ``{"rtp_debug":bool}``,
    times canonical, no token keys."""
    obj = go_loads(raw) if isinstance(raw, bytes | str) else raw
    if not isinstance(obj, dict):
        raise GoDecodeError(f"customer: expected an object, got {type(obj).__name__}")
    customer: GoCustomer = go_unmarshal(obj, GoCustomer(), CUSTOMER_FIELDS)
    _check_common(obj, customer, CUSTOMER_FIELDS, "customer", [])
    if customer.status not in CUSTOMER_STATUSES:
        raise GoDecodeError(f"customer.status {customer.status!r} not in {CUSTOMER_STATUSES}")
    if customer.identity_verification_status not in IDENTITY_STATUSES:
        raise GoDecodeError(
            f"customer.identity_verification_status {customer.identity_verification_status!r}"
        )
    meta = obj["metadata"]
    if not isinstance(meta, dict) or list(meta) != ["rtp_debug"]:
        raise GoDecodeError(f"customer.metadata {meta!r} is not {{'rtp_debug': bool}}")
    if customer.deleted != (customer.status in ("deleted", "expired")):
        # docs/profiles.md#mysql: every Go soft delete, anonymize and expiry writes status and
        # tm_delete together; a live status with tm_delete set (or the reverse) is half-written
        raise GoDecodeError(f"customer: status {customer.status!r}, tm_delete {obj['tm_delete']}")
    return customer


def decode_accesskey(raw: bytes | Any, *, raw_token: RawToken = "forbidden") -> GoAccesskey:
    """An access key (docs/profiles.md#access-key) as the newest Go reads it, plus the promises of
    docs/profiles.md#access-key: keys in order, ``token_prefix`` always printed, never
    ``token``/``token_hash``; ``raw_token`` only when ``required`` (the R2 and signup replies), then
    ``vb_`` + 32 base64url with its prefix."""
    obj = go_loads(raw) if isinstance(raw, bytes | str) else raw
    if not isinstance(obj, dict):
        raise GoDecodeError(f"accesskey: expected an object, got {type(obj).__name__}")
    key: GoAccesskey = go_unmarshal(obj, GoAccesskey(), ACCESSKEY_FIELDS)
    for name in _NEVER:
        if name in obj:
            raise GoDecodeError(f"accesskey: key {name!r} must never be in JSON")
    if raw_token == "forbidden" and "raw_token" in obj:
        raise GoDecodeError("accesskey: raw_token outside the R2/signup reply")
    if raw_token == "required":
        if not TOKEN_RE.match(key.raw_token):
            raise GoDecodeError(f"accesskey.raw_token {key.raw_token!r} is not vb_ + 32 base64url")
        if key.token_prefix != key.raw_token[:11]:
            raise GoDecodeError("accesskey.token_prefix is not the raw token's first 11 chars")
    _check_common(obj, key, ACCESSKEY_FIELDS, "accesskey", ours_set(obj))
    return key


# The access-key keys that no Go version has (docs/api.md#access-key-usage-and-rotation),
# as docs/profiles.md#access-key places them: after ``tm_delete``, only when set.
OURS = ("tm_last_used", "rotated_from", "rotated_to", "tm_grace_end")


def ours_set(obj: dict[str, Any]) -> list[str]:
    """The keys of OURS that ``obj`` has, in their order: Go's decoder skips them."""
    return [k for k in OURS if k in obj]


# the public records (``WebhookMessage``) our webhooks carry: no secret, no terms, no token
WEBHOOK_CUSTOMER_FIELDS: list[tuple[str, FieldKind, bool]] = [
    *CUSTOMER_FIELDS[:8],
    ("billing_account_id", "uuid", False),
    ("metadata", "metadata", False),
    ("email_verified", "bool", False),
    ("status", "string", False),
    ("identity_verification_status", "string", False),
    *CUSTOMER_FIELDS[16:],
]
WEBHOOK_ACCESSKEY_FIELDS: list[tuple[str, FieldKind, bool]] = [
    *ACCESSKEY_FIELDS[:4],
    ("token_prefix", "string", True),
    *ACCESSKEY_FIELDS[6:],
]


def decode_webhook_customer(raw: bytes | Any) -> GoCustomer:
    """A customer's public record (``customer.WebhookMessage``, docs/profiles.md#webhooks):
    the customer keys in that struct's order, without ``webhook_secret`` and ``terms_*``."""
    obj = go_loads(raw) if isinstance(raw, bytes | str) else raw
    if not isinstance(obj, dict):
        raise GoDecodeError("webhook customer: not an object")
    customer: GoCustomer = go_unmarshal(obj, GoCustomer(), WEBHOOK_CUSTOMER_FIELDS)
    _check_common(obj, customer, WEBHOOK_CUSTOMER_FIELDS, "webhook customer", [])
    if customer.status not in CUSTOMER_STATUSES:
        raise GoDecodeError(f"webhook customer.status {customer.status!r}")
    return customer


def decode_webhook_accesskey(raw: bytes | Any) -> GoAccesskey:
    """An access key's public record (``accesskey.WebhookMessage``): ``token_prefix`` omitted
    when empty, never a token (events carry none)."""
    obj = go_loads(raw) if isinstance(raw, bytes | str) else raw
    if not isinstance(obj, dict):
        raise GoDecodeError("webhook accesskey: not an object")
    key: GoAccesskey = go_unmarshal(obj, GoAccesskey(), WEBHOOK_ACCESSKEY_FIELDS)
    _check_common(obj, key, WEBHOOK_ACCESSKEY_FIELDS, "webhook accesskey", ours_set(obj))
    return key


def decode_customer_list(raw: bytes) -> list[GoCustomer]:
    """R1's data (docs/profiles.md#json): a JSON array (``[]`` when empty) of customers."""
    items = go_loads(raw)
    if not isinstance(items, list):
        raise GoDecodeError(f"customer list: expected an array, got {type(items).__name__}")
    return [decode_customer(item) for item in items]


def decode_accesskey_list(raw: bytes) -> list[GoAccesskey]:
    """R6's data (docs/profiles.md#json): a JSON array of keys, none with ``raw_token``."""
    items = go_loads(raw)
    if not isinstance(items, list):
        raise GoDecodeError(f"accesskey list: expected an array, got {type(items).__name__}")
    return [decode_accesskey(item) for item in items]


def decode_signup(raw: bytes) -> tuple[GoCustomer, GoAccesskey]:
    """Signup's data (docs/profiles.md#json): ``{"customer":…,"accesskey":… with raw_token}``."""
    obj = go_loads(raw)
    if not isinstance(obj, dict) or list(obj) != ["customer", "accesskey"]:
        raise GoDecodeError(f"signup: expected {{customer, accesskey}}, got {raw[:80]!r}")
    return decode_customer(obj["customer"]), decode_accesskey(
        obj["accesskey"], raw_token="required"
    )


def decode_email_verify(raw: bytes) -> GoCustomer:
    """email_verify's data (docs/profiles.md#json): ``{"customer":…}``."""
    obj = go_loads(raw)
    if not isinstance(obj, dict) or list(obj) != ["customer"]:
        raise GoDecodeError(f"email_verify: expected {{customer}}, got {raw[:80]!r}")
    return decode_customer(obj["customer"])


@dataclasses.dataclass
class GoReply:
    """``sock.Response`` with its raw ``data`` (json.RawMessage)."""

    status_code: int
    data_type: str
    data: bytes | None


class _Envelope(msgspec.Struct):
    status_code: int = 0
    data_type: str = ""
    data: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class _EventEnvelope(msgspec.Struct):
    type: str = ""
    publisher: str = ""
    data_type: str = ""
    data: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


def decode_reply(body: bytes) -> GoReply:
    """A reply as ``parseResponse`` reads it (docs/profiles.md#errors): an int status, a string
    data_type, the data kept raw; a typed error's data must unmarshal into ``VoipbinError`` (E3)."""
    go_loads(body)  # Go's syntax rules first
    try:
        env = msgspec.json.decode(body, type=_Envelope)
    except msgspec.ValidationError as exc:
        raise GoDecodeError(f"reply envelope: {exc}") from None
    data: bytes | None = bytes(env.data)
    if data in (b"", b"null"):
        data = None
    reply = GoReply(env.status_code, env.data_type, data)
    if reply.status_code >= 400 and reply.data_type == "voipbin_error":
        decode_voipbin_error(data or b"")
    return reply


def decode_voipbin_error(raw: bytes) -> dict[str, Any]:
    """``VoipbinError`` (docs/profiles.md#errors): status, reason, domain, message as strings, in
    this order, optional ``details`` (an array of objects); ``status`` one of the mapped codes."""
    obj = go_loads(raw)
    if not isinstance(obj, dict):
        raise GoDecodeError("voipbin_error: not an object")
    keys = [k for k, _ in _pairs(obj)]
    if keys[:4] != ["status", "reason", "domain", "message"] or keys[4:] not in ([], ["details"]):
        raise GoDecodeError(f"voipbin_error: keys {keys}")
    if not all(isinstance(obj[k], str) for k in keys[:4]):
        raise GoDecodeError("voipbin_error: a non-string field")
    details = obj.get("details")
    if details is not None and not (
        isinstance(details, list) and all(isinstance(d, dict) for d in details)
    ):
        raise GoDecodeError("voipbin_error: details is not an array of objects")
    return dict(obj)


@dataclasses.dataclass
class GoEvent:
    type: str
    record: GoCustomer | GoAccesskey
    headless: bool | None = None


def decode_event(body: bytes) -> GoEvent:
    """An event (docs/profiles.md#json) as subscribers read it: the envelope in order with publisher
    ``customer-manager``, one of the 9 types; ``customer_*`` data a Customer
    (``customer_created`` followed by ``"headless":bool``), ``accesskey_*`` data an Accesskey
    without ``raw_token``."""
    obj = go_loads(body)
    if not isinstance(obj, dict) or list(obj) != ["type", "publisher", "data_type", "data"]:
        raise GoDecodeError(f"event envelope: {body[:120]!r}")
    env = msgspec.json.decode(body, type=_EventEnvelope)
    if env.publisher != "customer-manager" or env.data_type != "application/json":
        raise GoDecodeError(f"event envelope: publisher/data_type {env.publisher!r}")
    if env.type not in EVENT_TYPES:
        raise GoDecodeError(f"event type {env.type!r} is not one of the nine")
    data = go_loads(bytes(env.data) or b"null")
    if env.type.startswith("accesskey_"):
        return GoEvent(env.type, decode_accesskey(data))
    if env.type != "customer_created":
        return GoEvent(env.type, decode_customer(data))
    if not isinstance(data, dict) or not _pairs(data) or _pairs(data)[-1][0] != "headless":
        raise GoDecodeError("customer_created: data does not end with headless")
    headless = _pairs(data)[-1][1]
    if not isinstance(headless, bool):
        raise GoDecodeError("customer_created: headless is not a bool")
    inner = _object(_pairs(data)[:-1])
    return GoEvent(env.type, decode_customer(inner), headless)


def go_cache_read(raw: bytes | None, kind: Literal["customer", "accesskey"]) -> Any:
    """Go's cache read (docs/profiles.md#redis): the record, or None for a miss (absent or any
    decode error); Go-semantics only, no contract checks."""
    if raw is None:
        return None
    try:
        if kind == "customer":
            return go_unmarshal(raw, GoCustomer(), CUSTOMER_FIELDS)
        return go_unmarshal(raw, GoAccesskey(), ACCESSKEY_FIELDS)
    except GoDecodeError:
        return None


def decode_cache_customer(raw: bytes) -> GoCustomer:
    """A ``customer:<id>`` entry WE wrote (docs/profiles.md#redis): the customer JSON,
    ``webhook_secret`` allowed, no ``headless``; must not be a miss for Go."""
    return decode_customer(raw)


def decode_cache_accesskey(raw: bytes) -> GoAccesskey:
    """A ``customer_accesskey:<id>`` entry WE wrote (docs/profiles.md#redis): no ``token_hash``, no
    ``raw_token``."""
    return decode_accesskey(raw)


# ======================== Go writer and SQL reader (docs/profiles.md#mysql, docs/profiles.md#redis)


def go_token() -> str:
    """``vb_`` + ``StringGenerateRandom(32)``: 24 random bytes as 32 base64url characters."""
    return "vb_" + base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def go_now() -> datetime:
    """``time.Now().UTC()`` as MySQL stores it (microseconds), naive UTC for the driver."""
    return datetime.now(UTC).replace(tzinfo=None)


class GoRowError(RuntimeError):
    """Go's row read failed (malformed metadata, a bad UUID column): the whole read fails."""


class GoCurrent(GoStore):
    """The newest Go service's storage and cache behaviour on one database and Redis DB."""

    # -- writes -------------------------------------------------------------------------------

    def _insert(self, table: str, columns: list[str], values: dict[str, Any]) -> None:
        assert sorted(values) == columns, sorted(values)
        marks = ", ".join(["%s"] * len(columns))
        self.sql(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            tuple(values[c] for c in columns),
        )

    def insert_customer(
        self,
        email: str,
        *,
        signup: bool = False,
        created: datetime | None = None,
        **fields: Any,
    ) -> uuid.UUID:
        """R7's INSERT (or signup's with ``signup=True``: unverified, ``initial``), all 20
        columns, then the cache fill. ``fields`` override column values."""
        row_id = uuid.uuid4()
        values: dict[str, Any] = {
            "address": "somewhere",
            "billing_account_id": NIL.bytes,
            "detail": "written by go",
            "email": email,
            "email_verified": 0 if signup else 1,
            "id": row_id.bytes,
            "identity_verification_status": "none",
            "metadata": '{"rtp_debug":false}',
            "name": email.split("@")[0],
            "phone_number": "+821100000001",
            "status": "initial" if signup else "active",
            "terms_agreed_ip": "10.0.0.1" if signup else "",
            "terms_agreed_version": "2026-01" if signup else "",
            "tm_create": created or go_now(),
            "tm_delete": None,
            "tm_deletion_scheduled": None,
            "tm_update": None,
            "webhook_method": "POST",
            "webhook_secret": go_token()[3:],
            "webhook_uri": "https://example.com/hook",
        }
        values.update({k: (v.bytes if isinstance(v, uuid.UUID) else v) for k, v in fields.items()})
        self._insert("customer_customers", CUSTOMER_INSERT, values)
        self.cache_customer(row_id)
        return row_id

    def insert_accesskey(
        self,
        customer_id: uuid.UUID,
        *,
        expire: timedelta | None = timedelta(days=365),
        name: str = "go key",
        created: datetime | None = None,
    ) -> tuple[uuid.UUID, str]:
        """R2's INSERT (10 columns): hash and prefix of a fresh token; ``tm_expire`` computed
        just before ``tm_create`` (``expire=None`` writes NULL, which Go itself never does)."""
        row_id, token = uuid.uuid4(), go_token()
        expires = go_now() + expire if expire is not None else None
        values = {
            "customer_id": customer_id.bytes,
            "detail": "",
            "id": row_id.bytes,
            "name": name,
            "tm_create": created or go_now(),
            "tm_delete": None,
            "tm_expire": expires,
            "tm_update": None,
            "token_hash": sha256_hex(token),
            "token_prefix": token[:11],
        }
        self._insert("customer_accesskeys", ACCESSKEY_INSERT, values)
        self.cache_accesskey(row_id)
        return row_id, token

    def delete_customer(self, customer_id: uuid.UUID) -> None:
        """Go's soft delete (docs/profiles.md#mysql): status, tm_delete and tm_update together."""
        moment = go_now()
        self.sql(
            "UPDATE customer_customers SET status = %s, tm_delete = %s, tm_update = %s"
            " WHERE id = %s",
            ("deleted", moment, moment, customer_id.bytes),
        )
        self.cache_customer(customer_id)

    def delete_accesskey(self, key_id: uuid.UUID) -> None:
        moment = go_now()
        self.sql(
            "UPDATE customer_accesskeys SET tm_delete = %s, tm_update = %s WHERE id = %s",
            (moment, moment, key_id.bytes),
        )
        self.cache_accesskey(key_id)

    # -- cache (docs/profiles.md#redis) ------------------------------------------------------------

    def cache_customer(self, customer_id: uuid.UUID) -> bytes:
        """The write path's re-read and SET of ``customer:<id>`` (EX 86400)."""
        record = self.customer(customer_id)
        assert record is not None
        body = customer_json(record)
        self.redis.set(f"customer:{customer_id}", body, ex=86400)
        return body

    def cache_accesskey(self, key_id: uuid.UUID) -> bytes:
        record = self.accesskey(key_id)
        assert record is not None
        body = accesskey_json(record)  # token_hash is json:"-", raw_token is unset
        self.redis.set(f"customer_accesskey:{key_id}", body, ex=86400)
        return body

    def cached_customer(self, customer_id: uuid.UUID) -> GoCustomer | None:
        """Go's read path: the cache entry if it decodes, else None (Go then reads the DB)."""
        raw: bytes | None = self.redis.get(f"customer:{customer_id}")  # type: ignore[assignment]
        found: GoCustomer | None = go_cache_read(raw, "customer")
        return found

    # -- SQL reads (docs/profiles.md#mysql rules) --------------------------------------------------

    def customer(self, customer_id: uuid.UUID) -> GoCustomer | None:
        """CustomerGet's SELECT; None when no row."""
        rows = self.sql(
            f"SELECT {', '.join(CUSTOMER_SELECT)} FROM customer_customers WHERE id = %s",
            (customer_id.bytes,),
        )
        return _customer_row(rows[0]) if rows else None

    def accesskey(self, key_id: uuid.UUID) -> GoAccesskey | None:
        rows = self.sql(
            f"SELECT {', '.join(ACCESSKEY_SELECT)} FROM customer_accesskeys WHERE id = %s",
            (key_id.bytes,),
        )
        return _accesskey_row(rows[0]) if rows else None

    def accesskeys_by_token_hash(self, token_hash: str, size: int = 10) -> list[GoAccesskey]:
        """A newest Go replica answering api-manager's auth lookup (its own SQL)."""
        rows = self.sql(
            f"SELECT {', '.join(ACCESSKEY_SELECT)} FROM customer_accesskeys"
            " WHERE tm_create < %s AND token_hash = %s AND tm_delete IS NULL"
            f" ORDER BY tm_create DESC LIMIT {int(size)}",
            (go_now(), token_hash),
        )
        return [_accesskey_row(r) for r in rows]

    def unverified_to_expire(self, at: datetime) -> list[GoCustomer]:
        """``CleanupUnverified``'s selection (docs/profiles.md#mysql) as if run at ``at`` (naive
        UTC): token = ``at`` - 1 h in the legacy format, ``email_verified = 0``, ``deleted: false``,
        100."""
        cutoff = (at - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
        rows = self.sql(
            f"SELECT {', '.join(CUSTOMER_SELECT)} FROM customer_customers"
            " WHERE tm_create < %s AND email_verified = %s AND tm_delete IS NULL"
            " ORDER BY tm_create DESC LIMIT 100",
            (cutoff, 0),
        )
        return [_customer_row(r) for r in rows]

    def cleanup_unverified(self, at: datetime) -> list[uuid.UUID]:
        """Go's expiry job run at ``at``: each selected customer gets ``status='expired'``,
        ``tm_delete``, ``tm_update``; returns the ids it expired."""
        expired = []
        for found in self.unverified_to_expire(at):
            moment = go_now()
            self.sql(
                "UPDATE customer_customers SET status = %s, tm_delete = %s, tm_update = %s"
                " WHERE id = %s",
                ("expired", moment, moment, found.id.bytes),
            )
            self.cache_customer(found.id)
            expired.append(found.id)
        return expired


def _row_uuid(value: Any, column: str) -> uuid.UUID:
    if value is None or len(bytes(value)) == 0:
        return NIL
    if len(bytes(value)) != 16:
        raise GoRowError(f"{column}: {len(bytes(value))} bytes is not a UUID")
    return uuid.UUID(bytes=bytes(value))


def _row_time(value: Any) -> datetime | None:
    """datetime(6) -> ISO ``…Z`` -> UTC; NULL -> nil. The sentinel is a real (deleted) time."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    return parse_go_time(str(value).replace(" ", "T") + "Z")


def _row_text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _customer_row(row: tuple[Any, ...]) -> GoCustomer:
    v = dict(zip(CUSTOMER_SELECT, row, strict=True))
    meta_text = _row_text(v["metadata"])
    try:  # NULL or empty: the zero struct; malformed: the whole row read fails
        metadata = _row_metadata(meta_text) if meta_text else {"rtp_debug": False}
    except GoDecodeError as exc:
        raise GoRowError(f"metadata {meta_text!r}: {exc}") from None
    return GoCustomer(
        id=_row_uuid(v["id"], "id"),
        name=_row_text(v["name"]),
        detail=_row_text(v["detail"]),
        email=_row_text(v["email"]),
        phone_number=_row_text(v["phone_number"]),
        address=_row_text(v["address"]),
        webhook_method=_row_text(v["webhook_method"]),
        webhook_uri=_row_text(v["webhook_uri"]),
        webhook_secret=_row_text(v["webhook_secret"]),
        billing_account_id=_row_uuid(v["billing_account_id"], "billing_account_id"),
        email_verified=bool(v["email_verified"]) if v["email_verified"] is not None else False,
        status=_row_text(v["status"]),
        identity_verification_status=_row_text(v["identity_verification_status"]),
        terms_agreed_version=_row_text(v["terms_agreed_version"]),
        terms_agreed_ip=_row_text(v["terms_agreed_ip"]),
        metadata=metadata,
        tm_deletion_scheduled=_row_time(v["tm_deletion_scheduled"]),
        tm_create=_row_time(v["tm_create"]),
        tm_update=_row_time(v["tm_update"]),
        tm_delete=_row_time(v["tm_delete"]),
    )


def _row_metadata(text: str) -> dict[str, bool]:
    """``json.Unmarshal`` of the column into ``Metadata`` (MySQL returns it normalized)."""
    holder = go_unmarshal(
        b'{"metadata":' + text.encode() + b"}", GoCustomer(), [("metadata", "metadata", False)]
    )
    result: dict[str, bool] = holder.metadata
    return result


def _accesskey_row(row: tuple[Any, ...]) -> GoAccesskey:
    v = dict(zip(ACCESSKEY_SELECT, row, strict=True))
    return GoAccesskey(
        id=_row_uuid(v["id"], "id"),
        customer_id=_row_uuid(v["customer_id"], "customer_id"),
        name=_row_text(v["name"]),
        detail=_row_text(v["detail"]),
        token_hash=_row_text(v["token_hash"]),
        token_prefix=_row_text(v["token_prefix"]),
        tm_expire=_row_time(v["tm_expire"]),
        tm_create=_row_time(v["tm_create"]),
        tm_update=_row_time(v["tm_update"]),
        tm_delete=_row_time(v["tm_delete"]),
    )


@pytest.fixture
def go_current(current_dsn: str, redis_db: redis.Redis, redis_address: str) -> Iterator[GoCurrent]:
    """The newest Go service's storage on a fresh current-schema database and Redis DB 15."""
    from tests.support.servers import REDIS_DB

    service = GoCurrent(current_dsn, redis_address, REDIS_DB)
    yield service
    service.close()


# =========================================================== peers on the broker (raw bytes)


class RawClient(Client):
    """``Client`` keeping each reply's raw bytes, for the Go reader."""

    def __init__(self, url: str) -> None:
        self.raw: dict[str, bytes] = {}
        super().__init__(url)

    def _on_reply(self, ch: Any, m: Any, props: pika.BasicProperties, body: bytes) -> None:
        self.raw[props.correlation_id or ""] = body
        super()._on_reply(ch, m, props, body)

    def send_raw(self, body: bytes, timeout: float = 10) -> bytes:
        corr = self.send(body)
        assert corr in self.wait([corr], timeout), f"no reply to {body[:100]!r}"
        return self.raw[corr]


class GoCurrentReplica(threading.Thread):
    """A newest Go replica on the shared request queue during a rolling switch-over
    (docs/profiles.md#switching-from-todays-go-service): prefetch 1, acks first, answers from
    ``GoCurrent`` with Go's SQL and JSON. It serves the auth lookup (GET /v1/accesskeys with a
    ``token_hash`` filter), GET /v1/customers/<id> and GET /v1/accesskeys/<id>; anything else
    gets a bare 404 (tests send only those requests to the shared queue)."""

    def __init__(self, url: str, go: GoCurrent) -> None:
        super().__init__(daemon=True, name="go-current-replica")
        self.url, self.go = url, go
        self.answered = 0
        self.ready = threading.Event()
        self._stop_flag = threading.Event()

    def run(self) -> None:
        from customer_manager.messages.queues import REQUEST_QUEUE

        conn = connect(self.url, "cm-test-go-current-replica")
        channel = conn.channel()
        channel.queue_declare(REQUEST_QUEUE, durable=True)
        channel.basic_qos(prefetch_count=1)
        channel.basic_consume(REQUEST_QUEUE, self._on_message)
        self.ready.set()
        while not self._stop_flag.is_set():
            conn.process_data_events(time_limit=0.05)
        conn.close()

    def stop(self) -> None:
        self._stop_flag.set()
        self.join(10)

    def answer(self, request: dict[str, Any]) -> bytes:
        """The reply bytes Go would send (a bare ``{"status_code":N,"data_type":""}`` on
        failure)."""
        path = str(request.get("uri", "")).split("?")[0].strip("/").split("/")
        data = request.get("data") or {}
        body: bytes | None = None
        if request.get("method") == "GET" and path == ["v1", "accesskeys"]:
            if isinstance(data, dict) and isinstance(data.get("token_hash"), str):
                keys = self.go.accesskeys_by_token_hash(data["token_hash"])
                body = b"[" + b",".join(accesskey_json(_no_hash(k)) for k in keys) + b"]"
        elif request.get("method") == "GET" and len(path) == 3 and path[:2] == ["v1", "customers"]:
            found = self.go.customer(uuid.UUID(path[2]))
            body = customer_json(found) if found is not None else None
        elif request.get("method") == "GET" and len(path) == 3 and path[:2] == ["v1", "accesskeys"]:
            key = self.go.accesskey(uuid.UUID(path[2]))
            body = accesskey_json(_no_hash(key)) if key is not None else None
        if body is None:
            return b'{"status_code":404,"data_type":""}'
        return b'{"status_code":200,"data_type":"application/json","data":' + body + b"}"

    def _on_message(self, ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        ch.basic_ack(method.delivery_tag)  # Go acks first
        reply = self.answer(json.loads(body))
        self.answered += 1
        out = pika.BasicProperties(content_type="text/plain", correlation_id=props.correlation_id)
        ch.basic_publish("", props.reply_to, reply, out)


def _no_hash(key: GoAccesskey) -> GoAccesskey:
    return dataclasses.replace(key, token_hash="")


class RawEventTap:
    """A tap on a fanout exchange keeping each event's raw bytes and properties."""

    def __init__(self, url: str, exchange: str) -> None:
        self.conn = connect(url, "cm-test-raw-tap")
        self.channel = self.conn.channel()
        self.channel.exchange_declare(exchange, "fanout", durable=True)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, exchange)
        self.bodies: list[bytes] = []
        self.props: list[pika.BasicProperties] = []
        self.channel.basic_consume(self.queue, self._on_event, auto_ack=True)

    def _on_event(self, _ch: Any, _m: Any, props: pika.BasicProperties, body: bytes) -> None:
        self.bodies.append(body)
        self.props.append(props)

    def pump(self, seconds: float) -> None:
        self.conn.process_data_events(time_limit=seconds)

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()


# ============================================================== golden data (the upstream literals)

GOLDEN_FILE = Path(__file__).parent / "data" / "current_golden.txt"


def _load_golden() -> dict[str, tuple[str, bytes]]:
    """``name -> (upstream path:line, literal bytes)`` from ``GOLDEN_FILE``."""
    out: dict[str, tuple[str, bytes]] = {}
    source = ""
    for line in GOLDEN_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("# source: "):
            source = line[len("# source: ") :].strip()
        elif line and not line.startswith("#"):
            name, _, literal = line.partition(" ")
            out[name] = (source, literal.encode())
    return out


GOLDEN: dict[str, tuple[str, bytes]] = _load_golden()


def golden(name: str, /, **values: Any) -> bytes:
    """The upstream literal ``name`` with ``values`` substituted key by key, re-encoded as Go
    would print it. A dotted key (``customer.tm_create``) reaches into a nested object;
    a ``datetime``/None goes through Go's time encoding, a UUID prints canonically. Only
    keys present in the literal can be set (key order is upstream's); ``_drop``/``_add``
    are not offered on purpose: fill the record under test to match the fixture instead."""
    _source, literal = GOLDEN[name]
    obj = json.loads(literal, object_pairs_hook=dict)
    for path, value in values.items():
        *parents, leaf = path.replace("__", ".").split(".")
        node = obj
        for part in parents:
            node = node[part]
        if leaf not in node:
            raise KeyError(f"{leaf!r} is not in golden {name!r} at {path!r}")
        if isinstance(value, datetime) or (value is None and leaf.startswith("tm_")):
            node[leaf] = _time_value(value)
        elif isinstance(value, uuid.UUID):
            node[leaf] = str(value)
        else:
            node[leaf] = value
    return go_dumps(obj)


def times_of(obj: dict[str, Any]) -> dict[str, datetime | None]:
    """The ``tm_*`` values of a decoded record (for substituting into ``golden``)."""
    return {
        k: (parse_go_time(v) if isinstance(v, str) else None)
        for k, v in obj.items()
        if k.startswith("tm_")
    }
