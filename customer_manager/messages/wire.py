"""The RabbitMQ envelopes (docs/api.md#request-envelope, docs/events.md#event-envelope) and
the VoIPbin error body (docs/api.md#errors).

``data`` is embedded raw JSON (Go ``json.RawMessage``): ``msgspec.Raw``, copied verbatim.
An empty ``Raw`` means "absent" and is omitted on output.
"""

from __future__ import annotations

from typing import Any

import msgspec

from customer_manager.messages import codec, gojson

EMPTY = msgspec.Raw(b"")
JSON = "application/json"
PUBLISHER = "customer-manager"


class Request(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An RPC request as received (docs/api.md#request-envelope) or sent to another service
    (docs/api.md#outgoing-calls)."""

    uri: str = ""
    method: str = ""
    publisher: str = ""
    data_type: str = ""
    data: msgspec.Raw = EMPTY


def json_request(uri: str, method: str, data: Any) -> Request:
    """A request of ours to another service (docs/api.md) with ``data`` as Go JSON."""
    return Request(
        uri=uri,
        method=method,
        publisher=PUBLISHER,
        data_type=JSON,
        data=msgspec.Raw(codec.active().encode(data)),
    )


class Response(msgspec.Struct, frozen=True, kw_only=True):
    """An RPC reply (docs/api.md#reply-envelope): ``status_code`` and ``data_type`` always,
    ``data`` if not empty."""

    status_code: int
    data_type: str = ""
    data: msgspec.Raw = EMPTY


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """A change event (docs/events.md#event-envelope), published on the fanout exchange."""

    type: str
    publisher: str = PUBLISHER
    data_type: str = JSON
    data: msgspec.Raw = EMPTY


class VoipbinError(msgspec.Struct, frozen=True, kw_only=True):
    """The typed error body (docs/api.md#errors)."""

    status: str
    reason: str
    domain: str = PUBLISHER
    message: str = ""


def _omit_empty_data(obj: Any) -> Any:
    if isinstance(obj, (Response, Event)) and not obj.data:
        return {k: getattr(obj, k) for k in obj.__struct_fields__ if k != "data"}
    return obj


def encode(obj: Request | Response | Event) -> bytes:
    """Encode an envelope the way Go does (``data`` omitted when empty)."""
    return gojson.encode(_omit_empty_data(obj))


def ok(payload: Any) -> Response:
    """A 200 reply carrying ``payload`` (a Struct, list or dict) as the profile's JSON
    (messages/codec.py)."""
    return Response(
        status_code=200, data_type=JSON, data=msgspec.Raw(codec.active().encode(payload))
    )


_request_decoder = msgspec.json.Decoder(Request)


class EnvelopeError(ValueError):
    """The body is not a Request envelope (not JSON, not an object, a field of a wrong type)."""


def decode_request(body: bytes) -> Request:
    """Decode a Request envelope with Go's rules (docs/api.md#request-envelope).

    The fast path is one typed decode. Anything unusual (``null`` fields, keys in other case,
    invalid UTF-8) takes the slow path, which normalises a generic decode first.
    """
    try:
        return _request_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    from customer_manager.messages.bodies import BodyError, normalise

    try:
        obj = msgspec.json.decode(body.decode("utf-8", "replace"))
    except msgspec.DecodeError as exc:
        raise EnvelopeError(f"request is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EnvelopeError("request is not a JSON object")
    raw_data = EMPTY
    for key in obj:
        if key.lower() == "data":
            raw_data = msgspec.Raw(msgspec.json.encode(obj[key]))
    try:
        fields = normalise(obj, Request)
        fields.pop("data", None)
        request = msgspec.convert(fields, Request, strict=True)
    except (msgspec.ValidationError, BodyError) as exc:
        raise EnvelopeError(f"invalid request envelope: {exc}") from None
    return msgspec.structs.replace(request, data=raw_data)
