"""The daemon's entry point caps glibc's malloc arenas (launch.fewer_malloc_arenas, issue 17:
peak RSS under load), unless the operator set MALLOC_ARENA_MAX."""

from __future__ import annotations

import platform

import pytest

from customer_manager import launch


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_cap_is_applied_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert launch.fewer_malloc_arenas()


def test_an_operator_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert not launch.fewer_malloc_arenas()
