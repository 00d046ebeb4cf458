"""The wire profile's JSON codec (docs/profiles.md): how records leave and enter the process
in replies, events, webhooks and cache entries.

One profile per deployment (docs/profiles.md#one-profile-per-deployment): every replica, the
CLI, the database and the Redis database use the same one, so the codec is chosen once per
process, at start (``use``), from ``WIRE_PROFILE``. Handlers never ask which profile runs:
they build internal records (records.py), and the edges (this codec, the SQL edge in
storage/sqlprofile.py, the error encoder in errors.py) write and read the profile's forms.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, get_args

import msgspec

from customer_manager.messages import current, gojson

Profile = Literal["seed", "current"]
PROFILES: tuple[Profile, ...] = get_args(Profile)
# routes whose errors are bare status codes in ``current`` (docs/profiles.md#errors)
BARE_ERROR_OPS = frozenset({"freeze", "recover", "freeze_and_delete"})

T = TypeVar("T")


class Codec:
    """The seed profile's codec: the internal records are its JSON."""

    profile: Profile = "seed"
    bare_error_ops: frozenset[str] = frozenset()

    def encode(self, payload: Any) -> bytes:
        """``payload`` (records, or dicts and lists of them) as Go JSON."""
        return gojson.encode(payload)

    def decode(self, raw: bytes, cls: type[T]) -> T:
        """A record of ``cls`` from this profile's JSON; raises msgspec errors or ValueError
        for an entry of another shape."""
        return msgspec.json.decode(raw, type=cls)


class CurrentCodec(Codec):
    """The ``current`` profile's codec (messages/current.py)."""

    profile: Profile = "current"
    bare_error_ops = BARE_ERROR_OPS

    def encode(self, payload: Any) -> bytes:
        return gojson.encode(current.outward(payload))

    def decode(self, raw: bytes, cls: type[T]) -> T:
        result: T = current.inward(raw, cls)
        return result


CODECS: dict[Profile, Codec] = {"seed": Codec(), "current": CurrentCodec()}
_active: list[Codec] = [CODECS["seed"]]


def check(profile: str) -> Profile:
    """``profile`` if it names a profile; ValueError (one line) otherwise."""
    if profile not in PROFILES:
        raise ValueError(f"WIRE_PROFILE must be one of {', '.join(PROFILES)}, not {profile[:32]!r}")
    return profile


def use(profile: Profile) -> None:
    """Make ``profile`` this process's codec (at start, before any request)."""
    _active[0] = CODECS[check(profile)]


def active() -> Codec:
    return _active[0]
