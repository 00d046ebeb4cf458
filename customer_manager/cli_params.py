"""click parameter types of ``customer-control``: values checked in the CLI's own words
(exit 2, usage error) before a request is built."""

from __future__ import annotations

import re
from typing import Any

import click

MAX_SECONDS = 2**31 - 1  # the request body's int32 ``expire``
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class Duration(click.ParamType):  # type: ignore[type-arg]
    """Seconds as an integer (``3600``) or a Go duration (``720h``, ``1h30m``)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip()
        if re.fullmatch(r"-?\d+", text):
            seconds = int(text)
        else:
            parts = _DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                self.fail(
                    f"{text!r} is neither seconds nor a duration like 720h or 1h30m", param, ctx
                )
            seconds = int(sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))
        if abs(seconds) > MAX_SECONDS:
            self.fail(f"{text!r} is more than {MAX_SECONDS} seconds (about 68 years)", param, ctx)
        return seconds


class Text(click.ParamType):  # type: ignore[type-arg]
    """A string of at most ``limit`` characters (the column's size)."""

    name = "text"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if len(text) > self.limit:
            self.fail(f"{len(text)} characters, at most {self.limit} allowed", param, ctx)
        return text
