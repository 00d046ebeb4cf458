"""The route table of the RPC protocol (docs/api.md#routes): which method and uri reach which
operation of which worker pool, and the label metrics and logs use for it.

Matching keeps the Go service's rules: the first route whose method is equal and whose
regular expression is *found* in the uri wins (so a trailing query string is allowed where
the pattern does not anchor it), and the path id is the fourth ``/``-separated part.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

import msgspec

from customer_manager.messages.ops import OpName
from customer_manager.messages.records import NIL
from customer_manager.messages.wire import Request


class Route(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    pattern: re.Pattern[str]
    pool: Literal["customer", "accesskey"]
    op: OpName
    label: str


_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_AK, _AKID = "/v1/accesskeys", "/v1/accesskeys/<accesskey-id>"
_CU = "/v1/customers"


def _r(method: str, pattern: str, pool: Any, op: OpName, label: str) -> Route:
    return Route(method=method, pattern=re.compile(pattern), pool=pool, op=op, label=label)


ROUTES: tuple[Route, ...] = (
    _r("GET", r"/v1/accesskeys\?(.*)$", "accesskey", "list", _AK),
    _r("POST", r"/v1/accesskeys$", "accesskey", "create", _AK),
    _r("GET", f"/v1/accesskeys/{_UUID}$", "accesskey", "get", _AKID),
    _r("PUT", f"/v1/accesskeys/{_UUID}$", "accesskey", "update", _AKID),
    _r("DELETE", f"/v1/accesskeys/{_UUID}$", "accesskey", "delete", _AKID),
    _r("GET", r"/v1/customers\?(.*)$", "customer", "list", _CU),
    _r("POST", r"/v1/customers$", "customer", "create", _CU),
    _r("GET", f"/v1/customers/{_UUID}$", "customer", "get", _CU),
    _r("PUT", f"/v1/customers/{_UUID}$", "customer", "update", _CU),
    _r("DELETE", f"/v1/customers/{_UUID}$", "customer", "delete", _CU),
    _r(
        "PUT",
        f"/v1/customers/{_UUID}/billing_account_id$",
        "customer",
        "update_billing_account",
        "/v1/customers/<customer_id>/billing_account_id",
    ),
    _r(
        "POST",
        f"/v1/customers/{_UUID}/is_valid_balance$",
        "customer",
        "is_valid_balance",
        "/v1/customers/<customer_id>/is_valid_balance",
    ),
    # docs/lifecycle.md#routes, rules 13-20
    *(
        _r("POST", f"/v1/customers/{name}$", "customer", name, f"{_CU}/{name}")
        for name in ("signup", "email_verify", "cleanup_unverified", "cleanup_frozen_expired")
    ),
    *(
        _r("POST", f"/v1/customers/{_UUID}/{name}$", "customer", name, f"{_CU}/{name}")
        for name in ("freeze", "recover", "freeze_and_delete")
    ),
    _r(
        "PUT",
        f"/v1/customers/{_UUID}/metadata$",
        "customer",
        "metadata",
        "/v1/customers/<customer_id>/metadata",
    ),
    # docs/api.md#access-key-usage-and-rotation
    _r("GET", r"/v1/accesskeys/expiring\?(.*)$", "accesskey", "expiring", f"{_AK}/expiring"),
    *(
        _r("POST", f"{_AK}/{name}$", "accesskey", name, f"{_AK}/{name}")
        for name in ("cleanup_rotated", "notify_expiring")
    ),
    *(
        _r("POST", f"/v1/accesskeys/{_UUID}/{name}$", "accesskey", name, f"{_AKID}/{name}")
        for name in ("used", "rotate")
    ),
)


_BY_METHOD: dict[str, tuple[Route, ...]] = {
    method: tuple(r for r in ROUTES if r.method == method) for method in {r.method for r in ROUTES}
}


def match(request: Request) -> Route | None:
    """The first route whose method is equal and whose regex is found in the uri."""
    for route in _BY_METHOD.get(request.method, ()):
        if route.pattern.search(request.uri):
            return route
    return None


def path_id(uri: str) -> uuid.UUID:
    """As in Go, the id is ``uri.split("/")[3]``; anything unparsable becomes the Nil UUID."""
    parts = uri.split("/")
    try:
        return uuid.UUID(parts[3]) if len(parts) > 3 and len(parts[3]) == 36 else NIL
    except ValueError:
        return NIL
