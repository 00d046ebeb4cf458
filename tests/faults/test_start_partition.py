"""A replica restarted while MySQL is unreachable (found by the soak, seed 2): it used to exit
1 at once, leaving the service one replica short (and, after a kill during a Redis outage,
nobody to drop the entries it missed). It now waits for MySQL (up to STARTUP_WAIT), and a
SIGTERM meanwhile ends it with 0 (found by the soak, seed 7)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from customer_manager.config import parse_dsn
from tests.support.faults import Replica, dsn_via, replica_env
from tests.support.proxy import TcpProxy
from tests.support.servers import REDIS_DB
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def waiting(
    fresh_migrated_dsn: str, redis_address: str, amqp_url: str, tmp_path: Path
) -> Iterator[tuple[Replica, TcpProxy]]:
    """A replica started with MySQL unreachable, once it says it is waiting for it."""
    target = parse_dsn(fresh_migrated_dsn)
    proxy = TcpProxy((target.host, target.port))
    proxy.start()
    proxy.pause()
    env = replica_env(amqp_url, dsn_via(fresh_migrated_dsn, proxy.port), redis_address, REDIS_DB)
    replica = Replica(env, tmp_path / "replica.log")
    try:
        said = lambda: any("trying again" in line for line in replica.lines())  # noqa: E731
        wait_until(said, 20, "the replica never reported waiting for MySQL")
        assert replica.proc.poll() is None, "\n".join(replica.lines())
        yield replica, proxy
    finally:
        replica.stop()
        proxy.close()


def test_a_replica_starting_while_mysql_is_unreachable_waits_for_it(
    waiting: tuple[Replica, TcpProxy],
) -> None:
    replica, proxy = waiting
    proxy.resume()
    replica.health_port(30)  # it finished starting
    assert replica.proc.poll() is None
    assert replica.terminate(30) == 0


def test_sigterm_while_waiting_for_mysql_at_start_exits_0(
    waiting: tuple[Replica, TcpProxy],
) -> None:
    replica, _ = waiting
    assert replica.terminate(10) == 0
    assert any("SIGTERM during startup: exiting" in line for line in replica.lines())
