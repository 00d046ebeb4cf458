"""RouterActor: matches a request to a route (SPEC A §4.1) and hands it to a worker pool.

Threading contract: the consumer (or ``call``) tells ``Handle(request, reply)``, or several
at once as ``HandleMany``; the router
never blocks. It matches the route in its own thread and submits an ``Op`` to the customer
or access-key pool; ``reply`` is called exactly once, from the thread that finishes the
request (a pool member, or the router itself for an unmatched route). ``reply`` must be
quick and must not raise (an exception is logged and swallowed).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any, Literal

import msgspec
import pykka

from customer_manager import metrics
from customer_manager.actors.kit.members import FastInboxActor
from customer_manager.actors.kit.pool import Pool
from customer_manager.errors import (
    NotFound,
    ServiceError,
    Unavailable,
    error_response,
    internal_response,
)
from customer_manager.messages.ops import Handle, HandleMany, Op, OpName, request_key
from customer_manager.messages.records import NIL
from customer_manager.messages.wire import Request, Response

log = logging.getLogger(__name__)

QUEUE_TIMEOUT = 10.0  # seconds a request may wait for a free worker before 503


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
    """Part A: the id is ``uri.split("/")[3]``; anything unparsable becomes the Nil UUID."""
    parts = uri.split("/")
    try:
        return uuid.UUID(parts[3]) if len(parts) > 3 and len(parts[3]) == 36 else NIL
    except ValueError:
        return NIL


class RouterActor(FastInboxActor):
    """Routes ``Handle`` messages to the customer and access-key pools (module doc)."""

    def __init__(self, customers: Pool, accesskeys: Pool) -> None:
        super().__init__()
        self._pools = {"customer": customers, "accesskey": accesskeys}

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, HandleMany):
            for item in message.items:
                self._handle(item)
            return None
        if not isinstance(message, Handle):
            return super().on_receive(message)
        self._handle(message)
        return None

    def _handle(self, message: Handle) -> None:
        started = time.monotonic()
        try:
            self._route(message, started)
        except Exception:
            log.exception("routing failed for %s %s", message.request.method, _safe(message))
            _finish(message, internal_response(), "notfound", started)

    def _route(self, message: Handle, started: float) -> None:
        request = message.request
        route = match(request)
        if route is None:
            where = f"no route for {request.method} {_safe(message)}"
            _finish(
                message, error_response(NotFound(where, "ROUTE_NOT_FOUND")), "notfound", started
            )
            return
        op = Op(
            name=route.op,
            request=request,
            id=path_id(request.uri),
            request_key=request_key(message.correlation_id, request),
        )

        def done(value: Any, error: BaseException | None) -> None:
            _finish(message, _as_response(value, error), route.label, started)

        self._pools[route.pool].submit(op, done, timeout=QUEUE_TIMEOUT)


def _as_response(value: Any, error: BaseException | None) -> Response:
    if error is None and isinstance(value, Response):
        return value
    if isinstance(error, ServiceError):
        return error_response(error)
    log.error("worker failed", exc_info=error or RuntimeError(f"not a Response: {value!r}"))
    return internal_response()


def _finish(message: Handle, response: Response, label: str, started: float) -> None:
    method = message.request.method
    elapsed_ms = int((time.monotonic() - started) * 1000)
    metrics.child(metrics.receive_request_process_time, label, method).observe(elapsed_ms)
    metrics.child(metrics.requests_total, label, method, str(response.status_code)).inc()
    log.debug("%s %s -> %d (%d ms)", method, label, response.status_code, elapsed_ms)
    try:
        message.reply(response)
    except Exception:
        log.exception("reply callback failed")


def _safe(message: Handle) -> str:
    """The uri without its query (a token filter could hide in data, never in the uri)."""
    return message.request.uri.split("?", 1)[0][:200]


def call(router: pykka.ActorRef[Any], request: Request, timeout: float) -> Response:
    """Send ``request`` through ``router`` and wait up to ``timeout`` s for the reply
    (for the CLI and tests). Raises Unavailable if no reply came in time."""
    future: pykka.Future[Response] = pykka.ThreadingFuture()
    try:
        router.tell(Handle(request=request, reply=future.set))
        return future.get(timeout=timeout)
    except (pykka.Timeout, pykka.ActorDeadError):
        raise Unavailable(f"no reply within {timeout:g} s") from None
