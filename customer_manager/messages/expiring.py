"""The expiring-keys list (docs/api.md#access-key-expiring): its window, its filter and its
page token ``<tm_expire>|<id>`` (keys ascend by ``(tm_expire, id)``, so ties on
``tm_expire`` page correctly)."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import msgspec

from customer_manager.errors import InvalidArgument
from customer_manager.messages.bodies import BodyError, parse_uuid
from customer_manager.messages.query import TOKEN_SEPARATOR, _page_size, parse_timestamp
from customer_manager.messages.records import after

DEFAULT_WITHIN = 604800  # seconds: a week
MAX_WITHIN = 31_536_000  # seconds: a year


class ExpiringQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Live, unrotated keys with ``start < tm_expire <= end`` and ``(tm_expire, id) >
    (after_expire, after_id)``, ascending, at most ``page_size``; ``unnotified``: only keys
    whose expiry notice was not sent yet (the notice sweep)."""

    start: str
    end: str
    after_expire: str = ""
    after_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    unnotified: bool = False
    page_size: int = 100


class _Filter(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str = ""


def within_seconds(text: str | int | None) -> int:
    """``within`` in seconds: DEFAULT_WITHIN when absent, 1 to MAX_WITHIN, else 400."""
    if text is None or text == "":
        return DEFAULT_WITHIN
    value = str(text)
    if not value.lstrip("+-").isdigit() or not value.isascii() or not 1 <= int(value) <= MAX_WITHIN:
        raise InvalidArgument(
            f"within must be 1 to {MAX_WITHIN} seconds, not {value[:32]!r}", "INVALID_WITHIN"
        )
    return int(value)


def page_token(tm_expire: str, key_id: uuid.UUID) -> str:
    """The cursor for the page after a key."""
    return f"{tm_expire}{TOKEN_SEPARATOR}{key_id}"


def parse_expiring(uri: str, data: bytes, now: str) -> ExpiringQuery:
    """The query of ``GET /v1/accesskeys/expiring?within=&page_size=&page_token=``."""
    try:
        args = parse_qs(urlsplit(uri).query, keep_blank_values=True)
    except ValueError:
        raise InvalidArgument("invalid uri", "INVALID_URI") from None
    within = within_seconds(args.get("within", [""])[0])
    after_expire, after_id = "", None
    token = args.get("page_token", [""])[0]
    if token:
        stamp, sep, tail = token.partition(TOKEN_SEPARATOR)
        after_expire = parse_timestamp(stamp)
        try:
            after_id = parse_uuid(tail) if sep else None
        except BodyError:
            raise InvalidArgument("invalid page_token", "INVALID_PAGE_TOKEN") from None
        if after_id is None:
            raise InvalidArgument("invalid page_token", "INVALID_PAGE_TOKEN")
    return ExpiringQuery(
        start=now,
        end=after(within, now),
        after_expire=after_expire,
        after_id=after_id,
        customer_id=_customer_filter(data),
        page_size=_page_size(args.get("page_size", [])),
    )


def _customer_filter(data: bytes) -> uuid.UUID | None:
    if not data or data.strip() in (b"null", b"{}"):
        return None
    try:
        given = msgspec.json.decode(data, type=_Filter)
        return parse_uuid(given.customer_id) if given.customer_id else None
    except (msgspec.DecodeError, msgspec.ValidationError, BodyError):
        raise InvalidArgument("filter customer_id must be a UUID", "INVALID_FILTER") from None
