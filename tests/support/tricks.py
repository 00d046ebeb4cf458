"""Plugin: the library tricks installed at start, as the daemon's main does
(``tricks.install()``), and the ``tricks_off`` fixture.

The MySQL driver's C extension is loaded only when pytest runs through ``make test``
(``python -m customer_manager.launch pytest``): pytest imports hashlib before any conftest. The
header names the driver; under ``CI=true`` the pure-Python driver is an error.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from customer_manager import tricks
from customer_manager.tricks import mysql_cext
from tests.support import IN_CI


def pytest_configure(config: pytest.Config) -> None:
    tricks.install()


def pytest_report_header(config: pytest.Config) -> str:
    return f"customer-manager: MySQL driver {mysql_cext.driver()}"


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and not mysql_cext.loaded():
        got = mysql_cext.driver()
        raise pytest.UsageError(f"CI runs MySQL on the C extension (make test), got {got}")


@pytest.fixture
def tricks_off() -> Iterator[None]:
    """The library tricks turned off for one test (the public-API paths), on again after."""
    for trick in tricks.TRICKS:
        tricks.switches(trick)[1]()
    yield
    tricks.install()
