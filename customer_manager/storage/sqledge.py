"""The wire profile's SQL edge (docs/profiles.md#mysql): what "not set" is in the database.

The internal model says "not set" with one value, the sentinel (records.py). A ``seed``
database stores it as is (and NULL there means deleted, as for the seed-era Go service); a
``current`` database stores NULL (today's Go service: NULL ``tm_delete`` is active). Every
statement says "live" and "deleted" as ``LIVE(column)`` and ``GONE(column)`` (and "not set"
as ``UNSET(column)``); the edge
renders them for its profile, binds the sentinel as NULL in ``current`` and reads NULL
times back as the sentinel. Nothing else in storage knows the profile.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from customer_manager.messages.codec import Profile
from customer_manager.messages.records import SENTINEL

log = logging.getLogger(__name__)

_MARK = re.compile(r"\b(LIVE|GONE|UNSET)\(([\w.]+)\)")
_SEED = {
    "LIVE": "{} >= '" + SENTINEL + "'",
    "UNSET": "{} >= '" + SENTINEL + "'",
    "GONE": "{} < '" + SENTINEL + "'",
}
_CURRENT = {"LIVE": "{} IS NULL", "UNSET": "{} IS NULL", "GONE": "{} IS NOT NULL"}
_FAR = datetime(9999, 1, 1)


class SeedEdge:
    """The seed profile: the sentinel is stored as is."""

    profile: Profile = "seed"

    def render(self, sql: str) -> str:
        """``sql`` with its LIVE()/GONE() marks written for this profile."""
        return _render(sql, self.profile)

    def bind(self, params: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(params)

    def read(self, cursor: Any, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return rows


class CurrentEdge(SeedEdge):
    """The ``current`` profile: "not set" is NULL both ways."""

    profile: Profile = "current"

    def bind(self, params: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(None if p == SENTINEL else p for p in params)

    def read(self, cursor: Any, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        times = [i for i, d in enumerate(cursor.description) if d[0].startswith("tm_")]
        if not times or not rows:
            return rows
        return [_unset_times(row, times) for row in rows]


@functools.lru_cache(maxsize=1024)
def _render(sql: str, profile: Profile) -> str:
    if "LIVE(" not in sql and "GONE(" not in sql and "UNSET(" not in sql:
        return sql
    forms = _CURRENT if profile == "current" else _SEED
    return _MARK.sub(lambda m: forms[m.group(1)].format(m.group(2)), sql)


def _unset_times(row: tuple[Any, ...], times: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in times:
        value = values[i]
        if value is None:
            values[i] = SENTINEL
        elif value >= _FAR if isinstance(value, datetime) else str(value) >= SENTINEL:
            # only a misconfigured seed-profile writer stores this in a current database
            log.warning("a time at or past 9999-01-01 in a current-profile row reads as not set")
            values[i] = SENTINEL
    return tuple(values)


EDGES: dict[Profile, SeedEdge] = {"seed": SeedEdge(), "current": CurrentEdge()}
