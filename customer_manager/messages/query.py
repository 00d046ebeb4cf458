"""List parameters: page size and cursor from the URI (docs/api.md#pagination) and the
filters from ``data`` (docs/api.md#filters)."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import msgspec

from customer_manager.errors import InvalidArgument
from customer_manager.messages.bodies import BodyError, parse_uuid
from customer_manager.messages.records import ts

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
TOKEN_SEPARATOR = "|"

Table = Literal["customer", "accesskey"]


class Secret(str):
    """A string that never shows in a repr (a plain token inside a logged struct)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    """Equality filters; ``None`` means "not given". Storage ANDs every given one."""

    id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    billing_account_id: uuid.UUID | None = None
    token_hash: str | None = None
    # The plain token when the caller filtered by ``token``: during a takeover, keys a Go
    # replica inserted have only a plain ``token`` column (storage.takeover).
    token: str | None = None
    deleted: bool | None = None
    expired: bool | None = None


class ListQuery(msgspec.Struct, frozen=True, kw_only=True):
    """One page request: rows with ``(tm_create, id) < (before, before_id)``, newest first.

    ``before_id`` is ``None`` for a plain timestamp token: then the condition is just
    ``tm_create < before`` (as in Go). ``before`` is always a 6-digit wire timestamp."""

    page_size: int = DEFAULT_PAGE_SIZE
    before: str
    before_id: uuid.UUID | None = None
    filters: Filters = Filters()
    paged: bool = False  # a page_token was given (else ``before`` is "now")


# Allowed filter keys per table and their JSON type (docs/api.md#filters).
_ALLOWED: dict[Table, dict[str, type]] = {
    "customer": {
        "id": uuid.UUID,
        "name": str,
        "email": str,
        "phone_number": str,
        "billing_account_id": uuid.UUID,
        "deleted": bool,
    },
    "accesskey": {
        "id": uuid.UUID,
        "customer_id": uuid.UUID,
        "name": str,
        "token": str,
        "token_hash": str,
        "deleted": bool,
        "expired": bool,
    },
}


def hash_token(token: str) -> str:
    """SHA-256 hex of an access token (what ``token_hash`` stores)."""
    return hashlib.sha256(token.encode()).hexdigest()


_STAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?\Z"
)


def parse_timestamp(text: str) -> str:
    """Normalise a timestamp given by a client (docs/api.md#pagination: ``YYYY-MM-DD``, ``T``
    or a space, ``HH:MM:SS``, up to 9 fraction digits, ``Z``, an offset or nothing for UTC)
    to the 6-digit wire form, or raise."""
    match = _STAMP.match(text)
    if match is not None:
        date, clock, fraction, zone = match.groups()
        micro = (fraction or "")[:6].ljust(6, "0")
        offset = "+00:00" if zone in (None, "Z") else zone
        try:
            return ts(datetime.fromisoformat(f"{date}T{clock}.{micro}{offset}"))
        except ValueError:
            pass
    raise InvalidArgument(f"invalid page_token {text[:64]!r}", "INVALID_PAGE_TOKEN")


def make_page_token(tm_create: str, row_id: uuid.UUID) -> str:
    """The tie-safe cursor for the page after a row (docs/api.md#pagination):
    ``<tm_create>|<id>``."""
    return f"{tm_create}{TOKEN_SEPARATOR}{row_id}"


def _page_size(values: list[str]) -> int:
    if not values or values[0] == "":
        return DEFAULT_PAGE_SIZE
    text = values[0]
    if not text.lstrip("+-").isdigit() or not text.isascii():
        raise InvalidArgument(f"invalid page_size {text[:32]!r}", "INVALID_PAGE_SIZE")
    size = int(text)
    if size < 0:
        raise InvalidArgument(f"invalid page_size {size}", "INVALID_PAGE_SIZE")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _filters(table: Table, raw: bytes) -> Filters:
    if not raw:
        return Filters()
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidArgument("filters are not valid JSON", "INVALID_FILTER") from None
    if obj is None:
        return Filters()
    if not isinstance(obj, dict):
        raise InvalidArgument("filters must be a JSON object", "INVALID_FILTER")
    allowed = _ALLOWED[table]
    given: dict[str, Any] = {}
    for key, value in obj.items():
        kind = allowed.get(key)
        if kind is None:
            continue  # unknown keys are ignored, as in Go
        given[_filter_name(key)] = _filter_value(key, kind, value)
        if key == "token":
            given["token"] = Secret(value)
    return Filters(**given)


def _filter_name(key: str) -> str:
    return "token_hash" if key == "token" else key


def _filter_value(key: str, kind: type, value: Any) -> Any:
    expected = {uuid.UUID: str, str: str, bool: bool}[kind]
    if value is None or type(value) is not expected:
        raise InvalidArgument(f"filter {key!r} must be a {kind.__name__}", "INVALID_FILTER")
    if kind is uuid.UUID:
        try:
            return parse_uuid(str(value))
        except BodyError:
            raise InvalidArgument(f"filter {key!r} is not a valid UUID", "INVALID_FILTER") from None
    if key == "token":
        return hash_token(str(value))
    return value


def parse_list(table: Table, uri: str, data: bytes, now: str) -> ListQuery:
    """Build a ListQuery from a list request's ``uri`` and ``data``; raise InvalidArgument."""
    try:
        query = parse_qs(urlsplit(uri).query, keep_blank_values=True)
    except ValueError:
        raise InvalidArgument("invalid uri", "INVALID_URI") from None
    token = query.get("page_token", [""])[0]
    before, before_id = now, None
    if token:
        stamp, sep, tail = token.partition(TOKEN_SEPARATOR)
        before = parse_timestamp(stamp)
        if sep:
            try:
                before_id = parse_uuid(tail)
            except BodyError:
                raise InvalidArgument("invalid page_token", "INVALID_PAGE_TOKEN") from None
    return ListQuery(
        page_size=_page_size(query.get("page_size", [])),
        before=before,
        before_id=before_id,
        filters=_filters(table, data),
        paged=bool(token),
    )
