"""Go ``encoding/json`` compatible output (docs/api.md#encoding-rules).

msgspec writes compact JSON in struct field order with raw UTF-8, as Go does. Go also escapes
``<``, ``>``, ``&``, U+2028 and U+2029. Those characters can only occur inside JSON strings, so
a byte replace on the encoded output is exact. Encoders are thread-safe and built once.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def go_escape(raw: bytes) -> bytes:
    """Apply Go's HTML-safe escaping to already encoded JSON."""
    for plain, escaped in _ESCAPES:
        if plain in raw:
            raw = raw.replace(plain, escaped)
    return raw


def encode(obj: Any) -> bytes:
    """Encode ``obj`` (Structs, lists, dicts, Raw) exactly as Go's json.Marshal would."""
    return go_escape(_encoder.encode(obj))


def encode_sorted(obj: Any) -> bytes:
    """Encode a map with sorted keys (Go sorts map keys, e.g. filters sent to agent-manager)."""
    return go_escape(msgspec.json.encode(obj, order="sorted"))
