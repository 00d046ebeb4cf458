"""The readiness gauge: /readyz publishes each check's result as customer_manager_ready, and a
scrape runs the checks itself only when no probe ran them lately."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from customer_manager import health
from customer_manager.health import HealthServer


def get(server: HealthServer, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


class Flaky:
    """A check whose answer the test sets, counting its calls."""

    def __init__(self) -> None:
        self.ok: bool | None = True
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.ok is None:
            raise RuntimeError("check crashed")
        return self.ok


@pytest.fixture
def checks() -> dict[str, Flaky]:
    return {"unit_a": Flaky(), "unit_b": Flaky()}


@pytest.fixture
def server(checks: dict[str, Flaky]) -> Iterator[HealthServer]:
    srv = HealthServer("127.0.0.1:0", "/metrics", checks).start()
    yield srv
    srv.stop()


def test_readyz_sets_the_gauge_per_check(server: HealthServer, checks: dict[str, Flaky]) -> None:
    assert get(server, "/readyz")[0] == 200
    checks["unit_b"].ok = False
    status, body = get(server, "/readyz")
    assert status == 503 and body == '{"unit_a":true,"unit_b":false}'
    text = get(server, "/metrics")[1]  # a probe just ran: the scrape shows its results
    assert 'customer_manager_ready{check="unit_a"} 1.0' in text
    assert 'customer_manager_ready{check="unit_b"} 0.0' in text
    checks["unit_a"].ok = None  # a check that raises counts as failing
    get(server, "/readyz")
    assert 'customer_manager_ready{check="unit_a"} 0.0' in get(server, "/metrics")[1]


def test_a_scrape_runs_the_checks_only_when_no_probe_did_lately(
    server: HealthServer, checks: dict[str, Flaky], monkeypatch: pytest.MonkeyPatch
) -> None:
    get(server, "/metrics")  # nothing ran yet: the scrape runs the checks
    assert checks["unit_a"].calls == 1
    checks["unit_a"].ok = False
    text = get(server, "/metrics")[1]
    assert checks["unit_a"].calls == 1  # fresh enough: the scrape did not wait for a check
    assert 'customer_manager_ready{check="unit_a"} 1.0' in text
    monkeypatch.setattr(health, "READY_MAX_AGE", 0.0)
    text = get(server, "/metrics")[1]
    assert checks["unit_a"].calls == 2
    assert 'customer_manager_ready{check="unit_a"} 0.0' in text
