"""Our errors and the one table that turns them into VoIPbin error replies
(docs/api.md#errors).

Handlers raise these; only the edge (router / worker reply) turns them into a Response.
Messages must never contain secrets (tokens, passwords).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from customer_manager import metrics
from customer_manager.messages import gojson
from customer_manager.messages.wire import Response, VoipbinError

STATUS_CODES = {
    "INVALID_ARGUMENT": 400,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "FAILED_PRECONDITION": 409,
    "UNAVAILABLE": 503,
    "INTERNAL": 500,
}


class ServiceError(Exception):
    """Base of every error that becomes a reply. ``status`` is a key of STATUS_CODES."""

    status = "INTERNAL"
    default_reason = "INTERNAL_ERROR"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason


class InvalidArgument(ServiceError):
    status = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"


class NotFound(ServiceError):
    status = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(ServiceError):
    status = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(ServiceError):
    status = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class Unavailable(ServiceError):
    status = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"


class OutcomeUnknown(Unavailable):
    """The connection was lost at COMMIT: the change may or may not be stored. ``records``
    are the rows the transaction wrote (their cache entries must not outlive the truth)."""

    def __init__(self, message: str, records: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.records = list(records)


class Internal(ServiceError):
    status = "INTERNAL"
    default_reason = "INTERNAL_ERROR"


# docs/profiles.md#errors: a bare reply's code, where the newest Go answers bare codes
BARE_CODES = {"NOT_FOUND": 404, "UNAVAILABLE": 500, "INTERNAL": 500}


def error_response(exc: ServiceError, *, bare: bool = False) -> Response:
    """The reply for ``exc``: its status code and the typed VoIPbin error body, or with
    ``bare`` only a status code (404, 500, or 400 for every other refusal). Every error
    reply is made here, so here it is counted (``error_replies_total``)."""
    body = VoipbinError(status=exc.status, reason=exc.reason, message=exc.message)
    code = BARE_CODES.get(exc.status, 400) if bare else STATUS_CODES[exc.status]
    metrics.child(metrics.error_replies_total, str(code), exc.reason).inc()
    if bare:
        return Response(status_code=code)
    return Response(
        status_code=code,
        data_type="voipbin_error",
        data=msgspec.Raw(gojson.encode(body)),
    )


def internal_response(*, bare: bool = False) -> Response:
    """The reply for an unexpected exception: 500, nothing more said."""
    return error_response(Internal("internal error"), bare=bare)
