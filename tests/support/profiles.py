"""Plugin: the wire profile a test runs in (docs/profiles.md).

``wire_profile`` is "seed" unless a test module runs in both: ``pytestmark = both_profiles``
(or ``@both_profiles`` on a test). ``wire`` says what differs on the wire, so one test body
asserts both profiles. After every test the process codec is the seed's again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from customer_manager.messages import codec
from customer_manager.messages.codec import PROFILES, Profile
from customer_manager.messages.current import rfc3339
from customer_manager.messages.records import SENTINEL

both_profiles = pytest.mark.parametrize("wire_profile", PROFILES, indirect=True)
_BARE = ("/freeze", "/recover", "/freeze_and_delete")


class Wire:
    """What a profile's replies, events and cache entries hold."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.current = profile == "current"
        self.token = "raw_token" if self.current else "token"  # the plain token's key
        self.unset: str | None = None if self.current else SENTINEL  # a time not set

    def time(self, internal: str) -> str | None:
        """An internal time as this profile's JSON shows it."""
        return rfc3339(internal) if self.current else internal

    def refusal(self, uri: str, status: int, reason: str | None) -> tuple[int, str | None]:
        """The (status, reason) a refusal gets: in ``current`` freeze, recover and
        freeze_and_delete answer bare codes (404, 500, else 400) without a reason."""
        if self.current and uri.split("?")[0].endswith(_BARE):
            return (status if status in (404, 500) else 500 if status > 500 else 400), None
        return status, reason

    def decode(self, raw: bytes | msgspec.Raw, cls: type[Any]) -> Any:
        """A record of this profile's JSON as the internal record."""
        return codec.CODECS[self.profile].decode(bytes(raw), cls)


def reason_of(reply: dict[str, Any]) -> tuple[int, str | None]:
    """(status, reason) of a decoded reply envelope; reason None for a bare one."""
    data = reply.get("data")
    return reply["status_code"], data.get("reason") if isinstance(data, dict) else None


@pytest.fixture
def wire_profile(request: pytest.FixtureRequest) -> Profile:
    profile: Profile = getattr(request, "param", "seed")
    return profile


@pytest.fixture
def wire(wire_profile: Profile) -> Wire:
    return Wire(wire_profile)


@pytest.fixture(autouse=True)
def _seed_codec_after() -> Iterator[None]:
    yield
    codec.use("seed")
