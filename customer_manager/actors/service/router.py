"""RouterActor: matches a request to a route (messages/routes.py) and hands it to a worker pool.

Threading contract: the consumer (or ``call``) tells ``Handle(request, reply)``, or several
at once as ``HandleMany``; the router
never blocks. It matches the route in its own thread and submits an ``Op`` to the customer
or access-key pool; ``reply`` is called exactly once, from the thread that finishes the
request (a pool member, or the router itself for an unmatched route). ``reply`` must be
quick and must not raise (an exception is logged and swallowed).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pykka

from customer_manager import metrics
from customer_manager.actors.kit.pool import Pool
from customer_manager.errors import (
    NotFound,
    ServiceError,
    Unavailable,
    error_response,
    internal_response,
)
from customer_manager.messages import codec
from customer_manager.messages.ops import Handle, HandleMany, Op, request_key
from customer_manager.messages.routes import match, path_id
from customer_manager.messages.wire import Request, Response
from customer_manager.tricks.pykka_inbox import SimpleInboxActor

log = logging.getLogger(__name__)

QUEUE_TIMEOUT = 10.0  # seconds a request may wait for a free worker before 503


class RouterActor(SimpleInboxActor):
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
            _finish(message, _as_response(value, error, route.op), route.label, started)

        self._pools[route.pool].submit(op, done, timeout=QUEUE_TIMEOUT)


def _as_response(value: Any, error: BaseException | None, op: str) -> Response:
    if error is None and isinstance(value, Response):
        return value
    bare = op in codec.active().bare_error_ops  # docs/profiles.md#errors
    if isinstance(error, ServiceError):
        return error_response(error, bare=bare)
    log.error("worker failed", exc_info=error or RuntimeError(f"not a Response: {value!r}"))
    return internal_response(bare=bare)


def _finish(message: Handle, response: Response, label: str, started: float) -> None:
    elapsed_ms = int((time.monotonic() - started) * 1000)
    metrics.later(_record, label, message.request.method, response.status_code, elapsed_ms)
    try:
        message.reply(response)
    except Exception:
        log.exception("reply callback failed")


def _record(label: str, method: str, status: int, elapsed_ms: int) -> None:
    """The request's metrics and debug line, after the reply (metrics.later)."""
    metrics.child(metrics.receive_request_process_time, label, method).observe(elapsed_ms)
    metrics.child(metrics.requests_total, label, method, str(status)).inc()
    log.debug("%s %s -> %d (%d ms)", method, label, status, elapsed_ms)


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
