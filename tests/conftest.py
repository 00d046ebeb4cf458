"""The suite's fixtures come from the support layer, ``tests/support/`` (see its
``__init__``), loaded here as plugins for every test directory."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("tests.support")  # before the plugins below are imported

pytest_plugins = [
    "tests.support.tricks",
    "tests.support.profiles",
    "tests.support.servers",
    "tests.support.amqp",
    "tests.support.service",
    "tests.support.faults",
    "tests.support.storage",
    "tests.support.harness",
    "tests.support.go_current",
]
